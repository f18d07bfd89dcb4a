"""SAM3 as a segmenter: its tracker as a drop-in for SAM2 (box and point prompts, ``Segmenter``) and its concept mode
(phrases and box exemplars, ``ConceptSegmenter``), both loaded from tiny SAM3 folders through the same
``from_pretrained`` code as ``facebook/sam3``, picked by ``--segmenter``, their per-mask scores in the results.

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_sam3.py``. Offline: tiny random SAM3s built from configs
(``segzero.models.tiny.sam3``) in the hub's layout and alone. Oracles: the weight names the hub checkpoint stores
(written out here), transformers' models called directly on the pixels with prompts scaled by hand, and SAM3's
instance scores (detection x presence probabilities) and masks computed here from those raw outputs.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from segzero.errors import UserError

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None
SIZE = (160, 120)  # (W, H) of the test image: not square, not the model's 1008
BOX = [20.0, 10.0, 110.0, 90.0]


@pytest.fixture(scope="module")
def sam3(tmp_path_factory) -> dict[str, Path]:
    """The tiny SAM3 in each layout: ``sam3_video`` (the hub's facebook/sam3), ``sam3_tracker``, ``sam3``."""
    from segzero.models.tiny.sam3 import FORMATS, build_tiny_sam3

    root = tmp_path_factory.mktemp("sam3")
    return {fmt: build_tiny_sam3(root / fmt, checkpoint_format=fmt) for fmt in FORMATS}


@pytest.fixture(scope="module")
def image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8))


def _stored(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


# ------------------------------------------------------------------------------------------ loading


def test_the_tiny_hub_layout_is_the_video_models_own_names(sam3):
    config = json.loads((sam3["sam3_video"] / "config.json").read_text())
    assert config["model_type"] == "sam3_video" and config["tracker_config"]["model_type"] == "sam3_tracker_video"
    assert {k.split(".")[0] for k in _stored(sam3["sam3_video"])} == {
        "detector_model",
        "tracker_model",
        "tracker_neck",
    }


def _hub_name(key: str) -> str:
    """Where the hub checkpoint keeps a ``Sam3TrackerModel`` weight: its vision backbone is the detector's, its neck
    the video model's tracker neck, the rest under ``tracker_model.``."""
    if key.startswith("vision_encoder.backbone."):
        return "detector_model." + key
    if key.startswith("vision_encoder.neck."):
        return "tracker_neck." + key.removeprefix("vision_encoder.neck.")
    return "tracker_model." + key


def test_the_tracker_loads_every_weight_of_the_hub_layout(sam3):
    from segzero.models.segmenter import Segmenter

    seg = Segmenter.from_pretrained(sam3["sam3_video"], device="cpu")
    stored = _stored(sam3["sam3_video"])
    loaded = seg.model.state_dict()
    names = {k: _hub_name(k) for k in loaded}
    assert set(names.values()) <= set(stored)  # every weight of the tracker is in the file under its stored name
    assert all(torch.equal(loaded[k], stored[n]) for k, n in names.items())
    assert seg.description == "SAM3 (tracker)" and seg.preprocess.size == (1008, 1008)
    assert seg.preprocess.image_mean == (0.5, 0.5, 0.5)  # SAM3's settings, read from its preprocessor_config.json


def test_a_lone_tracker_folder_loads_its_weights_not_fresh_ones(sam3):
    from segzero.models.segmenter import Segmenter

    # a weight missing from the file would be drawn afresh (unseeded) at each load: two loads would differ
    first, second = (Segmenter.from_pretrained(sam3["sam3_tracker"], device="cpu").model.state_dict() for _ in "ab")
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("fmt", ["sam3_video", "sam3"])
def test_concept_mode_loads_the_detector_from_either_layout(sam3, fmt):
    from segzero.models.sam3 import ConceptSegmenter

    seg = ConceptSegmenter.from_pretrained(sam3[fmt], device="cpu")
    stored = _stored(sam3[fmt])
    prefix = "detector_model." if fmt == "sam3_video" else ""
    loaded = seg.model.state_dict()
    assert all(torch.equal(v, stored[prefix + k]) for k, v in loaded.items())
    assert seg.box_exemplars == HAS_TORCHVISION  # by default: exemplars when torchvision is there


@pytest.mark.parametrize(
    ("load", "fmt", "message"),
    [
        ("tracker", "sam3", "use it as concept:"),  # the detector alone takes no box / point prompts: the way out
        ("concept", "sam3_tracker", "concept mode needs SAM3's detector"),  # a tracker has no concept detector
    ],
)
def test_the_wrong_sam3_for_a_mode_is_one_line(sam3, load, fmt, message):
    from segzero.models.sam3 import ConceptSegmenter
    from segzero.models.segmenter import Segmenter

    with pytest.raises(UserError, match=message):
        (Segmenter if load == "tracker" else ConceptSegmenter).from_pretrained(sam3[fmt], device="cpu")


@pytest.mark.skipif(HAS_TORCHVISION, reason="checks the message given where torchvision is missing")
def test_box_exemplars_without_torchvision_are_refused_in_one_line(sam3):
    from segzero.models.sam3 import ConceptSegmenter

    with pytest.raises(UserError, match="need torchvision"):
        ConceptSegmenter.from_pretrained(sam3["sam3"], device="cpu", box_exemplars=True)


# ------------------------------------------------------------------------------------- the tracker


@pytest.mark.parametrize(
    ("boxes", "points", "labels"),
    [
        ([BOX], None, None),  # a box alone
        ([BOX], [[[50.0, 40.0], [80.0, 60.0]]], None),  # a box and two points (Seg-Zero's answer)
        (None, [[[50.0, 40.0], [5.0, 5.0]]], [[1, 0]]),  # points alone, one of them background
        ([BOX, [0.0, 0.0, 40.0, 30.0]], [[[50.0, 40.0]], [[10.0, 10.0]]], None),  # two objects (VisionReasoner's)
    ],
)
def test_the_tracker_answers_sam2s_prompts_as_transformers_does(sam3, image, boxes, points, labels):
    from segzero.models.sam2_processing import preprocess_image
    from segzero.models.segmenter import Segmenter

    seg = Segmenter.from_pretrained(sam3["sam3_video"], device="cpu")
    seg.set_image(image)
    pred = seg.predict(boxes=boxes, points=points, labels=labels)
    # the oracle: the model on the pixels, prompts scaled by hand to its 1008 input, SAM2's best-of-3 and upsampling
    w, h = SIZE
    sx, sy = 1008 / w, 1008 / h
    kwargs = {}
    if boxes is not None:
        kwargs["input_boxes"] = torch.tensor([[[b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy] for b in boxes]])
    if points is not None:
        kwargs["input_points"] = torch.tensor([[[[x * sx, y * sy] for x, y in obj] for obj in points]])
        kwargs["input_labels"] = torch.tensor([labels or [[1] * len(obj) for obj in points]])
    pixels, _ = preprocess_image(image, seg.preprocess)
    with torch.inference_mode():
        out = seg.model(pixel_values=pixels, multimask_output=True, **kwargs)
    iou = out.iou_scores[0]
    best = iou.argmax(-1)
    rows = torch.arange(len(best))
    want = F.interpolate(out.pred_masks[0][rows, best][:, None], size=[h, w], mode="bilinear", align_corners=False)
    np.testing.assert_array_equal(pred.object_masks, (want[:, 0] > 0).numpy())
    np.testing.assert_allclose(pred.scores, iou[rows, best].numpy(), rtol=1e-5)


def test_the_pipeline_and_its_results_carry_the_trackers_masks_and_scores(sam3, image):
    from segzero.models.segmenter import Segmenter
    from segzero.pipeline import SegZeroPipeline

    seg = Segmenter.from_pretrained(sam3["sam3_tracker"], device="cpu")
    pipe = SegZeroPipeline(reasoner=None, segmenter=seg, answer_frame=(160, 120))  # answers in image pixels
    completion = '<answer>{"bbox": [20, 10, 110, 90], "points_1": [50, 40], "points_2": [80, 60]}</answer>'
    result = pipe.segment(image, completion)
    seg.set_image(image)
    direct = seg.predict(boxes=[BOX], points=[[[50, 40], [80, 60]]])
    np.testing.assert_array_equal(result.mask, direct.mask)
    assert result.scores == pytest.approx(direct.scores.tolist()) and result.to_json()["scores"] == result.scores


# ------------------------------------------------------------------------------------------ concept mode


THREE = [[0, 0, 9, 9], [20, 20, 29, 29], [20, 20, 29, 29]]  # one instance top left, two on the same spot


@pytest.mark.parametrize(
    ("scores", "boxes", "box", "select", "expected"),
    [
        ([0.9, 0.6, 0.2], THREE, (21, 21, 30, 30), "box", [1]),  # the candidate on the answer's box, not the best
        ([0.9, 0.6, 0.7], THREE, (21, 21, 30, 30), "box", [2]),  # equal overlaps: the better score
        ([0.9, 0.6, 0.2], THREE, None, "box", [0]),  # no box: the best score
        ([0.9, 0.6, 0.2], THREE, (21, 21, 30, 30), "all", [0, 1]),  # every candidate, best first; 0.2 is none
        ([0.4, 0.3], THREE[:2], (0, 0, 9, 9), "box", []),  # nothing above 0.5: SAM3 found none
        ([0.9, 0.6], THREE[:2], (50, 50, 60, 60), "box", [0]),  # no overlap at all: the best score
    ],
)
def test_which_instances_make_an_objects_mask(scores, boxes, box, select, expected):
    from segzero.models.sam3 import pick_instances

    got = pick_instances(np.array(scores), np.array(boxes, float), box, threshold=0.5, select=select)
    assert got == expected


def _raw_instances(seg, image, phrase: str):
    """SAM3 on the pixels with ``phrase``: (scores (Q,) = detection x presence, boxes (Q, 4) in pixels, (Q, H, W)
    masks at the image size), as transformers' instance post-processing computes them."""
    from segzero.models.sam2_processing import preprocess_image

    pixels, _ = preprocess_image(image, seg.preprocess)
    text = seg.tokenizer([phrase], padding="max_length", max_length=32, return_tensors="pt")
    with torch.inference_mode():
        out = seg.model(pixel_values=pixels, input_ids=text["input_ids"], attention_mask=text["attention_mask"])
    w, h = SIZE
    scores = (out.pred_logits[0].sigmoid() * out.presence_logits[0].sigmoid()).numpy()
    boxes = (out.pred_boxes[0] * torch.tensor([w, h, w, h])).numpy()
    masks = F.interpolate(out.pred_masks[0][None].sigmoid(), size=[h, w], mode="bilinear", align_corners=False)[0]
    return scores, boxes, (masks > 0.5).numpy()


@pytest.mark.parametrize("select", ["box", "all"])
def test_concept_masks_and_scores_are_sam3s_instances(sam3, image, select):
    from segzero.geometry import box_iou
    from segzero.models.sam3 import ConceptSegmenter

    # every instance a candidate (random weights score about 0.25 each), so the selection itself is what is tested
    seg = ConceptSegmenter.from_pretrained(
        sam3["sam3"], device="cpu", box_exemplars=False, score_threshold=0.0, select=select
    )
    seg.set_image(image)
    pred = seg.predict(boxes=[BOX], phrases=["red cup"])
    scores, boxes, masks = _raw_instances(seg, image, "red cup")
    if select == "box":  # the instance whose box overlaps the answer's most
        best = int(np.argmax([box_iou(b, BOX) for b in boxes]))
        want_mask, want_score = masks[best], scores[best]
    else:  # every instance: their union, scored by the best
        want_mask, want_score = masks.any(axis=0), scores.max()
    np.testing.assert_array_equal(pred.object_masks[0], want_mask)
    assert pred.scores[0] == pytest.approx(want_score, rel=1e-5)


def test_an_object_sam3_finds_nothing_for_is_empty_with_score_zero(sam3, image):
    from segzero.models.sam3 import ConceptSegmenter

    seg = ConceptSegmenter.from_pretrained(sam3["sam3"], device="cpu", box_exemplars=False, score_threshold=0.99)
    seg.set_image(image)
    pred = seg.predict(boxes=[BOX], phrases=["cup"])
    assert not pred.mask.any() and pred.scores.tolist() == [0.0]


def test_the_pipeline_prompts_concept_mode_with_each_objects_label(sam3, image):
    from segzero.models.sam3 import ConceptSegmenter
    from segzero.pipeline import SegZeroPipeline

    seg = ConceptSegmenter.from_pretrained(sam3["sam3"], device="cpu", box_exemplars=False, score_threshold=0.0)
    pipe = SegZeroPipeline(reasoner=None, segmenter=seg, answer_frame=(160, 120))
    seg.set_image(image)
    by_phrase = {p: seg.predict(boxes=[BOX], phrases=[p]).scores[0] for p in ("red cup", "visual")}
    assert by_phrase["red cup"] != by_phrase["visual"]  # the phrase changes SAM3's answer: what is tested below
    item = '{"bbox_2d": [20, 10, 110, 90], "point_2d": [50, 40]%s}'
    labelled = pipe.segment(image, "<answer>[" + item % ', "label": "red cup"' + "]</answer>")
    unlabelled = pipe.segment(image, "<answer>[" + item % "" + "]</answer>")
    assert labelled.scores == [pytest.approx(by_phrase["red cup"])]  # its label is the phrase
    assert unlabelled.scores == [pytest.approx(by_phrase["visual"])]  # no label: SAM3's "visual" prompt
    assert labelled.to_json()["objects"][0]["label"] == "red cup"


@pytest.mark.skipif(not HAS_TORCHVISION, reason="SAM3's exemplar (geometry) encoder needs torchvision's roi_align")
def test_a_box_exemplar_changes_what_concept_mode_finds(sam3, image):
    from segzero.models.sam3 import ConceptSegmenter

    scores = {}
    for exemplars in (True, False):
        seg = ConceptSegmenter.from_pretrained(sam3["sam3"], device="cpu", box_exemplars=exemplars, score_threshold=0)
        seg.set_image(image)
        scores[exemplars] = seg.predict(boxes=[BOX], phrases=["cup"]).scores[0]
    assert scores[True] != scores[False]


# ------------------------------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize(
    ("segmenter", "exit_code", "says"),
    [
        ("{sam3_video}", 0, ""),  # the hub layout: SAM3's tracker, in SAM2's place
        ("{sam3_tracker}", 0, ""),
        ("concept:{sam3_video}", 0, ""),  # concept mode
        ("{sam3}", 2, "use it as concept:"),  # the detector alone without concept: one line, exit 2
    ],
)
def test_segment_takes_a_sam3_folder_as_its_segmenter(sam3, tiny_models, image, tmp_path, capsys, segmenter,
                                                       exit_code, says):  # fmt: skip
    from segzero.cli.main import main

    image.save(tmp_path / "img.png")
    name = segmenter.format(**{k: str(v) for k, v in sam3.items()})
    argv = ["segment", "--image", str(tmp_path / "img.png"), "--query", "the cup", "--reasoner",
            str(tiny_models["reasoner"]), "--segmenter", name, "--out", str(tmp_path / "out"), "--frame", "56",
            "--max-new-tokens", "4", "--device", "cpu"]  # fmt: skip
    assert main(argv) == exit_code
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    if exit_code == 0:
        assert (tmp_path / "out" / "result.json").is_file()
