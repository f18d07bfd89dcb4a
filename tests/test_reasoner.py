"""Tests for the image-only Qwen-VL processor and the Reasoner adapter (tiny offline model, CPU).

Run: ``OMP_NUM_THREADS=1 pytest tests/test_reasoner.py -x -q``
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from segzero.errors import UserError
from segzero.models.processor import ImageOnlyProcessor, QwenImagePreprocessor, smart_resize
from segzero.models.reasoner import (
    Reasoner,
    default_prompt_kind,
    read_model_info,
    recorded_segmenter,
    resolve_prompt_and_frame,
    write_model_info,
)

FRAME = 56  # tiny model frame for tests: 56 x 56 -> 4 x 4 patches -> 4 image tokens


def _noise(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    "h, w, min_pixels, max_pixels",
    [
        (840, 840, 56 * 56, 28 * 28 * 1280),  # the Seg-Zero frame: already a multiple of 28
        (100, 57, 56 * 56, 28 * 28 * 1280),  # rounds to nearest multiples
        (1, 1, 56 * 56, 28 * 28 * 1280),  # below min_pixels: scaled up
        (3000, 4000, 56 * 56, 28 * 28 * 1280),  # above max_pixels: scaled down
        (20, 3000, 56 * 56, 28 * 28 * 256),  # extreme aspect ratio (< 200)
    ],
)
def test_smart_resize_matches_transformers(h, w, min_pixels, max_pixels):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as ref

    got = smart_resize(h, w, factor=28, min_pixels=min_pixels, max_pixels=max_pixels)
    assert got == ref(h, w, factor=28, min_pixels=min_pixels, max_pixels=max_pixels)
    assert got[0] % 28 == 0 and got[1] % 28 == 0


def _reference_processors():
    """transformers' own Qwen2-VL image processors available here: the PIL (slow) one, + torchvision's."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    procs = [Qwen2VLImageProcessorPil()]
    if importlib.util.find_spec("torchvision") is not None:
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

        procs.append(Qwen2VLImageProcessor())
    return procs


@pytest.mark.parametrize(
    "size, mode, resized",
    [
        ((56, 56), "RGB", False),  # no resize needed (the case of every frame that is a multiple of 28, e.g. 840)
        ((100, 57), "RGB", True),  # bicubic resize to 112 x 56
        ((1, 1), "RGB", True),  # tiny image scaled up to the minimum
        ((70, 90), "L", True),  # grayscale converted to RGB
    ],
)
def test_image_preprocessing_matches_transformers(size, mode, resized):
    image = _noise(*size).convert(mode)
    ours_pv, ours_grid = QwenImagePreprocessor()([image])
    for ref in _reference_processors():
        out = ref(images=[image], return_tensors="np")
        np.testing.assert_array_equal(ours_grid, np.asarray(out["image_grid_thw"]))
        if resized and type(ref).__name__ == "Qwen2VLImageProcessor":
            continue  # torchvision's bicubic differs from PIL's by design; we match the PIL processor's resize
        np.testing.assert_allclose(ours_pv, np.asarray(out["pixel_values"]), atol=2e-5, err_msg=type(ref).__name__)


def test_processor_expands_image_tokens_and_left_pads(tiny_models):
    proc = ImageOnlyProcessor.from_pretrained(tiny_models["reasoner"])
    proc.tokenizer.padding_side = "left"
    texts = [
        "<|vision_start|><|image_pad|><|vision_end|>a",
        "<|vision_start|><|image_pad|><|vision_end|>a longer text",
    ]
    batch = proc(text=texts, images=[_noise(56, 56), _noise(112, 56)], return_tensors="np")
    n_tokens = batch["image_grid_thw"].prod(axis=1) // 4  # merge_size 2 -> 4 patches per token
    assert list(n_tokens) == [4, 8]
    np.testing.assert_array_equal(batch["mm_token_type_ids"].sum(axis=1), n_tokens)
    assert (batch["input_ids"] == proc.image_token_id).sum() == n_tokens.sum()
    # left padding: the shorter row starts with padding, every row ends with a real token
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][:, -1].all()


HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


@pytest.mark.skipif(HAS_TORCHVISION, reason="checks the fallback for machines without torchvision")
def test_load_processor_falls_back_without_torchvision(tiny_models):
    from segzero.models.processor import load_processor

    with pytest.raises(ImportError):  # the stock Qwen-VL processor needs torchvision for its video half
        load_processor(tiny_models["reasoner"], prefer="stock")
    assert isinstance(load_processor(tiny_models["reasoner"]), ImageOnlyProcessor)


def test_image_only_processor_reads_nested_processor_config(tiny_models, tmp_path):
    # a stock processor of newer transformers (with torchvision) saves one processor_config.json with the image
    # settings under "image_processor" and no preprocessor_config.json: machines without torchvision load it too
    import json
    import shutil

    folder = tmp_path / "saved"
    shutil.copytree(tiny_models["reasoner"], folder)
    flat = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").unlink()
    (folder / "processor_config.json").write_text(json.dumps({"image_processor": flat, "processor_class": "X"}))
    loaded = ImageOnlyProcessor.from_pretrained(folder).image_processor
    assert loaded == ImageOnlyProcessor.from_pretrained(tiny_models["reasoner"]).image_processor
    (folder / "processor_config.json").unlink()
    with pytest.raises(OSError, match="image processor settings"):
        ImageOnlyProcessor.from_pretrained(folder)


@pytest.mark.skipif(not HAS_TORCHVISION, reason="the stock Qwen-VL processor needs torchvision")
def test_image_only_processor_matches_stock_processor(tiny_models):
    from segzero.models.processor import load_processor

    stock = load_processor(tiny_models["reasoner"], prefer="stock")
    ours = load_processor(tiny_models["reasoner"], prefer="image-only")
    texts = ["<|vision_start|><|image_pad|><|vision_end|>a b c", "<|vision_start|><|image_pad|><|vision_end|>d"]
    images = [_noise(56, 56), _noise(140, 84)]
    for proc in (stock, ours):
        proc.tokenizer.padding_side = "left"
    a = stock(text=texts, images=images, padding=True, return_tensors="np")
    b = ours(text=texts, images=images, padding=True, return_tensors="np")
    for key in ("input_ids", "attention_mask", "mm_token_type_ids", "image_grid_thw"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_allclose(a["pixel_values"], b["pixel_values"], atol=1e-2)  # torchvision resize differs a bit


@pytest.mark.parametrize(
    "name, kind",
    [
        ("Ricky06662/Seg-Zero-7B", "segzero"),  # the default checkpoint: single object
        ("ricky06662/visionreasoner-7b", "visionreasoner"),  # preset, case-insensitive
        ("someone/VisionReasoner-3B-finetune", "visionreasoner"),  # VisionReasoner derivatives
        ("/tmp/any/local/folder", "segzero"),  # local folders default to the Seg-Zero prompt
    ],
)
def test_default_prompt_kind(name, kind):
    assert default_prompt_kind(name) == kind


@pytest.mark.parametrize(
    "info, prompt, frame, expected",
    [
        ({}, None, None, ("segzero", 840)),  # nothing recorded: the paper's frame and the id's preset
        ({"frame": 112, "prompt": "visionreasoner"}, None, None, ("visionreasoner", 112)),  # segzero.json wins
        ({"frame": 112}, None, 56, ("segzero", 56)),  # an explicit frame beats the recorded one
        ({"frame": [112, 84]}, "segzero", None, ("segzero", (112, 84))),  # (w, h) frames survive the JSON round trip
    ],
)
def test_prompt_and_frame_come_from_segzero_json(tmp_path, info, prompt, frame, expected):
    if info:
        write_model_info(tmp_path, **info)
    assert resolve_prompt_and_frame(tmp_path, prompt=prompt, frame=frame) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),  # nothing recorded: the caller's default applies (SAM2-large)
        ("color", "color"),  # a weight-free segmenter name is kept as written
        ("facebook/sam2-hiera-tiny", "facebook/sam2-hiera-tiny"),  # hub ids are kept as written
        ("../segmenter", "SIBLING"),  # "." paths are relative to the reasoner folder
    ],
)
def test_recorded_segmenter(tmp_path, value, expected):
    folder = tmp_path / "reasoner"
    folder.mkdir()
    write_model_info(folder, frame=56, **({"segmenter": value} if value else {}))
    want = str((tmp_path / "segmenter").resolve()) if expected == "SIBLING" else expected
    assert recorded_segmenter(folder) == want


def test_tiny_reasoner_records_its_frame(tiny_models):
    # segzero tiny-models writes segzero.json, so `segzero segment` needs no --frame for the tiny reasoner
    reasoner_ = Reasoner.from_pretrained(tiny_models["reasoner"], max_new_tokens=2)
    assert reasoner_.frame == read_model_info(tiny_models["reasoner"])["frame"] == 56
    assert recorded_segmenter(tiny_models["reasoner"]) == str(tiny_models["segmenter"].resolve())


@pytest.fixture(scope="module")
def reasoner(tiny_models):
    return Reasoner.from_pretrained(tiny_models["reasoner"], frame=FRAME, max_new_tokens=8)


@pytest.mark.slow
def test_reasoner_loads_on_cpu_fp32(reasoner):
    import torch

    assert reasoner.device.type == "cpu"
    assert next(reasoner.model.parameters()).dtype == torch.float32
    assert reasoner.prompt == "segzero"


@pytest.mark.slow
@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("segzero", "<|vision_start|><|image_pad|><|vision_end|>Please find 'the cup' with bbox and points."),
        # single object, Seg-Zero checkpoints
        ("visionreasoner", '<|vision_start|><|image_pad|><|vision_end|>Please find "the cup" with bboxs and points.'),
        # multi object, VisionReasoner checkpoints
    ],
)
def test_prompt_text_is_qwen_chat_format(reasoner, prompt, expected):
    reasoner.prompt = prompt
    try:
        text = reasoner.prompt_text(_noise(FRAME, FRAME), "The cup.")
    finally:
        reasoner.prompt = "segzero"
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert expected in text
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.slow
def test_generate_batched_equals_single(reasoner):
    # different image sizes and query lengths force left padding inside the batch
    images = [_noise(40, 30, 1), _noise(300, 200, 2), _noise(64, 64, 3)]
    queries = ["the cat", "the man holding an umbrella on the left side", "a car"]
    batched = reasoner.generate(images, queries, batch_size=3)
    single = [reasoner.generate([im], [q])[0] for im, q in zip(images, queries, strict=True)]
    assert len(batched) == 3 and all(isinstance(t, str) for t in batched)
    assert batched == single


@pytest.mark.slow
@pytest.mark.parametrize(
    "max_new_tokens, complete",
    [
        (5, False),  # cut after 5 tokens: a strict prefix of the taught answer
        (80, True),  # enough room: the whole answer, stopped by <|im_end|>
    ],
)
def test_generate_respects_max_new_tokens(tiny_answering_models, max_new_tokens, complete):
    from segzero.models.tiny.teach import TAUGHT_ANSWER

    taught = Reasoner.from_pretrained(tiny_answering_models["reasoner"], frame=FRAME)
    (text,) = taught.generate([_noise(50, 40)], ["the cat"], max_new_tokens=max_new_tokens)
    assert (text == TAUGHT_ANSWER) is complete
    assert TAUGHT_ANSWER.startswith(text) and len(taught.processor.tokenizer(text)["input_ids"]) <= max_new_tokens


@pytest.mark.slow
def test_sampling_runs(reasoner):
    # temperature > 0 switches to sampling; the output contract is the same
    out = reasoner.generate([_noise(30, 30), _noise(60, 20)], ["a", "b"], temperature=1.0, top_p=0.9)
    assert len(out) == 2 and all(isinstance(t, str) for t in out)


@pytest.mark.parametrize(
    "images, queries",
    [
        ([_noise(8, 8)], [""]),  # empty query
        ([_noise(8, 8)], ["   "]),  # whitespace-only query
        ([_noise(8, 8)], ["a", "b"]),  # length mismatch
    ],
)
def test_generate_rejects_bad_input(reasoner, images, queries):
    with pytest.raises(UserError):
        reasoner.generate(images, queries)


@pytest.mark.parametrize(
    "name, message",
    [
        ("./does/not/exist", "folder not found"),  # a path that does not exist
        ("not a valid id!", "valid hub id"),  # neither a folder nor a hub id
    ],
)
def test_from_pretrained_bad_source(name, message):
    with pytest.raises(UserError, match=message):
        Reasoner.from_pretrained(name)


def test_from_pretrained_folder_without_config(tmp_path):
    # an existing folder that is not a saved model
    with pytest.raises(UserError, match="no config.json"):
        Reasoner.from_pretrained(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "prompt, max_new_tokens, expected",
    [
        (None, None, 1024),  # the tiny folder's segzero.json says "segzero": Seg-Zero's scripts generate 1024
        ("visionreasoner", None, 2048),  # VisionReasoner's model wrapper generates up to 2048
        ("visionreasoner", 8, 8),  # an explicit limit wins
    ],
)
def test_generation_limit_defaults_to_the_prompt_familys(tiny_models, prompt, max_new_tokens, expected):
    loaded = Reasoner.from_pretrained(tiny_models["reasoner"], prompt=prompt, max_new_tokens=max_new_tokens)
    assert loaded.max_new_tokens == expected


def test_local_folder_that_fails_to_load_is_not_reported_as_a_hub_id(tiny_models, tmp_path):
    # a local folder transformers cannot load (here: no image processor settings) names the folder, not the hub
    import shutil

    folder = shutil.copytree(tiny_models["reasoner"], tmp_path / "reasoner")
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(UserError, match="cannot load reasoner folder .*image processor settings") as err:
        Reasoner.from_pretrained(folder, processor="image-only")
    assert "hub" not in str(err.value)


def _palette(w: int, h: int) -> Image.Image:
    return _noise(w, h).quantize(colors=16)


@pytest.mark.parametrize(
    "image, stored_mode, reference",
    [
        # segzero's default: convert to RGB, then resize bilinearly (Seg-Zero's inference script)
        (_palette(90, 70), False, lambda im: im.convert("RGB").resize((56, 56), Image.Resampling.BILINEAR)),
        # Seg-Zero's evaluation script: resize in the stored mode (Pillow resizes "P" NEAREST), then convert
        (_palette(90, 70), True, lambda im: im.resize((56, 56), Image.Resampling.BILINEAR).convert("RGB")),
        # an RGB image is the same either way
        (_noise(90, 70), True, lambda im: im.resize((56, 56), Image.Resampling.BILINEAR)),
    ],
)
def test_frame_resize_order(image, stored_mode, reference):
    frame_of = Reasoner(model=None, processor=None, name="x", frame=56, resize_in_stored_mode=stored_mode).to_frame
    np.testing.assert_array_equal(np.asarray(frame_of(image)), np.asarray(reference(image)))


def test_the_two_resize_orders_differ_for_a_palette_image():
    # what the option is for: the same palette image reaches the model with other pixels
    image = _palette(90, 70)
    frames = [
        Reasoner(model=None, processor=None, name="x", frame=56, resize_in_stored_mode=m).to_frame(image)
        for m in (False, True)
    ]
    assert not np.array_equal(np.asarray(frames[0]), np.asarray(frames[1]))


def test_teaching_a_fixed_answer_shows_its_progress(tiny_models, tmp_path, capsys):
    # `segzero tiny-models --answering` teaches for minutes on a CPU: every step shows on a progress bar
    import shutil

    from segzero.models.tiny.teach import TAUGHT_ANSWER, teach_answer

    shutil.copytree(tiny_models["reasoner"], tmp_path / "reasoner")
    teach_answer(tmp_path / "reasoner", TAUGHT_ANSWER, steps=3, progress=True, verify=False)
    err = capsys.readouterr().err
    assert "teaching the tiny reasoner its answer" in err and "3/3" in err


def _load_eval(name):
    from segzero.eval.datasets import load_eval_dataset

    return load_eval_dataset(name)


def _load_train(name):
    from segzero.train.data import load_raw_dataset

    return load_raw_dataset(name)


@pytest.mark.parametrize(
    "load, what",
    [
        (_load_eval, "dataset"),  # segzero eval --data OWNER/NAME
        (_load_train, "training dataset"),  # segzero train with dataset: OWNER/NAME
    ],
)
def test_unreachable_hub_dataset_fails_at_once_in_one_line(monkeypatch, tmp_path, load, what):
    # the hub endpoint refuses connections (a closed local port) and nothing is cached: one clear error within
    # seconds, before the datasets library starts retrying
    import time

    import datasets
    import huggingface_hub.constants

    for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("load_dataset was reached"))
    start = time.perf_counter()
    with pytest.raises(UserError, match=rf"^{what} 'someone/some_set' is not a local folder and the hub") as err:
        load("someone/some_set")
    assert time.perf_counter() - start < 10 and "\n" not in str(err.value)
    assert "segzero world build" in str(err.value)
