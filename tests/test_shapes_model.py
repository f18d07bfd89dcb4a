"""Tests of the shapes recipe pieces and the shipped shapes model.

- the shipped checkpoint (``segzero.assets.shapes_model_path``) loads, is right on a fixed val set above a floor
  written from a measured run, finds each shape of a scene by name, and follows two shapes when they swap places;
- the format warm-up's supervised answers, the soft reward variant and the pixel-threshold binding;
- ``recipes/shapes_tiny.yaml`` parses; a two-stage run (warm-up -> GRPO) of a few steps writes both folders.

Run: ``OMP_NUM_THREADS=1 pytest tests/test_shapes_model.py -x -q``
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Measured on the shipped checkpoint (benchmarks/shapes_grounding.md) with the fixed scene sets below, greedy
# decoding, `color` segmenter, torch 2.13 CPU, 2026-12-04 (the model of recipes/shapes_ranked.yaml). The floors
# leave a margin of a few samples for numeric drift across torch builds; they guard against regressions. On the
# 256-scene val set of the grounding benchmark the model is right on 89.8% (target 85%), by name on 94.7%.
MEASURED_VAL_RIGHT = 0.896  # 43 of 48
VAL_RIGHT_FLOOR = 0.81
MEASURED_AGREE = 0.938  # 45 of 48: the reasoning names the shape the mask lands on
AGREE_FLOOR = 0.85
MEASURED_BY_NAME = 1.0  # 33 of 33
BY_NAME_FLOOR = 0.9
MEASURED_SWAP = 8  # of 8 swap probes
SWAP_FLOOR = 7
VAL_SCENES = 48  # val split scenes 0..47 of the model's world, at its frame
NAME_SCENES = 16  # every uniquely named shape of val scenes 0..15


@pytest.fixture(scope="module")
def shipped():
    from segzero.assets import SHAPES_MAX_NEW_TOKENS, shapes_model_path
    from segzero.cli.demo import model_world
    from segzero.pipeline import SegZeroPipeline

    pipe = SegZeroPipeline.from_pretrained(
        reasoner=shapes_model_path(), segmenter="color", device="cpu", max_new_tokens=SHAPES_MAX_NEW_TOKENS
    )
    return pipe, model_world(shapes_model_path())


@pytest.mark.slow
def test_shipped_model_loads_with_its_frame_and_prompt():
    from segzero.assets import shapes_model_path
    from segzero.models.reasoner import Reasoner

    path = shapes_model_path()
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    assert size < 8 * 2**20, f"shipped model is {size / 2**20:.1f} MiB"  # a few MB at most
    info = json.loads((path / "segzero.json").read_text())
    assert info["frame"] == 128 and info["prompt"] == "compact"
    reasoner = Reasoner.from_pretrained(path, device="cpu")
    assert reasoner.frame == 128 and reasoner.prompt == "compact"
    assert sum(p.numel() for p in reasoner.model.parameters()) < 3_000_000


@pytest.mark.slow
def test_shipped_model_is_right_on_its_world(shipped):
    from segzero.shapes.grounding import draw, scene_checks, summarise

    pipe, world = shipped
    s = summarise(scene_checks(pipe, draw(VAL_SCENES, world=world, size=pipe.frame, split="val")))
    assert s["n"] == VAL_SCENES
    assert s["right"] >= VAL_RIGHT_FLOOR, f"right on {s['right']:.3f} < floor {VAL_RIGHT_FLOOR} ({MEASURED_VAL_RIGHT})"
    assert s["agree"] is not None and s["agree"] >= AGREE_FLOOR, f"agree {s['agree']} (measured {MEASURED_AGREE})"


@pytest.mark.slow
def test_shipped_model_finds_each_shape_by_name(shipped):
    from segzero.shapes.grounding import by_name_checks, draw, summarise

    pipe, world = shipped
    s = summarise(by_name_checks(pipe, draw(NAME_SCENES, world=world, size=pipe.frame, split="val")))
    assert s["n"] >= 2 * NAME_SCENES  # 2-3 shapes per scene, nearly all uniquely named
    assert s["right"] >= BY_NAME_FLOOR, f"by name {s['right']:.3f} < floor {BY_NAME_FLOOR} ({MEASURED_BY_NAME})"


def _two_shapes(left: str, right: str, y: int, size: int = 128):
    """A scene drawn here (not by the world code): a red circle and a blue square on the grey background, ``left``
    and ``right`` saying which is where; returns the image and each shape's mask (the oracle)."""
    from PIL import Image, ImageDraw

    from segzero.shapes.scene import COLOURS

    image = Image.new("RGB", (size, size), (235, 235, 235))
    draw = ImageDraw.Draw(image)
    for name, cx in ((left, 34), (right, 94)):
        box = [cx - 20, y - 20, cx + 20, y + 20]
        if name == "red circle":
            draw.ellipse(box, fill=COLOURS["red"])
        else:
            draw.rectangle([cx - 17, y - 17, cx + 17, y + 17], fill=COLOURS["blue"])
    pixels = np.asarray(image)
    masks = {n: (pixels == COLOURS[n.split()[0]]).all(axis=2) for n in ("red circle", "blue square")}
    return image, masks


def _swap_landings(pipe) -> list[bool]:
    """For the pair high and low in the frame, as drawn and with places swapped: does "the red circle" / "the blue
    square" land on its own shape (a model that ignores the image gives one box per query whatever the layout)."""
    from segzero.shapes.grounding import RIGHT_IOU

    landed = []
    for y in (40, 88):
        for left, right in (("red circle", "blue square"), ("blue square", "red circle")):
            image, masks = _two_shapes(left, right, y)
            for query, result in zip(masks, pipe.batch([image, image], [f"the {q}" for q in masks]), strict=True):
                mask = np.asarray(result.mask, dtype=bool)
                landed.append((mask & masks[query]).sum() / (mask | masks[query]).sum() > RIGHT_IOU)
    return landed


@pytest.mark.slow
def test_shipped_model_follows_swapped_shapes(shipped):
    pipe, _ = shipped
    landed = _swap_landings(pipe)
    assert len(landed) == 8
    assert sum(landed) >= SWAP_FLOOR, f"{sum(landed)} of 8 swap probes landed (measured {MEASURED_SWAP})"


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

    funcs, _ = build_reward_functions("segzero", variant=variant, thresholds=thresholds)
    completion = json.dumps({"bbox": bbox, "points_1": [15, 15], "points_2": [20, 20]})
    completion = f"<think>t</think><answer>{completion}</answer>"
    solution = "<box>(10,10),(29,29)</box><points>(15,15),(20,20)</points>"
    got = {f.__name__: f([completion], [solution])[0] for f in funcs}
    for term, value in expected.items():
        assert got[term] == pytest.approx(value), term
    assert got["think_format"] == got["answer_format"] == 1.0  # format terms untouched by variant and thresholds


def test_soft_terms_read_no_box_as_zero():
    from segzero.rewards.single import soft_box_iou, soft_box_l1

    bad = ["no json here", '{"bbox": [1, 2, 3]}', '{"bbox": ["a", 1, 2, 3]}']
    gt = "<box>(0,0),(9,9)</box><points>(1,1),(2,2)</points>"
    assert [soft_box_iou(c, gt) for c in bad] == [0.0, 0.0, 0.0]
    assert [soft_box_l1(c, gt) for c in bad] == [0.0, 0.0, 0.0]


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
    from segzero.shapes.world import world_from_spec

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
    from segzero.shapes.world import world_from_spec

    with pytest.raises(ValueError):
        world_from_spec(spec, size=64)


def test_recipe_world_reaches_the_training_rows():
    from segzero.train.config import TrainConfig
    from segzero.train.data import load_raw_dataset

    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml")
    world = cfg.dataset_args["world"]
    assert world  # the recipe trains on an easier world than the default
    rows = load_raw_dataset("synthetic", frame=cfg.frame, dataset_args={"samples": 6, "world": world})
    default = load_raw_dataset("synthetic", frame=cfg.frame, dataset_args={"samples": 6})
    assert rows["problem"] != default["problem"]  # the settings change the drawn scenes and queries


def test_shapes_recipe_parses():
    from segzero.train.config import TrainConfig

    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml")
    assert cfg.model == "shapes" and cfg.frame == 128 and cfg.reward_kind == "segzero"
    (warm, _), (answers, _), (grpo, _) = cfg.stage_list()
    assert (warm.name, answers.name, grpo.name) == ("perception_warmup", "answer_sft", "grpo")
    assert not warm.supervised_answers and answers.supervised_answers  # the warm-up never supervises the query
    assert cfg.use_cpu and cfg.save_total_limit is None  # every checkpoint kept for the learning curve
    assert cfg.reward_thresholds["distance_threshold"] == pytest.approx(100 * 128 / 840, abs=0.01)
    assert cfg.reward_thresholds["l1_threshold"] == pytest.approx(10 * 128 / 840, abs=0.01)
    families = set(cfg.dataset_args["world"]["families"])
    assert "superlative" in families and families & {"relation", "affordance"}  # reasoning queries, not only names


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["reward_variant=fuzzy"], "reward_variant"),  # only hard / soft exist
        (["reward_variant=soft", "reward_kind=visionreasoner"], "segzero"),  # soft terms are single-object
        (["stages.perception_warmup.steps=-1"], "steps"),  # negative warm-up
        (["stages.perception_warmup.samples=0"], "samples"),  # an empty warm-up set
        (["dataset=some/hub_set"], "synthetic"),  # the shapes stages need the world
        (["model_args={frame: 64}"], "frame"),  # the frame is the recipe's own field, not a builder argument
        (["dataset_args={samples: 4, colour: red}"], "dataset_args"),  # the world's source has no such keyword
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
        ([], {"attribute", "superlative", "affordance"}),  # no stage world: the run's world
        (["stages.perception_warmup.world={families: [attribute]}"], {"attribute"}),  # naming queries only
    ],
)
def test_stage_rows_follow_the_stage_world(overrides, families):
    from segzero.train.config import TrainConfig

    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=overrides)
    warm = cfg.stage_list()[0][1].stage_rows(cfg)
    queries = [warm[i]["query"] for i in range(24)]
    assert all(_family_of(q) & families for q in queries)  # each query has a wording of an allowed family


def _family_of(query: str) -> set[str]:
    """Families whose seen wordings produce ``query`` (colour / kind slots filled only with real names)."""
    import re

    from segzero.shapes.queries import TEMPLATES
    from segzero.shapes.scene import COLOURS, KINDS, PLURALS

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

    from segzero.shapes.model import build_shapes_reasoner

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
def test_warmup_then_grpo_runs_and_writes_both_stages(tmp_path, shapes_smoke):
    from segzero.train.config import TrainConfig
    from segzero.train.trainer import train

    overrides = [*shapes_smoke(ROOT / "recipes/shapes_quick.yaml"), "reward_variant=soft"]
    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_quick.yaml", overrides=overrides)
    result = train(cfg, tmp_path / "run")
    warm = tmp_path / "run" / "warmup"
    assert json.loads((warm / "segzero.json").read_text())["stage"] == "perception_warmup"
    assert (warm / "model.safetensors").is_file() and (warm / "tokenizer.json").is_file()
    assert result["global_step"] == 1 and (result["final"] / "model.safetensors").is_file()
    info = json.loads((result["final"] / "segzero.json").read_text())
    assert info["frame"] == 128 and info["base_model"] == "shapes" and info["prompt"] == "compact"
    assert any("rewards/box_iou/mean" in r for r in result["log_history"])  # GRPO ran on the soft terms
    # each folder records the stages behind it, in order; the gt-answer stage makes the answers supervised
    assert json.loads((warm / "segzero.json").read_text())["training"]["stages"] == ["perception_warmup"]
    assert info["training"] == {"stages": ["perception_warmup", "answer_sft", "grpo"], "supervised_answers": True}


@pytest.mark.slow
def test_the_seg_zero_way_recipe_learns_answers_from_rewards_alone(tmp_path, shapes_smoke):
    # recipes/shapes_grpo.yaml: perception warm-up (random pick), then GRPO with the paper's terms plus the shapes
    # reasoning's consistency term; no stage is supervised on answers
    from segzero.train.config import TrainConfig
    from segzero.train.trainer import train

    recipe = ROOT / "recipes/shapes_grpo.yaml"
    cfg = TrainConfig.from_yaml(recipe, overrides=shapes_smoke(recipe))
    assert [k.name for k, _ in cfg.stage_list()] == ["perception_warmup", "grpo"]
    result = train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "answer_sft").exists()
    info = json.loads((result["final"] / "segzero.json").read_text())
    assert info["training"] == {"stages": ["perception_warmup", "grpo"], "supervised_answers": False}
    assert info["reward_plugins"] == ["segzero.shapes.consistency:decision_consistency"]
    assert any("rewards/decision_consistency/mean" in r for r in result["log_history"])


@pytest.mark.slow
def test_answer_stage_alone_continues_a_trained_model(tmp_path, shapes_smoke):
    from segzero.shapes.model import build_shapes_reasoner
    from segzero.train.config import TrainConfig
    from segzero.train.trainer import train

    start = build_shapes_reasoner(
        tmp_path / "start", frame=128, arch="qwen3_vl", number_tokens=True, hidden_size=32, num_layers=1
    )
    recipe = ROOT / "recipes/shapes_continue.yaml"
    overrides = [*shapes_smoke(recipe), f"model={start}", "stages.answer_sft.decision_weight=5"]
    cfg = TrainConfig.from_yaml(recipe, overrides=overrides)
    result = train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "warmup").exists()  # one stage: gt answers, no perception warm-up
    info = json.loads((tmp_path / "run" / "answer_sft" / "segzero.json").read_text())
    assert info["stage"] == "answer_sft" and info["base_model"] == str(start)  # the gt stage started from `model`
    assert result["final"] == tmp_path / "run" / "answer_sft" and result["global_step"] == 1  # no grpo: its result
    assert (result["final"] / "model.safetensors").is_file() and not (tmp_path / "run" / "final").exists()


def test_shipped_is_a_reasoner_name(tmp_path, monkeypatch):
    from segzero.assets import shapes_model_path
    from segzero.models.reasoner import read_model_info, resolve_model_source

    assert resolve_model_source("shipped") == str(shapes_model_path())  # the name means the packaged model
    assert read_model_info("shipped")["frame"] == 128  # and its segzero.json is read through it
    own = tmp_path / "shipped"
    own.mkdir()
    (own / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert resolve_model_source("shipped") == "shipped"  # a local folder of that name wins


def test_deepen_adds_layers_that_change_nothing_until_trained(tmp_path):
    # oracle: the source model's own logits on a scene; the deeper model must reproduce them (its new layers add 0)
    import importlib.util

    import torch
    from transformers import AutoModelForImageTextToText

    from segzero.assets import shapes_model_path
    from segzero.prompts import build_messages
    from segzero.shapes.scene import ShapesConfig
    from segzero.shapes.world import make_sample
    from segzero.train.processing import load_training_processor

    spec = importlib.util.spec_from_file_location("grounding", ROOT / "benchmarks/shapes_grounding.py")
    grounding = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grounding)
    source = shapes_model_path()
    grounding.main(["deepen", str(source), "--layers", "2", "--to", str(tmp_path / "deep")])
    processor = load_training_processor(str(source))
    sample = make_sample(0, config=ShapesConfig(size=128))
    text = processor.apply_chat_template(
        build_messages(None, sample["problem"], kind="compact"), tokenize=False, add_generation_prompt=True
    )
    inputs = processor(text=[text + "<think>I see 1"], images=[sample["image"]], return_tensors="pt")
    logits = []
    for path in (source, tmp_path / "deep"):
        model = AutoModelForImageTextToText.from_pretrained(str(path), dtype="float32").eval()
        with torch.no_grad():
            logits.append(model(**inputs).logits)
        layers = len(model.model.language_model.layers)
    assert layers == 4 + 2  # the shipped model's 4 text layers and the 2 new ones
    torch.testing.assert_close(logits[1], logits[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("target", ["value", "index"])
def test_compare_toy_listings_answer_the_superlative(target):
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("toy", ROOT / "benchmarks/shapes_compare_toy.py")
    toy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toy)
    ids, answers = toy.listings(np.random.default_rng(0), 64, target=target)
    for row, answer in zip(ids.tolist(), answers.tolist(), strict=True):
        # oracle: the number after each AREA token, the item marker 6 tokens before it, the asked word at the end
        areas = [(row[i - 5], row[i + 1]) for i, t in enumerate(row) if t == toy.AREA]
        assert 2 <= len(areas) <= 3 and row[-1] == toy.COLON
        ranked = sorted(areas, key=lambda a: a[1], reverse=row[-2] == toy.LARGEST)
        assert ranked[1][1] >= 1.2 * ranked[0][1] or ranked[0][1] >= 1.2 * ranked[1][1]  # a clear winner
        assert answer == (ranked[0][1] if target == "value" else ranked[0][0])
