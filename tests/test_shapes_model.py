"""Tests of the shapes recipe pieces and the shipped shapes model (issue 7 items 2-4).

- the shipped checkpoint (``segzero.assets.shapes_model_path``) loads and beats a measured gIoU floor on a fixed val
  set through the real eval runner with the ``color`` segmenter;
- the format warm-up's supervised answers, the soft reward variant and the pixel-threshold binding;
- ``recipes/shapes_tiny.yaml`` parses; a two-stage run (warm-up -> GRPO) of a few steps writes both folders.

Run: ``OMP_NUM_THREADS=1 pytest tests/test_shapes_model.py -x -q``
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Measured on the shipped checkpoint (GRPO step 120 of benchmarks/shapes_learning.md, hard rewards, trained on the
# recipe's easy world: 2-3 non-overlapping shapes, attribute + superlative queries), 2026-11-25, torch 2.13 CPU:
# val gIoU on the first 128 samples of that world's val split = 0.238 (cIoU 0.166); its warm-up checkpoint scores
# 0.176 on the same 128. The floor leaves ~0.04 (about 5 samples) for numeric drift across torch builds and still
# lies above the warm-up.
MEASURED_GIOU = 0.238
GIOU_FLOOR = 0.20
VAL_SAMPLES = 128


@pytest.mark.slow
def test_shipped_model_loads_with_its_frame_and_prompt():
    from segzero.assets import shapes_model_path
    from segzero.models.reasoner import Reasoner

    path = shapes_model_path()
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    assert size < 8 * 2**20, f"shipped model is {size / 2**20:.1f} MiB"  # a few MB at most
    info = json.loads((path / "segzero.json").read_text())
    assert info["frame"] == 112 and info["prompt"] == "segzero"
    reasoner = Reasoner.from_pretrained(path, device="cpu")
    assert reasoner.frame == 112 and reasoner.prompt == "segzero"
    assert sum(p.numel() for p in reasoner.model.parameters()) < 3_000_000


@pytest.mark.slow
def test_shipped_model_beats_the_measured_giou_floor(tmp_path):
    from segzero.assets import shapes_model_path
    from segzero.assets.shapes_eval import evaluate, val_dataset

    info = json.loads((shapes_model_path() / "segzero.json").read_text())
    ds = val_dataset(VAL_SAMPLES, world=info.get("world"), size=info["frame"])  # its training world, at its frame
    summary = evaluate(shapes_model_path(), out=tmp_path / "val", n=VAL_SAMPLES, dataset=ds)
    assert summary["n"] == VAL_SAMPLES  # every sample accounted for
    assert summary["gIoU"] >= GIOU_FLOOR, f"gIoU {summary['gIoU']:.3f} < floor {GIOU_FLOOR} (measured {MEASURED_GIOU})"


@pytest.mark.parametrize(
    ("solution", "query", "think", "expected"),
    [
        # the plain case: gt box and points written as strict Seg-Zero JSON, query in the think template
        (
            "<box>(1,2),(30,40)</box><points>(10,20),(15,25)</points>",
            "The Red Circle.",
            "I look for {query}.",
            '<think>I look for the red circle.</think><answer>{"bbox": [1,2,30,40], "points_1": [10,20], '
            '"points_2": [15,25]}</answer>',
        ),
        # a think template without the query is used verbatim
        (
            "<box>(0,0),(111,111)</box><points>(5,5),(6,6)</points>",
            "x",
            "done",
            '<think>done</think><answer>{"bbox": [0,0,111,111], "points_1": [5,5], "points_2": [6,6]}</answer>',
        ),
    ],
)
def test_warmup_answer_completion(solution, query, think, expected):
    from segzero.rewards import score
    from segzero.train.warmup import answer_completion

    text = answer_completion(solution, query, think=think)
    assert text == expected
    assert score("segzero", text, solution)["total"] == 5.0  # the supervised answer earns every paper reward


@pytest.mark.parametrize(
    ("bbox", "variant", "thresholds", "expected"),
    [
        # exact box: both soft terms are 1, like the hard ones
        ([10, 10, 29, 29], "soft", {}, {"box_iou": 1.0, "box_l1": 1.0}),
        # box shifted by 10 px in x: IoU 10*20/(30*20) = 1/3; mean L1 = 5 px -> 1 - 5/20
        ([20, 10, 39, 29], "soft", {}, {"box_iou": 1 / 3, "box_l1": 0.75}),
        # same box under the hard terms: IoU 1/3 fails 0.5, L1 5 < 10 passes
        ([20, 10, 39, 29], "hard", {}, {"box_iou": 0.0, "box_l1": 1.0}),
        # hard terms with the L1 threshold scaled to a 112 frame: 5 px now fails
        ([20, 10, 39, 29], "hard", {"l1_threshold": 1.333}, {"box_iou": 0.0, "box_l1": 0.0}),
        # soft L1 scale follows a given threshold (2 x 2.5 = 5 px): 5 px -> 0
        ([20, 10, 39, 29], "soft", {"l1_threshold": 2.5}, {"box_iou": 1 / 3, "box_l1": 0.0}),
    ],
)
def test_reward_variants_and_thresholds(bbox, variant, thresholds, expected):
    from segzero.train.rewards import build_reward_functions
    from segzero.train.soft_rewards import apply_variant

    funcs, _ = build_reward_functions("segzero")
    apply_variant(funcs, "segzero", variant, thresholds=thresholds)
    completion = json.dumps({"bbox": bbox, "points_1": [15, 15], "points_2": [20, 20]})
    completion = f"<think>t</think><answer>{completion}</answer>"
    solution = "<box>(10,10),(29,29)</box><points>(15,15),(20,20)</points>"
    got = {f.__name__: f([completion], [solution])[0] for f in funcs}
    for term, value in expected.items():
        assert got[term] == pytest.approx(value), term
    assert got["think_format"] == got["answer_format"] == 1.0  # format terms untouched by variant and thresholds


def test_soft_terms_read_no_box_as_zero():
    from segzero.train.soft_rewards import soft_box_iou, soft_box_l1

    bad = ["no json here", '{"bbox": [1, 2, 3]}', '{"bbox": ["a", 1, 2, 3]}']
    gt = ["<box>(0,0),(9,9)</box><points>(1,1),(2,2)</points>"] * 3
    assert soft_box_iou(bad, gt) == [0.0, 0.0, 0.0]
    assert soft_box_l1(bad, gt) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("spec", "check"),
    [
        # no settings: the default world, every query family
        (None, lambda c, f: c.max_shapes == 5 and c.overlap and len(f) == 5),
        # YAML lists become tuples (ShapesConfig is frozen and hashable) and families are split off
        (
            {"kinds": ["circle", "square"], "overlap": False, "families": ["attribute"]},
            lambda c, f: c.kinds == ("circle", "square") and not c.overlap and f == ("attribute",),
        ),
    ],
)
def test_world_from_spec(spec, check):
    from segzero.worlds.shapes import world_from_spec

    config, families = world_from_spec(spec, size=64)
    assert config.size == 64 and check(config, families)


@pytest.mark.parametrize(
    "spec",
    [
        {"size": 200},  # the size is the model frame, not a world setting
        {"max_shape": 3},  # a typo must not silently fall back to the default
        {"kinds": ["blob"]},  # unknown kind (ShapesConfig's own check)
        {"gradient": 500},  # a tint that strong leaves grey and could meet a shape colour
    ],
)
def test_world_from_spec_rejects_bad_settings(spec):
    from segzero.worlds.shapes import world_from_spec

    with pytest.raises(ValueError):
        world_from_spec(spec, size=64)


def test_recipe_world_reaches_the_training_rows():
    from segzero.train.config import TrainConfig
    from segzero.train.data import load_raw_dataset

    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml")
    assert cfg.synthetic_world  # the recipe trains on an easier world than the default
    rows = load_raw_dataset("synthetic", synthetic_samples=6, frame=cfg.frame, synthetic_world=cfg.synthetic_world)
    default = load_raw_dataset("synthetic", synthetic_samples=6, frame=cfg.frame)
    assert rows["problem"] != default["problem"]  # the settings change the drawn scenes and queries


def test_shapes_recipe_parses():
    from segzero.train.config import TrainConfig

    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml")
    assert cfg.model == "shapes" and cfg.frame == 112 and cfg.sft_steps > 0 and cfg.reward_kind == "segzero"
    assert cfg.use_cpu and cfg.save_total_limit is None  # every checkpoint kept for the learning curve
    assert cfg.reward_thresholds["distance_threshold"] == pytest.approx(100 * 112 / 840, abs=0.01)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["reward_variant=fuzzy"], "reward_variant"),  # only hard / soft exist
        (["reward_variant=soft", "reward_kind=visionreasoner"], "segzero"),  # soft terms are single-object
        (["sft_steps=-1"], "sft_steps"),  # negative warm-up
        (["sft_samples=0"], "sft_samples"),  # an empty warm-up set
        (["dataset=some/hub_set", "sft_world={families: [attribute]}"], "synthetic"),  # world settings need the world
        (["shapes_model={frame: 64}"], "frame"),  # the frame is the recipe's own field, not a builder argument
    ],
)
def test_bad_warmup_and_variant_settings(overrides, message):
    from segzero.errors import UserError
    from segzero.train.config import TrainConfig

    with pytest.raises(UserError, match=message):
        TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=overrides)


@pytest.mark.parametrize(
    ("overrides", "families"),
    [
        ([], {"attribute", "superlative"}),  # no sft_world: the warm-up uses the GRPO rows themselves
        (["sft_world={families: [attribute]}", "sft_samples=12"], {"attribute"}),  # naming queries only
    ],
)
def test_warmup_rows_follow_sft_world(overrides, families):
    from segzero.train.config import TrainConfig
    from segzero.train.data import build_train_dataset, build_warmup_dataset

    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=["synthetic_samples=24", *overrides])
    grpo_rows, _ = build_train_dataset(cfg)
    warm = build_warmup_dataset(cfg, grpo_rows)
    assert len(warm) == (cfg.sft_samples or len(grpo_rows))
    assert (warm is grpo_rows) == (not overrides)
    assert all(_family_of(q) & families for q in warm["problem"])  # each query has a wording of an allowed family


def _family_of(query: str) -> set[str]:
    """Families whose seen wordings produce ``query`` (colour / kind slots filled only with real names)."""
    import re

    from segzero.worlds.queries import TEMPLATES
    from segzero.worlds.scene import COLOURS, KINDS, PLURALS

    slots = {"colour": "|".join(COLOURS), "kind": "|".join(KINDS), "kinds": "|".join(PLURALS.values())}
    found = set()
    for t in TEMPLATES:
        for w in t.wordings:
            pattern = re.sub(r"\\{(\w+)\\}", lambda m: f"(?:{slots.get(m.group(1), '.+')})", re.escape(w))
            if re.fullmatch(pattern, query.strip().rstrip(".").lower()):
                found.add(t.family)
    assert found, query  # the generator only writes its own wordings
    return found


@pytest.mark.slow
def test_shapes_builder_is_small_and_deterministic(tmp_path):
    from safetensors.torch import load_file

    from segzero.testing.reasoner import build_shapes_reasoner

    a = build_shapes_reasoner(tmp_path / "a", hidden_size=32, num_layers=1, vision_hidden_size=32, vision_depth=1)
    b = build_shapes_reasoner(tmp_path / "b", hidden_size=32, num_layers=1, vision_hidden_size=32, vision_depth=1)
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)  # same seed, same weights
    assert json.loads((a / "segzero.json").read_text())["frame"] == 112
    full = build_shapes_reasoner(tmp_path / "full")
    n = sum(v.numel() for v in load_file(full / "model.safetensors").values())
    assert 500_000 < n < 2_000_000  # the recipe's default size: ~1M parameters
    tuned = build_shapes_reasoner(
        tmp_path / "rope",
        hidden_size=32,
        num_layers=1,
        vision_hidden_size=32,
        vision_depth=1,
        rope_theta=10.0,
        vision_rope_theta=100.0,
    )
    config = json.loads((tuned / "config.json").read_text())
    assert config["text_config"]["rope_parameters"]["rope_theta"] == 10.0  # the RoPE bases reach the saved config
    assert config["vision_config"]["rope_parameters"]["rope_theta"] == 100.0


@pytest.mark.slow
def test_warmup_then_grpo_runs_and_writes_both_stages(tmp_path, shapes_smoke_overrides):
    from segzero.train.config import TrainConfig
    from segzero.train.trainer import train

    overrides = [*shapes_smoke_overrides, "reward_variant=soft"]
    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=overrides)
    result = train(cfg, tmp_path / "run")
    warm = tmp_path / "run" / "warmup"
    assert json.loads((warm / "segzero.json").read_text())["stage"] == "warmup"
    assert (warm / "model.safetensors").is_file() and (warm / "tokenizer.json").is_file()
    assert result["global_step"] == 1 and (result["final"] / "model.safetensors").is_file()
    info = json.loads((result["final"] / "segzero.json").read_text())
    assert info["frame"] == 112 and info["base_model"] == "shapes"
    assert any("rewards/box_iou/mean" in r for r in result["log_history"])  # GRPO ran on the soft terms
