"""Tests of the weight-free segmenters (``segzero.models.weightfree``): exact colour regions and GrabCut on shapes
scenes prompted with the gt box and points, the ``Segmenter`` interface, and ``--segmenter color|grabcut`` through
the pipeline, ``segzero segment`` and ``segzero eval``.

Run: ``pytest -q tests/test_weightfree.py`` (the CLI tests use the session's tiny models).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from segzero.metrics import intersection_union, sample_iou
from segzero.models.weightfree import ColorRegionSegmenter, GrabCutSegmenter, load_weightfree
from segzero.parsing import parse_solution
from segzero.shapes import ShapesConfig, make_sample

CONFIGS = {
    "flat": ShapesConfig(size=112),
    "noise+texture": ShapesConfig(size=(128, 96), noise=12.0, texture=40.0),
    "many shapes": ShapesConfig(size=160, min_shapes=5, max_shapes=7),
}


def _iou(pred, gt) -> float:
    return sample_iou(*intersection_union(pred, gt))


def _prompts(sample):
    objs = parse_solution(sample["solution"])
    return [o.box for o in objs], [o.points for o in objs]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_color_is_exact_with_gt_box_and_points(name):
    seg = ColorRegionSegmenter()
    for i in range(15):
        s = make_sample(i, seed=8, config=CONFIGS[name])
        boxes, points = _prompts(s)
        seg.set_image(s["image"])
        pred = seg.predict(boxes=boxes, points=points)
        assert np.array_equal(pred.mask, s["mask"]), (name, i, s["problem"])
    assert seg.num_embeddings == 15


def test_color_is_exact_per_object_for_multi_answers():
    seg = load_weightfree("color")
    checked = 0
    for i in range(20):
        s = make_sample(i, seed=3, layout="multi", answers="several")
        boxes, points = _prompts(s)  # one box + one point per object (VisionReasoner gt)
        seg.set_image(s["image"])
        pred = seg.predict(boxes=boxes, points=points)
        assert pred.object_masks.shape == (len(s["answers"]), *s["mask"].shape)
        for m, k in zip(pred.object_masks, s["answers"], strict=True):
            assert np.array_equal(m, s["shape_masks"][k])
        assert np.array_equal(pred.mask, s["mask"]) and (pred.scores == 1.0).all()
        checked += 1
    assert checked == 20


@pytest.mark.parametrize(
    "prompt, expect",
    [
        # the point alone (no box): the whole connected colour region
        ("point only", "target"),
        # the box alone: the largest region of the box's most frequent non-background colour
        ("box only", "target"),
        # a foreground and a background point on the same region cancel out
        ("fg+bg on target", "empty"),
    ],
)
def test_color_prompt_variants(prompt, expect):
    s = make_sample(2, seed=0, config=ShapesConfig(size=96, overlap=False, min_shapes=2, max_shapes=3))
    (box,), (pts,) = _prompts(s)
    seg = ColorRegionSegmenter()
    seg.set_image(s["image"])
    kwargs = {
        "point only": {"points": [[pts[0]]]},
        "box only": {"boxes": [box]},
        "fg+bg on target": {"boxes": [box], "points": [[pts[0], pts[1]]], "labels": [[1, 0]]},
    }[prompt]
    pred = seg.predict(**kwargs)
    assert np.array_equal(pred.mask, s["mask"] if expect == "target" else np.zeros_like(s["mask"]))


def test_grabcut_is_close_with_gt_box_and_points():
    seg = load_weightfree("grabcut")
    ious = []
    for name in ("flat", "noise+texture"):
        for i in range(12):
            s = make_sample(i, seed=5, config=CONFIGS[name])
            boxes, points = _prompts(s)
            seg.set_image(s["image"])
            ious.append(_iou(seg.predict(boxes=boxes, points=points).mask, s["mask"]))
    # measured 0.99 mean; an occluding shape of another colour inside the box can leak in (one case ~0.6)
    assert np.mean(ious) > 0.95 and np.median(ious) > 0.97, ious


@pytest.mark.parametrize("cls", [ColorRegionSegmenter, GrabCutSegmenter])
def test_segmenter_interface(cls):
    s = make_sample(0, config=ShapesConfig(size=64))
    seg = cls()
    with pytest.raises(RuntimeError, match="set_image"):  # predicting before an image is a programming error
        seg.predict(boxes=[[0, 0, 5, 5]])
    (emb,) = seg.embed([s["image"]])
    assert seg.num_embeddings == 1 and seg.image_size is None  # embed() does not set the current image
    empty = seg.predict(boxes=np.zeros((0, 4)), embedding=emb)  # no objects: an empty prediction of the image size
    assert empty.mask.shape == (64, 64) and empty.object_masks.shape == (0, 64, 64) and not empty.mask.any()
    boxes, points = _prompts(s)
    pred = seg.predict(boxes=boxes, points=points, embedding=emb)
    assert pred.mask.dtype == bool and pred.scores.shape == (1,) and pred.scores.dtype == np.float32
    with pytest.raises(ValueError, match="boxes"):  # malformed prompts are refused like Segmenter does
        seg.predict(boxes=[[1, 2, 3]], embedding=emb)


def test_unknown_weightfree_name_is_a_user_error():
    from segzero.errors import UserError

    with pytest.raises(UserError, match="weight-free"):
        load_weightfree("watershed")


@pytest.mark.slow
def test_pipeline_selects_color_and_segments_a_gt_answer(tiny_models):
    from segzero.answer import Answer, SegObject
    from segzero.pipeline import SegZeroPipeline

    pipe = SegZeroPipeline.from_pretrained(reasoner=tiny_models["reasoner"], segmenter="color", frame=112)
    assert isinstance(pipe.segmenter, ColorRegionSegmenter)
    s = make_sample(4, seed=1, config=ShapesConfig(size=112))  # image size = frame: the gt is a frame answer
    (obj,) = parse_solution(s["solution"])
    answer = Answer(objects=(SegObject(box=obj.box, points=obj.points),), ok=True, layout="single")
    result = pipe.segment(s["image"], answer)
    assert np.array_equal(result.mask, s["mask"])


@pytest.mark.slow
def test_cli_segment_and_eval_accept_weightfree_segmenters(tiny_answering_models, tmp_path):
    from segzero.cli.main import main

    image = tmp_path / "scene.png"
    make_sample(0, config=ShapesConfig(size=96))["image"].save(image)
    reasoner = str(tiny_answering_models["reasoner"])
    argv = ["segment", "--image", str(image), "--query", "the largest shape", "--reasoner", reasoner]
    assert main([*argv, "--segmenter", "grabcut", "--frame", "56", "--out", str(tmp_path / "seg")]) == 0
    result = json.loads((tmp_path / "seg" / "result.json").read_text())
    assert result["parse_ok"] and len(result["objects"]) == 1
    data = tmp_path / "world"
    assert main(["world", "build", "--out", str(data), "--layout", "eval", "--split", "val", "--n", "3"]) == 0
    argv = ["eval", "--data", str(data), "--split", "val", "--reasoner", reasoner, "--segmenter", "color"]
    assert (
        main([*argv, "--frame", "56", "--max-new-tokens", "64", "--out", str(tmp_path / "ev"), "--no-progress"]) == 0
    )
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["n"] == 3 and summary["errors"] == 0 and summary["models"]["segmenter"] == "color"
