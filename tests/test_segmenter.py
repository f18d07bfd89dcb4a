"""Tests for the SAM2 segmenter adapter and its torch-only pre/post-processing.

Run: ``OMP_NUM_THREADS=1 pytest tests/test_segmenter.py -x -q``. Uses the tiny random-weight SAM2 from the session
fixture ``tiny_models`` (loaded through ``Segmenter.from_pretrained`` like a real checkpoint). The parity test
against transformers' ``Sam2Processor`` runs only where torchvision is installed.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from segzero.errors import UserError
from segzero.models.base import Prediction
from segzero.models.sam2_processing import (
    Sam2PreprocessConfig,
    preprocess_image,
    to_input_frame,
    to_rgb_array,
    transformers_composites_alpha,
    upsample_logits,
)
from segzero.models.segmenter import Segmenter


def _noise(height: int, width: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    return Image.fromarray(array[:, :, 0] if channels == 1 else array, mode=mode)


@pytest.fixture(scope="module")
def seg_path(tiny_models):
    return tiny_models["segmenter"]


@pytest.fixture
def segmenter(seg_path) -> Segmenter:
    return Segmenter.from_pretrained(seg_path, device="cpu")


# ---------------------------------------------------------------------------------------------- processing (fast)


@pytest.mark.parametrize(
    ("size", "coords", "expected"),
    [
        # square image already at 1024: identity
        ((1024, 1024), [[10.0, 20.0]], [[10.0, 20.0]]),
        # wide image: x shrinks by 1024/2048, y grows by 1024/512 (aspect ratio not kept, as SAM2 resizes)
        ((512, 2048), [[1024.0, 256.0]], [[512.0, 512.0]]),
        # tall odd image: each axis scales by its own factor
        ((13, 7), [[7.0, 13.0], [0.0, 0.0]], [[1024.0, 1024.0], [0.0, 0.0]]),
    ],
)
def test_to_input_frame_scales_each_axis(size, coords, expected):
    out = to_input_frame(torch.tensor(coords), size, Sam2PreprocessConfig())
    assert torch.allclose(out, torch.tensor(expected), atol=1e-4)


def test_preprocess_without_resize_is_rescale_and_imagenet_normalisation():
    # a 1024 x 1024 image is not resized, so each value is (v / 255 - mean) / std, channels first
    image = _noise(1024, 1024)
    pixels, size = preprocess_image(image, Sam2PreprocessConfig())
    array = np.asarray(image, dtype=np.float64) / 255.0
    expected = (array - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    assert size == (1024, 1024) and pixels.shape == (1, 3, 1024, 1024) and pixels.dtype == torch.float32
    np.testing.assert_allclose(pixels[0].permute(1, 2, 0).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("image", "expected_size"),
    [
        (_noise(7, 13), (7, 13)),  # odd size: upscaled to the input size, original (H, W) reported
        (_noise(1, 1, "L"), (1, 1)),  # 1x1 grayscale: converted to 3 channels
        (_noise(30, 20, "RGBA"), (30, 20)),  # RGBA: alpha composited, still 3 channels
    ],
)
def test_preprocess_output_shape(image, expected_size):
    pixels, size = preprocess_image(image, Sam2PreprocessConfig())
    assert size == expected_size and pixels.shape == (1, 3, 1024, 1024) and torch.isfinite(pixels).all()


def test_transparency_composited_onto_white():
    # a fully transparent black pixel becomes white, an opaque one keeps its colour
    image = Image.fromarray(np.array([[[0, 0, 0, 0], [10, 20, 30, 255]]], dtype=np.uint8), mode="RGBA")
    assert to_rgb_array(image).tolist() == [[[255, 255, 255], [10, 20, 30]]]


def test_alpha_behaviour_of_the_installed_transformers_is_known():
    # transformers_composites_alpha names what the installed transformers does with transparency (no torchvision
    # needed): its convert_to_rgb either composites a transparent black pixel onto white or drops the alpha
    from transformers.image_transforms import convert_to_rgb

    image = Image.fromarray(np.array([[[0, 0, 0, 0]]], dtype=np.uint8), mode="RGBA")
    got = np.array(convert_to_rgb(image)).reshape(-1).tolist()
    assert got == ([255, 255, 255] if transformers_composites_alpha() else [0, 0, 0])


def test_upsample_logits_shape_and_constant():
    # a constant low-res logit map stays constant at any output size (bilinear, align_corners=False)
    logits = torch.full((2, 256, 256), 3.0)
    out = upsample_logits(logits, (5000, 300))
    assert out.shape == (2, 5000, 300) and torch.all(out == 3.0)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # empty file: SAM2 defaults
        ({}, Sam2PreprocessConfig()),
        # the hub's field layout: size dict, lists, resample code
        (
            {"size": {"height": 512, "width": 512}, "image_mean": [0.5, 0.5, 0.5], "resample": 2},
            Sam2PreprocessConfig(size=(512, 512), image_mean=(0.5, 0.5, 0.5)),
        ),
        # round trip of what the tiny model writes
        (Sam2PreprocessConfig(size=(256, 256)).to_dict(), Sam2PreprocessConfig(size=(256, 256))),
    ],
)
def test_preprocess_config_from_dict(data, expected):
    assert Sam2PreprocessConfig.from_dict(data) == expected


def test_preprocess_config_rejects_unsupported_resample():
    # LANCZOS (1) cannot be reproduced with torch alone: refuse instead of silently differing
    with pytest.raises(ValueError, match="resample"):
        Sam2PreprocessConfig.from_dict({"resample": 1})


# ---------------------------------------------------------------------------------------------- loading


@pytest.mark.parametrize(
    ("files", "match"),
    [
        (None, "does not exist"),  # the folder itself is missing
        ({}, "config.json"),  # an empty folder: not a saved model
        ({"config.json": "{not json"}, "unreadable config.json"),  # a corrupt config
        ({"config.json": json.dumps({"model_type": "qwen2_5_vl"})}, "SAM2"),  # another model's folder
        ({"config.json": json.dumps({"model_type": "sam"})}, "SAM2"),  # SAM v1 preprocesses differently
        ({"config.json": json.dumps({"model_type": "sam2_video"})}, "has no weights"),  # configs without weights
        (  # a git clone made without git-lfs: the weight file is a pointer
            {
                "config.json": json.dumps({"model_type": "sam2"}),
                "model.safetensors": "version https://git-lfs.github.com/spec/v1\n",
            },
            "Git LFS pointer",
        ),
    ],
)
def test_bad_model_folder_is_one_line_user_error(tmp_path, files, match):
    folder = tmp_path / "segmenter"
    if files is not None:
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
    with pytest.raises(UserError, match=match) as info:
        Segmenter.from_pretrained(str(folder))
    assert "\n" not in str(info.value)


def test_offline_hub_id_is_one_line_user_error(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # fail fast instead of retrying DNS
    with pytest.raises(UserError) as info:
        Segmenter.from_pretrained("segzero-test/no-such-sam2")
    assert "segzero-test/no-such-sam2" in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------- model (tiny SAM2)


@pytest.mark.slow
def test_loads_hub_style_sam2_video_checkpoint(tmp_path):
    # the hub's facebook/sam2-* repos are Sam2VideoModel checkpoints: their image part must load unchanged
    from transformers import Sam2VideoModel

    from segzero.models.tiny.segmenter import build_tiny_segmenter

    path = build_tiny_segmenter(tmp_path / "video", checkpoint_format="sam2_video")
    seg = Segmenter.from_pretrained(path)
    saved = Sam2VideoModel.from_pretrained(path).state_dict()
    loaded = seg.model.state_dict()
    assert loaded.keys() <= saved.keys() and "mask_decoder.iou_token.weight" in loaded
    for key, value in loaded.items():
        assert torch.equal(value, saved[key]), key
    seg.set_image(_noise(30, 40))
    assert seg.predict(boxes=[[0, 0, 20, 20]]).object_masks.shape == (1, 30, 40)


def test_checkpoint_file_instead_of_folder_is_user_error(tmp_path):
    # e.g. the sam2 package's sam2_hiera_large.pt: not loadable through transformers
    checkpoint = tmp_path / "sam2_hiera_large.pt"
    checkpoint.write_bytes(b"\x00")
    with pytest.raises(UserError, match="is a file"):
        Segmenter.from_pretrained(checkpoint)


@pytest.mark.slow
def test_preprocessor_size_must_match_model(seg_path, tmp_path):
    # a preprocessor_config.json for another input size would silently misplace every prompt: refuse it
    import shutil

    folder = shutil.copytree(seg_path, tmp_path / "segmenter")
    data = json.loads((folder / "preprocessor_config.json").read_text())
    data["size"] = {"height": 512, "width": 512}
    (folder / "preprocessor_config.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="does not match"):
        Segmenter.from_pretrained(folder)


@pytest.mark.slow
def test_loads_on_cpu_in_float32(segmenter):
    assert segmenter.device.type == "cpu" and segmenter.dtype == torch.float32 and segmenter.autocast_dtype is None
    assert segmenter.preprocess.size == (1024, 1024) and segmenter.image_size is None


@pytest.mark.parametrize(
    ("dtype", "device_type", "bf16", "expected"),
    [
        (None, "cuda", True, (torch.float32, torch.bfloat16)),  # the reference: fp32 weights under bf16 autocast
        (None, "cuda", False, (torch.float32, None)),  # a GPU without bf16: plain fp32
        (None, "cpu", False, (torch.float32, None)),  # the CPU: plain fp32
        ("float32", "cuda", True, (torch.float32, None)),  # VisionReasoner's scripts: fp32, no autocast
        ("bfloat16", "cuda", True, (torch.bfloat16, None)),  # bf16 weights: half the weight memory
        (torch.float16, "cuda", True, (torch.float16, None)),  # a torch dtype is taken as given
    ],
)
def test_precision_for(dtype, device_type, bf16, expected):
    from segzero.models.segmenter import precision_for

    assert precision_for(dtype, device_type, bf16_supported=bf16) == expected


@pytest.mark.slow
def test_autocast_runs_fp32_weights_in_bf16(seg_path):
    # the reference's precision, here on the CPU: weights stay fp32, features come out of bf16 autocast, and the
    # masks stay close to the fp32 ones (random tiny weights: most pixels agree)
    plain = Segmenter.from_pretrained(seg_path, device="cpu")
    mixed = Segmenter(plain.model, plain.preprocess, autocast_dtype=torch.bfloat16)
    image, box = _noise(64, 80, seed=3), [[10, 10, 60, 50]]
    embedding = mixed.embed([image])[0]
    assert mixed.dtype == torch.float32 and torch.bfloat16 in {f.dtype for f in embedding.features}
    a = plain.predict(boxes=box, embedding=plain.embed([image])[0]).mask
    b = mixed.predict(boxes=box, embedding=embedding).mask
    assert a.shape == b.shape == (64, 80) and (a == b).mean() > 0.9


@pytest.mark.slow
def test_predict_before_set_image_is_clear_error(segmenter):
    with pytest.raises(RuntimeError, match="set_image"):
        segmenter.predict(boxes=[[0, 0, 5, 5]])


@pytest.mark.slow
def test_embedding_computed_once_per_image(segmenter):
    segmenter.set_image(_noise(40, 60))
    for _ in range(3):  # prompts reuse the embedding
        segmenter.predict(boxes=[[1, 1, 30, 20]])
    assert segmenter.num_embeddings == 1
    segmenter.set_image(_noise(40, 60, seed=1))
    segmenter.embed([_noise(8, 8), _noise(9, 9), _noise(10, 10)], batch_size=2)
    assert segmenter.num_embeddings == 5 and segmenter.image_size == (40, 60)


BOXES = [[5, 5, 60, 40], [30, 10, 90, 70], [0, 50, 40, 79]]
POINTS = [[[20, 20]], [[60, 40]], [[10, 60]]]


@pytest.mark.slow
@pytest.mark.parametrize(
    "prompts",
    [
        {"boxes": BOXES},  # boxes only
        {"points": POINTS},  # points only, labels default to foreground
        {"boxes": BOXES, "points": POINTS, "labels": [[1], [1], [1]]},  # both, as Seg-Zero prompts SAM2
        {"points": [[[20, 20], [70, 70]]] * 3, "labels": [[1, 0]] * 3},  # several points with a background one
    ],
)
def test_predict_n_objects_gives_n_masks_and_their_or(segmenter, prompts):
    segmenter.set_image(_noise(80, 100))
    pred = segmenter.predict(**prompts)
    assert pred.object_masks.shape == (3, 80, 100) and pred.object_masks.dtype == bool
    assert pred.mask.shape == (80, 100) and pred.mask.dtype == bool
    assert pred.scores.shape == (3,) and np.isfinite(pred.scores).all()
    np.testing.assert_array_equal(pred.mask, pred.object_masks.any(axis=0))


@pytest.mark.slow
def test_objects_are_independent_of_batching(seg_path):
    # each object's mask is the same whether decoded alone, with the others, or in chunks of 2
    image = _noise(80, 100)
    single = Segmenter.from_pretrained(seg_path)
    chunked = Segmenter.from_pretrained(seg_path, max_objects_per_call=2)
    single.set_image(image)
    chunked.set_image(image)
    together = single.predict(boxes=BOXES, points=POINTS)
    in_chunks = chunked.predict(boxes=BOXES, points=POINTS)
    for i in range(3):
        alone = single.predict(boxes=BOXES[i : i + 1], points=POINTS[i : i + 1])
        np.testing.assert_array_equal(alone.object_masks[0], together.object_masks[i])
        np.testing.assert_array_equal(in_chunks.object_masks[i], together.object_masks[i])
        assert alone.scores[0] == pytest.approx(together.scores[i], abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("height", "width"),
    [
        (1, 1),  # a single pixel
        (5000, 300),  # very tall and thin
        (7, 13),  # odd, tiny
    ],
)
def test_mask_has_original_size(segmenter, height, width):
    segmenter.set_image(_noise(height, width))
    pred = segmenter.predict(boxes=[[0, 0, width - 1, height - 1]], points=[[[width // 2, height // 2]]])
    assert pred.mask.shape == (height, width) and pred.object_masks.shape == (1, height, width)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("outside", "clipped"),
    [
        # box beyond every edge == the whole-image box
        ({"boxes": [[-100, -50, 1e5, 1e4]]}, {"boxes": [[0, 0, 99, 79]]}),
        # points left/below the image snap to the nearest edge pixel
        ({"points": [[[-30, 500]]]}, {"points": [[[0, 79]]]}),
        # reversed corners are reordered, then clipped
        ({"boxes": [[150, 60, 10, -5]]}, {"boxes": [[10, 0, 99, 60]]}),
    ],
)
def test_coordinates_outside_image_are_clipped(segmenter, outside, clipped):
    segmenter.set_image(_noise(80, 100))
    got, want = segmenter.predict(**outside), segmenter.predict(**clipped)
    np.testing.assert_array_equal(got.object_masks, want.object_masks)
    np.testing.assert_allclose(got.scores, want.scores)


@pytest.mark.slow
@pytest.mark.parametrize(
    "prompts",
    [
        {},  # no prompts at all
        {"boxes": np.zeros((0, 4))},  # zero boxes
        {"boxes": [], "points": []},  # empty lists (a parsed answer with no objects)
    ],
)
def test_zero_objects_give_empty_mask(segmenter, prompts):
    segmenter.set_image(_noise(20, 30))
    pred = segmenter.predict(**prompts)
    assert pred.mask.shape == (20, 30) and not pred.mask.any()
    assert pred.object_masks.shape == (0, 20, 30) and pred.scores.shape == (0,)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("prompts", "match"),
    [
        ({"boxes": [1, 2, 3, 4]}, r"\(N, 4\)"),  # a flat box instead of (N, 4)
        ({"points": [[1, 2]]}, r"\(N, P, 2\)"),  # (P, 2) without the object axis
        ({"points": [[[1, 2]]], "labels": [1, 1]}, "labels"),  # labels not (N, P)
        ({"boxes": [[0, 0, 5, 5]], "points": [[[1, 1]], [[2, 2]]]}, "different numbers"),  # N mismatch
        ({"boxes": [[0, 0, float("nan"), 5]]}, "non-finite"),  # NaN coordinate
        ({"labels": [[1]]}, "without points"),  # labels alone
    ],
)
def test_bad_prompts_raise_value_error(segmenter, prompts, match):
    segmenter.set_image(_noise(20, 30))
    with pytest.raises(ValueError, match=match):
        segmenter.predict(**prompts)


@pytest.mark.slow
def test_single_mask_mode_and_explicit_embedding(segmenter):
    # multimask=False uses SAM2's single output; predict(embedding=...) works without set_image
    (emb,) = segmenter.embed([_noise(50, 40)])
    pred = segmenter.predict(boxes=[[2, 2, 30, 40]], multimask=False, embedding=emb)
    assert isinstance(pred, Prediction) and pred.object_masks.shape == (1, 50, 40)
    assert segmenter.image_size is None


@pytest.mark.slow
def test_batched_embedding_matches_single(segmenter):
    images = [_noise(40, 60, seed=s) for s in range(3)]
    batched = segmenter.embed(images, batch_size=3)
    for image, emb in zip(images, batched, strict=True):
        (one,) = segmenter.embed([image])
        assert emb.original_size == one.original_size
        for a, b in zip(emb.features, one.features, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------------------------------- parity


PARITY_CASES = [
    # (image, boxes, points): landscape RGB, odd RGBA, tall grayscale; prompts inside the image
    (_noise(480, 640), [[10, 20, 300, 400], [100, 100, 600, 470]], [[[50, 60]], [[200, 200]]]),
    (_noise(7, 13, "RGBA"), [[0, 0, 12, 6]], [[[6, 3]]]),
    (_noise(1500, 90, "L"), [[5, 100, 80, 1400]], [[[40, 700]]]),
]


@pytest.mark.slow
@pytest.mark.parametrize(("image", "boxes", "points"), PARITY_CASES)
def test_matches_transformers_sam2_processor(segmenter, seg_path, image, boxes, points):
    pytest.importorskip("torchvision", reason="transformers' Sam2Processor needs torchvision, which is not installed")
    from transformers import Sam2Processor

    processor = Sam2Processor.from_pretrained(seg_path)
    labels = [[1] * len(p) for p in points]
    # segzero composites transparency onto white on every version; a transformers that drops alpha instead is
    # given the composited image, so the rest of the path is still compared bit for bit
    shown = image if transformers_composites_alpha() else Image.fromarray(to_rgb_array(image))
    inputs = processor(
        images=shown, input_boxes=[boxes], input_points=[points], input_labels=[labels], return_tensors="pt"
    )
    pixels, size = preprocess_image(image, segmenter.preprocess)
    torch.testing.assert_close(pixels, inputs["pixel_values"], atol=1e-6, rtol=0)
    assert list(size) == list(inputs["original_sizes"][0])
    box_frame = to_input_frame(torch.tensor(boxes, dtype=torch.float32).view(-1, 2, 2), size, segmenter.preprocess)
    torch.testing.assert_close(box_frame.view(1, -1, 4), inputs["input_boxes"])
    torch.testing.assert_close(
        to_input_frame(torch.tensor(points, dtype=torch.float32), size, segmenter.preprocess)[None],
        inputs["input_points"],
    )

    with torch.inference_mode():
        out = segmenter.model(
            pixel_values=inputs["pixel_values"],
            input_boxes=inputs["input_boxes"],
            input_points=inputs["input_points"],
            input_labels=inputs["input_labels"],
        )
    masks = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0]  # (N, 3, H, W) bool
    best = out.iou_scores[0].argmax(dim=-1)
    expected = masks[torch.arange(len(boxes)), best].numpy()

    segmenter.set_image(image)
    pred = segmenter.predict(boxes=boxes, points=points, labels=labels)
    np.testing.assert_array_equal(pred.object_masks, expected)
    np.testing.assert_allclose(pred.scores, out.iou_scores[0].max(dim=-1).values.numpy(), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("resample", "cpu_capability"),
    [
        (2, None),  # bilinear on this CPU (native uint8 kernel on AVX2/AVX512)
        (2, "DEFAULT"),  # bilinear without SIMD: torchvision goes through float32 and rounds
        (3, None),  # bicubic (always native uint8 on CPU)
        (0, None),  # nearest
    ],
)
def test_pixel_values_match_transformers_for_resample_modes(seg_path, monkeypatch, resample, cpu_capability):
    pytest.importorskip("torchvision", reason="transformers' Sam2Processor needs torchvision, which is not installed")
    from transformers import Sam2Processor

    if cpu_capability is not None:
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: cpu_capability)
    processor = Sam2Processor.from_pretrained(seg_path)
    processor.image_processor.resample = resample
    config = dataclasses.replace(
        Sam2PreprocessConfig.from_file(seg_path / "preprocessor_config.json"), resample=resample
    )
    for image in (_noise(480, 640), _noise(7, 13), _noise(2000, 90)):
        expected = processor(images=image, return_tensors="pt")["pixel_values"]
        torch.testing.assert_close(preprocess_image(image, config)[0], expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("batch_size", "passes"),
    [
        (None, 5),  # default on the CPU: one image per encoder pass (faster per image there than a batch)
        (2, 3),  # asked for: 2 + 2 + 1
        (8, 1),  # all five in one pass
    ],
)
def test_embed_passes_per_batch_size(segmenter, batch_size, passes):
    # oracle: the encoder's own call count, and every image embedded once whatever the batching
    from segzero.models.segmenter import EMBED_BATCH_CPU

    calls = []
    encode = segmenter.model.get_image_embeddings

    def counted(pixels):
        calls.append(len(pixels))
        return encode(pixels)

    segmenter.model.get_image_embeddings = counted
    images = [_noise(40, 60, seed=k) for k in range(5)]
    before = segmenter.num_embeddings
    out = segmenter.embed(images, batch_size=batch_size)
    assert len(calls) == passes and sum(calls) == 5 and len(out) == 5
    assert segmenter.num_embeddings - before == 5
    if batch_size is None:
        assert max(calls) == EMBED_BATCH_CPU
