"""The tiny-model builder's architectures and tokenizer options (``segzero.models.tiny.reasoner``).

``build_tiny_reasoner(arch=...)`` writes a Qwen2.5-VL or a Qwen3-VL that loads through the same
``Reasoner.from_pretrained`` / ``load_processor`` code as the hub checkpoints; ``number_tokens=True`` trains a
tokenizer with whole numbers as single tokens. A Qwen3-VL runs through the two-stage training (warm-up, GRPO).

Run: ``OMP_NUM_THREADS=1 pytest tests/test_tiny_arches.py -q``
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(hidden_size=32, num_layers=1, vision_hidden_size=32, vision_depth=1)


@pytest.fixture(scope="module")
def qwen3_dir(tmp_path_factory):
    from segzero.models.tiny.reasoner import build_tiny_reasoner

    return build_tiny_reasoner(tmp_path_factory.mktemp("q3") / "reasoner", arch="qwen3_vl", frame=64, **SMALL)


@pytest.mark.parametrize(
    ("arch", "frame", "model_class", "patch", "processor_class"),
    [
        # the default: Qwen2.5-VL, patch 14 x merge 2 -> a 56 frame is 2 x 2 image tokens
        ("qwen2_5_vl", 56, "Qwen2_5_VLForConditionalGeneration", 14, "Qwen2_5_VLProcessor"),
        # Qwen3-VL: patch 16 x merge 2 -> frames are multiples of 32; its own processor class in the saved config
        ("qwen3_vl", 64, "Qwen3VLForConditionalGeneration", 16, "Qwen3VLProcessor"),
    ],
)
def test_arch_loads_through_the_reasoner_and_generates(tmp_path, arch, frame, model_class, patch, processor_class):
    from segzero.models.reasoner import Reasoner
    from segzero.models.tiny.reasoner import build_tiny_reasoner

    path = build_tiny_reasoner(tmp_path / arch, arch=arch, frame=frame, **SMALL)
    pre = json.loads((path / "preprocessor_config.json").read_text())
    assert pre["patch_size"] == patch and pre["processor_class"] == processor_class
    reasoner = Reasoner.from_pretrained(path, device="cpu", max_new_tokens=4)
    assert type(reasoner.model).__name__ == model_class and reasoner.frame == frame
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (30 + 9 * i, 40, 3), dtype=np.uint8)) for i in range(3)]
    queries = ["the red circle", "a", "the largest blue shape"]
    batched = reasoner.generate(images, queries)
    single = [reasoner.generate([im], [q])[0] for im, q in zip(images, queries, strict=True)]
    assert batched == single  # left padding does not change the answers, for either position scheme
    inputs = reasoner.build_inputs([reasoner.to_frame(images[0])], ["q"])
    n_image_tokens = int((inputs["input_ids"] == reasoner.processor.image_token_id).sum())
    assert n_image_tokens == (frame // (2 * patch)) ** 2


def test_qwen3_vision_tower_has_an_absolute_position_grid_of_the_frame(qwen3_dir):
    config = json.loads((qwen3_dir / "config.json").read_text())
    vision, text = config["vision_config"], config["text_config"]
    assert vision["num_position_embeddings"] == (64 // 16) ** 2  # one learned embedding per patch of the frame
    assert text["rope_parameters"]["mrope_interleaved"] is True
    assert sum(text["rope_parameters"]["mrope_section"]) == text["head_dim"] // 2  # every rotary pair assigned


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arch": "llava"}, "arch must be one of"),  # an architecture the builder does not know
        ({"arch": "qwen3_vl", "frame": 56}, "not a multiple of 32"),  # Qwen3-VL frames: patch 16 x merge 2
        ({"arch": "qwen2_5_vl", "frame": 64}, "not a multiple of 28"),  # Qwen2.5-VL frames: patch 14 x merge 2
        ({"arch": "qwen3_vl", "frame": 64, "answer": "x"}, "qwen2_5_vl' only"),  # fixed answers: Qwen2.5-VL only
    ],
)
def test_builder_rejects_bad_arguments(tmp_path, kwargs, message):
    from segzero.models.tiny.reasoner import build_tiny_reasoner

    with pytest.raises(ValueError, match=message):
        build_tiny_reasoner(tmp_path / "m", **kwargs)


@pytest.mark.parametrize(
    ("number_tokens", "vocab_size", "tokens_for_128"),
    [
        (False, 512, 3),  # Qwen's split: one token per digit
        (True, 1024, 1),  # whole numbers up to NUMBER_TOKEN_MAX are one token
    ],
)
def test_number_tokens(tmp_path, number_tokens, vocab_size, tokens_for_128):
    from transformers import AutoTokenizer

    from segzero.models.tiny.reasoner import NUMBER_TOKEN_MAX, build_tiny_reasoner

    path = build_tiny_reasoner(tmp_path / "m", number_tokens=number_tokens, vocab_size=vocab_size, **SMALL)
    tok = AutoTokenizer.from_pretrained(path)
    assert len(tok("128", add_special_tokens=False)["input_ids"]) == tokens_for_128
    if number_tokens:
        assert all(len(tok(str(i), add_special_tokens=False)["input_ids"]) == 1 for i in range(NUMBER_TOKEN_MAX + 1))
    text = '<answer>{"bbox": [7,100,255,1234], "points_1": [0,99], "points_2": [31,8]}</answer>'
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text  # lossless either way


@pytest.mark.parametrize("size", [(64, 64), (100, 57), (1, 1)])  # no resize, a bicubic resize, scaled up to the min
def test_qwen3_image_settings_match_transformers(size):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from segzero.models.tiny.arches import ARCHES

    ours = ARCHES["qwen3_vl"]["preprocessor"](64)
    ref = Qwen2VLImageProcessorPil(
        patch_size=16,
        image_mean=list(ours.image_mean),
        image_std=list(ours.image_std),
        size={"shortest_edge": ours.min_pixels, "longest_edge": ours.max_pixels},
    )
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    pv, grid = ours([image])
    out = ref(images=[image], return_tensors="np")
    np.testing.assert_array_equal(grid, np.asarray(out["image_grid_thw"]))
    np.testing.assert_allclose(pv, np.asarray(out["pixel_values"]), atol=2e-5)


@pytest.mark.slow
def test_qwen3_trains_through_warmup_and_grpo(tmp_path, qwen3_dir, shapes_smoke):
    from segzero.train.config import TrainConfig
    from segzero.train.trainer import train

    overrides = [f"model={qwen3_dir}", "frame=64", *shapes_smoke(ROOT / "recipes/shapes_tiny.yaml")]
    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=overrides)
    train(cfg, tmp_path / "run")
    from segzero.models.processor import ImageOnlyProcessor

    for stage in ("warmup", "final"):
        folder = tmp_path / "run" / stage
        assert json.loads((folder / "config.json").read_text())["model_type"] == "qwen3_vl"
        # loadable without torchvision too, whichever processor saved it (a stock processor of transformers with
        # torchvision nests the image settings in processor_config.json)
        assert ImageOnlyProcessor.from_pretrained(folder).image_processor.patch_size == 16


@pytest.mark.parametrize(
    ("model_args", "frame", "message"),
    [
        ({"arch": "llava"}, 128, "arch must be one of"),  # unknown architecture: a one-line error, no traceback
        ({"arch": "qwen3_vl"}, 112, "not a multiple of 32"),  # a 112 frame does not fit Qwen3-VL's patches
        ({"depth": 3}, 128, "unexpected keyword"),  # a misspelt builder argument
    ],
)
def test_shapes_model_builder_errors_are_user_errors(tmp_path, model_args, frame, message):
    from segzero.errors import UserError
    from segzero.train.config import TrainConfig
    from segzero.train.trainer import resolve_model

    cfg = TrainConfig.from_yaml(
        ROOT / "recipes/shapes_tiny.yaml", overrides=[f"model_args={json.dumps(model_args)}", f"frame={frame}"]
    )
    with pytest.raises(UserError, match=message):
        resolve_model(cfg, tmp_path)


def test_shapes_model_arguments_reach_the_builder(tmp_path):
    from segzero.train.config import TrainConfig
    from segzero.train.trainer import resolve_model

    overrides = ["frame=64", 'model_args={"arch": "qwen3_vl", "number_tokens": true, "hidden_size": 32}']
    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=overrides)
    config = json.loads((Path(resolve_model(cfg, tmp_path)) / "config.json").read_text())
    assert config["model_type"] == "qwen3_vl" and config["text_config"]["hidden_size"] == 32
    assert config["text_config"]["vocab_size"] > 640  # number tokens: the larger default vocabulary


@pytest.mark.parametrize(
    ("frame", "warns"),
    [
        (64, None),  # a multiple of patch 16 x merge 2: answers are in frame pixels
        (840, "multiple of 32, e.g. 832"),  # the paper's 840 suits Qwen2.5-VL (28) but not Qwen3-VL: say what does
    ],
)
def test_frame_warning_names_the_models_own_multiple(qwen3_dir, frame, warns):
    import warnings

    from segzero.models.reasoner import Reasoner

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Reasoner.from_pretrained(qwen3_dir, frame=frame, device="cpu")
    messages = [str(w.message) for w in caught if "frame" in str(w.message)]
    assert (warns in messages[0]) if warns else not messages, messages
