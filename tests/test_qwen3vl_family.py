"""The Qwen3-VL reasoner family: its prompt, its answer frame (relative 0..1000 coordinates, whatever the pixels the
image is resized to) and that convention in parsing, the pipeline's mapping to pixels, the reference protocols'
mapping, the rewards' thresholds, data building and a GRPO step of ``recipes/qwen3vl_4b.yaml`` on a tiny Qwen3-VL.

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_qwen3vl_family.py``. Offline: a tiny random Qwen3-VL built from
its config (``build_tiny_reasoner(arch="qwen3_vl")``) and the real Qwen3-VL-4B-Instruct config files of
``tests/fixtures`` (read from a temporary hub cache as a user's ``--reasoner Qwen/Qwen3-VL-4B-Instruct`` reads them).
Oracles: pixel coordinates worked out by hand (written in the comments), the same answer scored in the 840 frame,
and the public 4.44B size of Qwen3-VL-4B.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segzero.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
QWEN3_VL_4B = Path(__file__).parent / "fixtures" / "qwen3_vl_4b_instruct"
QWEN2_5_VL_7B = Path(__file__).parent / "fixtures" / "qwen2_5_vl_7b_instruct"
HUB_ID = "someone/reasoner-4b"  # a name that says nothing: only its config tells the architecture


@pytest.fixture(scope="module")
def q3(tmp_path_factory) -> Path:
    """A tiny Qwen3-VL at a 1000 x 1000 frame with 100-pixel patches (5 x 5 merged image tokens), its ``segzero.json``
    naming no prompt: the family comes from its architecture, as for a downloaded Qwen3-VL."""
    from segzero.models.reasoner import write_model_info
    from segzero.models.tiny.reasoner import build_tiny_reasoner

    path = build_tiny_reasoner(
        tmp_path_factory.mktemp("q3") / "reasoner", arch="qwen3_vl", frame=1000, patch_size=100, num_layers=1
    )
    write_model_info(path, frame=1000, note="tiny Qwen3-VL, no prompt recorded")
    return path


@pytest.fixture()
def hub_cache(tmp_path, monkeypatch):
    """``put(repo_id, folder)``: a snapshot of ``folder`` in a temporary hub cache, read offline."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def put(repo_id: str, folder: Path) -> str:
        repo = tmp_path / "hub" / f"models--{repo_id.replace('/', '--')}"
        shutil.copytree(folder, repo / "snapshots" / ("0" * 40))
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("0" * 40)
        return repo_id

    return put


# ------------------------------------------------------------------------------------------------ the prompt


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("Where could I sit?", '"where could i sit"'),  # lower-cased, '?' stripped, as VisionReasoner's scripts do
        ('"The red mug."', '"the red mug"'),  # quotes and '.' stripped from both ends
    ],
)
def test_qwen3vl_prompt_asks_for_relative_coordinates(query, shown):
    from segzero.prompts import format_prompt

    text = format_prompt(query, "qwen3vl")
    assert text.startswith(f"Please find {shown} with bboxes and points.")
    assert "in relative coordinates from 0 to 1000" in text  # the convention Qwen3-VL is trained on, stated
    assert '"label": "cup"' in text  # the example answer names each object


def test_the_example_answer_reads_as_two_labelled_objects():
    from segzero.parsing import parse_answer
    from segzero.prompts import QWEN3VL_ANSWER_EXAMPLE

    ans = parse_answer(f"<think>two</think><answer>{QWEN3VL_ANSWER_EXAMPLE}</answer>")
    assert ans.ok and ans.layout == "multi"
    assert [(o.box, o.points, o.label) for o in ans.objects] == [
        ((10, 100, 200, 210), ((30, 110),), "cup"),
        ((225, 296, 706, 786), ((302, 410),), "plate"),
    ]


@pytest.mark.parametrize(
    ("item", "label", "as_dict"),
    [
        ('{"bbox_2d": [1,2,3,4], "point_2d": [2,3], "label": " red mug "}', "red mug", {"label": "red mug"}),  # kept
        ('{"bbox_2d": [1,2,3,4], "point_2d": [2,3], "label": ""}', None, {}),  # empty: no label
        ('{"bbox_2d": [1,2,3,4], "point_2d": [2,3], "label": 7}', None, {}),  # not a string: no label
        ('{"bbox_2d": [1,2,3,4], "point_2d": [2,3]}', None, {}),  # none given (every released family)
    ],
)
def test_labels_are_read_kept_through_mapping_and_written_only_when_set(item, label, as_dict):
    from segzero.answer import SegObject
    from segzero.geometry import to_original
    from segzero.parsing import parse_answer

    (obj,) = parse_answer(f"<answer>[{item}]</answer>").objects
    assert obj.label == label
    assert to_original(obj, size=(2000, 1000), frame=1000).label == label  # mapping keeps it
    assert obj.to_dict() == {"box": [1.0, 2.0, 3.0, 4.0], "points": [[2.0, 3.0]], **as_dict}
    assert SegObject.from_dict(obj.to_dict()) == obj


# --------------------------------------------------------------------------------- family and answer frame


@pytest.mark.parametrize(
    ("files", "kind", "guessed"),
    [
        ({"config.json": QWEN3_VL_4B}, "qwen3vl", True),  # a Qwen3-VL config, nothing else: its architecture
        ({"config.json": QWEN3_VL_4B, "segzero.json": {"prompt": "segzero"}}, "segzero", False),  # recorded wins
        ({"config.json": QWEN3_VL_4B, "README.md": "# VisionReasoner on Qwen3-VL\n"}, "visionreasoner", False),
        ({"config.json": QWEN2_5_VL_7B}, "segzero", True),  # a Qwen2.5-VL config names no family: the fallback
    ],
)
def test_a_folders_family_comes_from_its_files_then_its_architecture(tmp_path, files, kind, guessed):
    from segzero.models.checkpoint import detect_prompt_kind

    folder = tmp_path / "ckpt"
    folder.mkdir()
    for name, content in files.items():
        if isinstance(content, Path):
            shutil.copy(content / name, folder / name)
        else:
            (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))
    choice = detect_prompt_kind(folder)
    assert (choice.kind, choice.guessed) == (kind, guessed)


def test_a_hub_id_gets_the_family_from_its_cached_config_or_its_name(hub_cache, caplog):
    from segzero.models.checkpoint import detect_prompt_kind, resolve_answer_frame, resolve_prompt_and_frame

    hub_cache(HUB_ID, QWEN3_VL_4B)
    choice = detect_prompt_kind(HUB_ID)  # the cached config.json: a qwen3_vl model
    assert (choice.kind, choice.guessed) == ("qwen3vl", True) and "qwen3_vl" in choice.reason
    assert detect_prompt_kind("Qwen/Qwen3-VL-4B-Instruct").kind == "qwen3vl"  # not cached: its name says it
    with caplog.at_level(logging.WARNING, logger="segzero.models"):
        kind, frame = resolve_prompt_and_frame(HUB_ID)
    assert (kind, frame) == ("qwen3vl", 840) and "--prompt" in caplog.text  # the guess is one warning line
    assert resolve_answer_frame(HUB_ID, kind) == 1000


@pytest.mark.parametrize(
    ("kind", "recorded", "explicit", "expected"),
    [
        ("qwen3vl", None, None, 1000),  # the family's relative frame
        ("visionreasoner", None, None, None),  # pixel families: answers in the pixel frame
        ("segzero", 1000, None, 1000),  # a segzero.json entry wins over the family
        ("qwen3vl", [640, 480], None, (640, 480)),  # a (w, h) frame
        ("qwen3vl", 1000, 500, 500),  # an explicit one wins over both
    ],
)
def test_the_answer_frame_is_data(tmp_path, kind, recorded, explicit, expected):
    from segzero.models.checkpoint import resolve_answer_frame, write_model_info

    write_model_info(tmp_path, frame=840, **({} if recorded is None else {"answer_frame": recorded}))
    assert resolve_answer_frame(tmp_path, kind, answer_frame=explicit) == expected


def test_a_bad_recorded_answer_frame_is_one_line(tmp_path):
    from segzero.models.checkpoint import resolve_answer_frame, write_model_info

    write_model_info(tmp_path, frame=840, answer_frame="wide")
    with pytest.raises(UserError, match="answer_frame 'wide'"):
        resolve_answer_frame(tmp_path, "qwen3vl")


def test_real_size_qwen3_vl_4b_builds_on_the_meta_device():
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(QWEN3_VL_4B)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    assert round(sum(p.numel() for p in model.parameters()) / 1e9, 2) == 4.44  # the public 4.44B of Qwen3-VL-4B


# ---------------------------------------------------------------------------------------- the pipeline


def _pipe(q3, **reasoner):
    from segzero.pipeline import SegZeroPipeline

    return SegZeroPipeline.from_pretrained(q3, "color", device="cpu", max_new_tokens=4, **reasoner)


@pytest.mark.parametrize(
    ("reasoner", "size", "answer", "box", "point"),
    [
        # relative answers: x * W / 1000. 640 x 480: 250 -> 160, 400 -> 192, 750 -> 480, 900 -> 432; 500 -> 320, 240
        ({}, (640, 480), ([250, 400, 750, 900], [500, 500]), (160, 192, 480, 432), (320, 240)),
        # the pixel frame does not matter: the same at an 840 frame (re-resized by the processor, no warning needed)
        ({"frame": 840}, (640, 480), ([250, 400, 750, 900], [500, 500]), (160, 192, 480, 432), (320, 240)),
        # 333 x 100: 1000 -> 333 -> clipped to 332, 99; 999 -> 332.667 -> 333 -> 332; 1 -> 0.1 -> 0
        ({"frame": 840}, (333, 100), ([0, 0, 1000, 1000], [999, 1]), (0, 0, 332, 99), (332, 0)),
        # a pixel family at a 200 frame maps by W / 200: 50 -> 160, 40 -> 96, 150 -> 480, 120 -> 288; 100, 80 -> 320,
        # 192
        (
            {"prompt": "visionreasoner", "frame": 200},
            (640, 480),
            ([50, 40, 150, 120], [100, 80]),
            (160, 96, 480, 288),
            (320, 192),
        ),
    ],
)
def test_answers_map_to_pixels_through_the_answer_frame(q3, reasoner, size, answer, box, point):
    from segzero.eval.protocols import reference_objects

    pipe = _pipe(q3, **reasoner)
    bbox, pt = answer
    completion = f'<think>x</think><answer>[{{"bbox_2d": {bbox}, "point_2d": {pt}, "label": "cup"}}]</answer>'
    result = pipe.segment(Image.new("RGB", size, (90, 90, 90)), completion)
    (obj,) = result.objects
    assert (obj.box, obj.points, obj.label) == (box, (point,), "cup")
    assert result.to_json()["answer"]["frame"] == list(result.frame)
    # the reference scripts' own mapping (evaluation's --protocol) reads the same frame from the result
    (ref,) = reference_objects("visionreasoner", completion, size=size, frame=result.frame)
    assert np.allclose(ref.box, box, atol=1) and np.allclose(ref.points[0], point, atol=1)  # their rounding: +-1


def test_the_reasoner_resolves_family_and_answer_frame_and_warns_only_for_pixel_answers(q3):
    from segzero.models.reasoner import Reasoner

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # relative answers: a re-resized frame moves nothing, so no warning
        r = Reasoner.from_pretrained(q3, frame=840, device="cpu")
    assert (r.prompt, r.frame, r.answer_frame, r.max_new_tokens) == ("qwen3vl", 840, 1000, 2048)
    with pytest.warns(UserWarning, match="not a multiple of 200"):  # pixel answers would be off: warned
        Reasoner.from_pretrained(q3, prompt="visionreasoner", frame=840, device="cpu")


def test_generation_runs_end_to_end_and_records_the_answer_frame(q3):
    pipe = _pipe(q3, frame=840)  # the image seen at 840 x 840, the answers read in the 1000 frame
    (result,) = pipe.batch([Image.new("RGB", (320, 240), (10, 200, 30))], ["the green thing"])
    assert pipe.reasoner.prompt == "qwen3vl" and result.frame == (1000, 1000)
    assert result.mask.shape == (240, 320)  # random weights: whatever it wrote, a result, never a crash


# ------------------------------------------------------------------------------------------------ rewards


def _to840(values):
    """Coordinates of the 1000 frame in the 840 frame: x * 0.84, exact to two decimals."""
    return [round(v * 0.84, 2) for v in values]


@pytest.mark.parametrize(
    ("kind", "gt", "pred"),
    [
        # single object; mean box L1 11.25 (1000) = 9.45 px (840): within the scaled 11.9, over the paper's 10
        ("segzero", ([100, 200, 500, 600], [200, 300], [400, 500]), ([125, 220, 500, 600], [200, 300], [400, 500])),
        # mean L1 12.5 = 10.5 px: over both; points 140 apart = 117.6 px: within the scaled 119, over 100
        ("segzero", ([100, 200, 500, 600], [200, 300], [400, 500]), ([125, 225, 500, 600], [340, 300], [400, 500])),
        # multi object: point 32 apart = 26.88 px: within the scaled 35.7, over the paper's 30 unscaled
        ("visionreasoner", ([100, 200, 500, 600], [200, 300]), ([100, 200, 500, 600], [232, 300])),
        # point 40 apart = 33.6 px: over both
        ("visionreasoner", ([100, 200, 500, 600], [200, 300]), ([100, 200, 500, 600], [240, 300])),
    ],
)
def test_scaled_thresholds_score_relative_answers_as_the_paper_scores_840_ones(kind, gt, pred):
    from segzero.rewards import score, thresholds_for_frame

    def texts(obj, scale):
        box, *points = [scale(v) for v in obj]
        if kind == "segzero":
            gt_text = (
                f"<box>({box[0]},{box[1]}),({box[2]},{box[3]})</box><points>"
                + ",".join(f"({x},{y})" for x, y in points)
                + "</points>"
            )
            answer = json.dumps({"bbox": box, "points_1": points[0], "points_2": points[1]})
        else:
            gt_text = json.dumps([{"bbox_2d": box, "point_2d": points[0]}])
            answer = json.dumps([{"bbox_2d": box, "point_2d": points[0]}])
        return gt_text, f"<think>it</think><answer>{answer}</answer>"

    gt_1000, _ = texts(gt, list)
    _, pred_1000 = texts(pred, list)
    gt_840, _ = texts(gt, _to840)
    _, pred_840 = texts(pred, _to840)
    relative = score(kind, pred_1000, gt_1000, **thresholds_for_frame(kind, 1000))
    assert relative == score(kind, pred_840, gt_840)  # the same answer, the same reward, in either frame


def test_unscaled_thresholds_would_score_a_relative_answer_differently():
    from segzero.rewards import score, thresholds_for_frame

    gt = '[{"bbox_2d": [100, 200, 500, 600], "point_2d": [200, 300]}]'
    pred = '<think>a</think><answer>[{"bbox_2d": [100, 200, 500, 600], "point_2d": [232, 300]}]</answer>'
    assert score("visionreasoner", pred, gt)["accuracy"] == 2.0  # 32 units over the paper's 30: the point misses
    assert score("visionreasoner", pred, gt, **thresholds_for_frame("visionreasoner", 1000))["accuracy"] == 3.0


def test_the_recipe_trains_in_the_answer_frame_with_scaled_thresholds():
    from segzero.answer import LAYOUT_OF
    from segzero.prompts import ANSWER_FRAMES
    from segzero.rewards import thresholds_for_frame
    from segzero.train.config import TrainConfig

    cfg = TrainConfig.from_yaml(ROOT / "recipes" / "qwen3vl_4b.yaml")
    assert cfg.prompt_kind == "qwen3vl" and LAYOUT_OF[cfg.reward_kind] == "multi"  # the family's answer layout
    assert cfg.frame == ANSWER_FRAMES["qwen3vl"]  # images and gt in the 1000 frame: gt = relative coordinates
    assert cfg.reward_thresholds == pytest.approx(thresholds_for_frame(cfg.reward_kind, cfg.frame), rel=1e-12)


# ------------------------------------------------------------------------------------- data and training


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A manifest of four 400 x 300 images, one rectangle each, built at the 1000 frame in the multi layout."""
    from segzero.data.build import BuildConfig, build

    root = tmp_path_factory.mktemp("manifest")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(root / f"im{i}.png")
        mask = np.zeros((300, 400), np.uint8)
        mask[30:150, 40 + 10 * i : 200 + 10 * i] = 255  # columns 40+10i .. 199+10i, rows 30 .. 149
        Image.fromarray(mask).save(root / f"m{i}.png")
        rows.append({"id": f"r{i}", "image": f"im{i}.png", "query": "the box", "mask": f"m{i}.png"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = root / "built"
    build(BuildConfig(source="jsonl", manifest=str(root / "manifest.jsonl"), out=str(out), frame=1000,
                      layout="multi", progress=False))  # fmt: skip
    return out


def test_a_build_at_the_1000_frame_writes_relative_coordinates(built):
    from segzero.data.export import load_built

    rows = {r["id"]: r for r in load_built(built)}
    (obj,) = json.loads(rows["r0"]["solution"])
    # x / 400 * 1000: 40 -> 100, 199 -> 497.5 -> 498; y / 300 * 1000: 30 -> 100, 149 -> 496.67 -> 497
    assert obj["bbox_2d"] == [100, 100, 498, 497]
    (obj,) = json.loads(rows["r2"]["solution"])
    assert obj["bbox_2d"][0::2] == [150, 548]  # 60 -> 150, 219 -> 547.5 -> 548
    assert rows["r0"]["image"].size == (1000, 1000)


@pytest.mark.slow
def test_one_grpo_step_of_the_recipe_on_a_tiny_qwen3_vl(q3, built, tmp_path):
    from segzero.data.export import load_built
    from segzero.models.reasoner import Reasoner
    from segzero.train.config import TrainConfig
    from segzero.train.data import build_train_dataset
    from segzero.train.trainer import train

    overrides = [f"model={q3}", f"dataset={built}", "use_vllm=false", "bf16=false", "dtype=float32",
                 "gradient_checkpointing=false", "use_cpu=true", "max_steps=1", "num_generations=2",
                 "prompts_per_step=2", "per_device_batch_size=2", "max_completion_length=8", "save_steps=1",
                 "sample_every=0", "report_to=[]"]  # fmt: skip
    cfg = TrainConfig.from_yaml(ROOT / "recipes" / "qwen3vl_4b.yaml", overrides=overrides)
    dataset, _ = build_train_dataset(cfg)
    by_id = {r["id"]: r["solution"] for r in load_built(built)}
    assert all(json.loads(r["solution"]) == json.loads(by_id[r["id"]]) for r in dataset)  # gt stays relative
    assert "relative coordinates from 0 to 1000" in dataset[0]["prompt"][0]["content"][1]["text"]
    train(cfg, tmp_path / "run")
    final = tmp_path / "run" / "final"
    info = json.loads((final / "segzero.json").read_text())
    assert (info["prompt"], info["frame"]) == ("qwen3vl", 1000)
    reasoner = Reasoner.from_pretrained(final, device="cpu")
    assert (reasoner.prompt, reasoner.answer_frame) == ("qwen3vl", 1000)
