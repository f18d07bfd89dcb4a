"""Tests of the perception warm-up pieces: targets, the completion-only collator, number embeddings, the compact
prompt, recipe bases and the grounding checks' bookkeeping.

Run: ``OMP_NUM_THREADS=1 pytest tests/test_perception.py -x -q``
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
WORLD = {"min_shapes": 2, "max_shapes": 3, "kinds": ["circle", "square", "triangle"], "overlap": False}


def _sample(index: int, size: int = 128):
    from segzero.shapes.world import make_sample, world_from_spec

    config, families = world_from_spec(WORLD, size=size)
    return make_sample(index, seed=0, config=config, split="train", families=families)


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 5])  # six scenes of 2-3 shapes, queries of several families
def test_gt_perception_target_earns_every_paper_reward(index):
    from segzero.parsing import parse_answer
    from segzero.rewards import score
    from segzero.shapes.perception import named_shape, perception_completion

    sample = _sample(index)
    text = perception_completion(sample, choice="gt")
    assert score("segzero", text, sample["solution"])["total"] == 5.0  # the copied answer is the gt itself
    answer = parse_answer(text)
    want = sample["shapes"][sample["answers"][0]]
    assert named_shape(answer.think) == (want["colour"], want["kind"])  # the reasoning names the answer
    listed = re.findall(r"(\d+) (\w+) (\w+) \[(\d+),(\d+),(\d+),(\d+)\]", answer.think)
    assert len(listed) == len(sample["shapes"])  # every shape is listed once
    centres = [int(x1) + int(x2) for _, _, _, x1, _, x2, _ in listed]
    assert centres == sorted(centres)  # left to right
    areas = sorted(int(a) for a in re.findall(r"area (\d+)", answer.think))
    expected = sorted(round(1000 * f["visible_area"] / 128**2) for f in sample["shapes"])
    assert areas == expected  # area: visible pixels per thousand pixels of the image, from the scene's own facts


def test_random_pick_is_a_listed_shape_and_covers_them_all():
    from segzero.parsing import parse_answer
    from segzero.shapes.perception import perception_completion, seen_shapes

    sample = _sample(3)
    boxes = {s.box for s in seen_shapes(sample)}
    picked = set()
    for k in range(40):
        ans = parse_answer(perception_completion(sample, choice="random", rng=np.random.default_rng(k)))
        box = tuple(int(v) for v in ans.objects[0].box)
        assert box in boxes  # the answer copies one of the listed shapes
        picked.add(box)
    assert picked == boxes  # no shape is favoured out of reach: each is picked at some seed


def test_bad_choice_is_refused():
    from segzero.shapes.perception import perception_completion

    with pytest.raises(ValueError, match="choice"):
        perception_completion(_sample(0), choice="best")


@pytest.mark.parametrize(
    ("think", "expected"),
    [
        ("I see 1 red circle [1,2,3,4] (2,3) (2,3) area 9. The query means the red circle, 1.", ("red", "circle")),
        # several statements: the last one is the answer's
        ("The query means the red circle, 1. The query means the blue square, 2.", ("blue", "square")),
        ("The query means 2, the blue square.", None),  # the number before the name: not this format
        ("I look for the red circle.", None),  # the answer-only warm-up's template names no pick
        (None, None),  # no reasoning at all
    ],
)
def test_named_shape(think, expected):
    from segzero.shapes.perception import named_shape

    assert named_shape(think) == expected


@pytest.mark.parametrize(
    ("listing", "marker"),
    [
        ("left_to_right", "The query means"),  # the decision sentence decides
        ("ranked", "Ranked"),  # a superlative's ranking decides
    ],
)
def test_collator_supervises_exactly_the_completion(tmp_path, listing, marker):
    import torch

    from segzero.shapes.model import build_shapes_reasoner
    from segzero.shapes.warmup import CompletionCollator, ShapesRows
    from segzero.shapes.world import world_from_spec
    from segzero.train.processing import load_training_processor

    path = build_shapes_reasoner(
        tmp_path / "m", frame=64, arch="qwen3_vl", number_tokens=True, hidden_size=32, num_layers=1
    )
    config, families = world_from_spec({**WORLD, "families": ["superlative"]}, size=64)
    rows = ShapesRows(config, families, seed=0, size=3, choice="gt", listing=listing)
    processor = load_training_processor(path)
    batch = CompletionCollator(processor, prompt_kind="compact", decision_weight=3.0)([rows[i] for i in range(3)])
    assert any(marker in rows[i]["completion"] for i in range(3))  # the rows include what decides
    for i in range(3):
        ids, labels, weights = batch["input_ids"][i], batch["labels"][i], batch["loss_weights"][i]
        supervised = processor.tokenizer.decode(ids[labels != -100])
        completion = rows[i]["completion"] + "<|im_end|>"
        decides = "Ranked" if "Ranked" in completion else "The query means"  # a ranking decides too
        decision = completion[completion.index(decides) - 1 :]
        assert supervised == completion  # the whole completion, nothing of the prompt
        # (from the space before the decision: it is part of its first token)
        assert processor.tokenizer.decode(ids[(labels != -100) & (weights == 3.0)]) == decision  # weighed 3x
        assert set(weights[labels != -100].tolist()) <= {1.0, 3.0} and torch.all(weights[labels == -100] >= 1.0)


def test_weighted_loss_with_unit_weights_is_the_models_own_loss(tmp_path):
    import torch
    from transformers import AutoModelForImageTextToText

    from segzero.shapes.model import build_shapes_reasoner
    from segzero.shapes.warmup import CompletionCollator, ShapesRows, WeightedLossTrainer
    from segzero.shapes.world import world_from_spec
    from segzero.train.processing import load_training_processor

    path = build_shapes_reasoner(
        tmp_path / "m", frame=64, arch="qwen3_vl", number_tokens=True, hidden_size=32, num_layers=1
    )
    config, families = world_from_spec(WORLD, size=64)
    rows = ShapesRows(config, families, seed=0, size=2, choice="gt")
    processor = load_training_processor(path)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype="float32")
    losses = {}
    for w in (1.0, 4.0):
        batch = CompletionCollator(processor, prompt_kind="compact", decision_weight=w)([rows[0], rows[1]])
        with torch.no_grad():
            own = model(**{k: v for k, v in batch.items() if k != "loss_weights"}).loss  # transformers' mean CE
            losses[w] = WeightedLossTrainer.compute_loss(None, model, dict(batch))
    assert torch.isclose(losses[1.0], own, rtol=1e-5)  # unit weights: the plain mean over supervised tokens
    assert not torch.isclose(losses[4.0], losses[1.0])  # the decision weighs more: a different mean


def test_fourier_number_rows_put_near_values_near():
    from segzero.models.tiny.reasoner import fourier_number_rows

    rows = fourier_number_rows(list(range(128)), 32, scale=1.0).numpy()
    d = np.linalg.norm(rows[:, None] - rows[None], axis=2)
    assert d[60, 61] < d[60, 70] < d[60, 120]  # distance grows with the difference of the values
    assert np.allclose(np.linalg.norm(rows, axis=1), 4.0)  # sqrt(16 periods): every row has the same norm


def test_number_init_needs_number_tokens(tmp_path):
    from segzero.shapes.model import build_shapes_reasoner

    with pytest.raises(ValueError, match="number_tokens"):
        build_shapes_reasoner(tmp_path / "m", frame=64, arch="qwen3_vl", number_init=True, hidden_size=32)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("The cup on the left.", "Please find 'the cup on the left' with bbox and points."),  # normalised query
        ("the largest shape", "Please find 'the largest shape' with bbox and points."),
    ],
)
def test_compact_prompt(query, expected):
    from segzero.prompts import format_prompt

    assert format_prompt(query, kind="compact") == expected


def test_compact_prompt_is_accepted_everywhere_a_kind_is(tmp_path):
    from segzero.errors import UserError
    from segzero.models.reasoner import resolve_prompt_and_frame
    from segzero.train.config import TrainConfig

    assert resolve_prompt_and_frame(tmp_path, prompt="compact", frame=128) == ("compact", 128)
    assert TrainConfig.from_yaml(None, overrides=["prompt=compact"]).prompt_kind == "compact"
    with pytest.raises(UserError, match="reward_kind"):  # compact asks for a single-object answer
        TrainConfig.from_yaml(None, overrides=["prompt=compact", "reward_kind=visionreasoner"])
    with pytest.raises(UserError, match="prompt kind"):
        resolve_prompt_and_frame(tmp_path, prompt="chatty", frame=128)


def test_recipe_base_is_read_first(tmp_path):
    from segzero.errors import UserError
    from segzero.train.config import TrainConfig

    quick = TrainConfig.from_yaml(ROOT / "recipes/shapes_quick.yaml")
    full = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml")
    (q_warm, _), (f_warm, _) = quick.stage_list()[0], full.stage_list()[0]
    assert quick.stage_list()[0][1].steps < full.stage_list()[0][1].steps  # its own fields win, stage by stage
    assert quick.stage_list()[0][1].learning_rate == full.stage_list()[0][1].learning_rate  # the rest is the base's
    assert q_warm is f_warm and [k.name for k, _ in quick.stage_list()] == ["perception_warmup", "answer_sft", "grpo"]
    assert (quick.frame, quick.prompt, quick.dataset_args["world"]) == (
        full.frame,
        full.prompt,
        full.dataset_args["world"],
    )
    (tmp_path / "a.yaml").write_text("base: b.yaml\nframe: 64\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(UserError, match="cycle"):
        TrainConfig.from_yaml(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(UserError, match="not found"):
        TrainConfig.from_yaml(tmp_path / "c.yaml")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["stages=[{kind: essay}]"], "no stage named 'essay'"),  # an unregistered stage kind
        (["stages.perception_warmup.choice=gt"], "unknown field"),  # the warm-up's pick is random by definition
        (["dataset=some/hub_set"], "synthetic"),  # the shapes stages need the world's shape lists
        (["stages=[]"], "non-empty"),  # nothing to run
        (["stages.answer_sft.decision_weight=0"], "decision_weight"),  # a weight must be positive
        (["stages.perception_warmup.cosine_steps=10"], "cosine_steps"),  # a cosine that ends before the stage does
        (["stages=[grpo, perception_warmup]"], "last"),  # GRPO ends the run
        (["stages=[perception_warmup, perception_warmup]"], "once"),  # one folder per kind
        (["stages.answer_sft.no_target=1.0"], "no_target"),  # a share: every row "nothing" would teach nothing else
        (["stages.answer_sft.no_target=-0.1"], "no_target"),  # a share is not negative
        (["stages.answer_sft.listing=query"], "listing"),  # removed (measured, no help): left_to_right or ranked
        (["stages.format_sft.steps=3"], "no 'format_sft' stage"),  # a field of a stage the run does not have
        (["sft_steps=3"], "stages.KIND.FIELD"),  # the flat warm-up fields beside stages
    ],
)
def test_bad_perception_settings(overrides, message):
    from segzero.errors import UserError
    from segzero.train.config import TrainConfig

    with pytest.raises(UserError, match=message):
        TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=overrides)


class _Result:
    def __init__(self, mask, reasoning):
        self.mask, self.reasoning, self.parse_ok = mask, reasoning, True


def test_grounding_judge_and_summary():
    from segzero.shapes.grounding import _judge, name_probes, summarise

    sample = _sample(1)
    masks = sample["shape_masks"]
    target = sample["answers"][0]
    other = next(i for i in range(len(masks)) if i != target)
    name = f"{sample['shapes'][target]['colour']} {sample['shapes'][target]['kind']}"
    reasoning = f"The query means the {name}, 1."
    rows = [
        _judge(_Result(masks[target], reasoning), masks[target], sample, right_iou=0.5),  # right, agrees
        _judge(_Result(masks[other], reasoning), masks[target], sample, right_iou=0.5),  # wrong shape, disagrees
        _judge(_Result(np.zeros_like(masks[0]), "no name"), masks[target], sample, right_iou=0.5),  # empty mask
    ]
    assert [r["right"] for r in rows] == [True, False, False]
    assert [r["agree"] for r in rows] == [True, False, None]
    s = summarise(rows)
    assert s["right"] == pytest.approx(1 / 3, abs=1e-3) and s["agree"] == 0.5 and s["agree_n"] == 2
    probes = name_probes([sample])
    names = [(f["colour"], f["kind"]) for f in sample["shapes"]]
    assert len(probes) == sum(names.count(n) == 1 for n in names)  # shapes sharing a name are not asked for


def test_world_build_and_web_examples_follow_a_models_world(tmp_path):
    import json

    from datasets import load_from_disk

    from segzero.cli.main import main
    from segzero.models.reasoner import write_model_info
    from segzero.shapes.examples import ShapesExamples
    from segzero.shapes.queries import TEMPLATES

    model = tmp_path / "model"
    model.mkdir()
    world = {**WORLD, "families": ["affordance"]}  # only "something that could roll"-style queries
    write_model_info(model, frame=128, prompt="compact", world=world)
    assert (
        main(
            ["world", "build", "--out", str(tmp_path / "w"), "--layout", "eval", "--n", "val=6", "--like", str(model)]
        )
        == 0
    )
    texts = load_from_disk(str(tmp_path / "w"))["val"]["text"]
    afford = {w.lower() for t in TEMPLATES if t.family == "affordance" for w in t.wordings}
    assert all(q.lower().rstrip(".") in afford for q in texts)  # the model's families, not every family
    examples = ShapesExamples.for_model(model, count=3)
    assert json.loads(examples.world) == world
    assert all(e["query"].lower() in afford for e in examples.list())
    assert ShapesExamples.for_model(tmp_path).world is None  # no segzero.json: the default world
    assert main(["world", "build", "--out", str(tmp_path / "x"), "--like", str(tmp_path)]) == 2  # no world recorded


@pytest.mark.parametrize(
    ("steps", "horizon", "warmup"),
    [
        (3300, 4500, 100),  # the shipped warm-up: stopped part-way down a 4500-step cosine
        (400, None, 10),  # a stage that runs its whole cosine
    ],
)
def test_stage_schedule_is_the_first_part_of_the_longer_cosine(steps, horizon, warmup):
    import math

    import torch
    from transformers import get_cosine_schedule_with_warmup

    from segzero.shapes.warmup import num_cycles

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = get_cosine_schedule_with_warmup(opt, warmup, steps, num_cycles=num_cycles(steps, warmup, horizon))
    h = horizon or steps
    for step in range(steps):
        oracle = step / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * (step - warmup) / (h - warmup)))
        assert sched.get_last_lr()[0] == pytest.approx(oracle, abs=1e-9)  # the cosine to 0 at the horizon
        opt.step()
        sched.step()


@pytest.mark.parametrize(
    ("overrides", "kind", "expected"),
    [
        ([], "answer_sft", {"listing": "left_to_right", "no_target": 0.0}),  # defaults: one shape, listed in order
        (["stages.answer_sft.listing=ranked"], "answer_sft", {"listing": "ranked"}),  # a superlative's ranking
        (["stages.answer_sft.no_target=0.2"], "answer_sft", {"no_target": 0.2}),  # a fifth of the rows mean nothing
        ([], "perception_warmup", {"choice": "random", "listing": "left_to_right", "no_target": 0.0}),  # never gt
    ],
)
def test_stage_fields_reach_the_rows(overrides, kind, expected):
    from segzero.train.config import TrainConfig

    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=overrides)
    config = next(c for k, c in cfg.stage_list() if k.name == kind)
    rows = config.stage_rows(cfg)  # what the stage's run trains on
    assert {k: getattr(rows, k) for k in expected} == expected
    assert len(rows) == (config.cosine_steps or config.steps) * config.batch_size  # rows for the whole cosine
    assert rows.seed == cfg.dataset_args["seed"]


def test_no_target_rows_answer_nothing_and_the_rest_one_shape():
    # oracle: the world's colour / kind names of the scene; a naming query ("the <colour> <kind>") of a "nothing" row
    # names a pair that is not in the scene, one of a one-shape row names a pair that is
    from segzero.parsing import parse_answer
    from segzero.rewards import score
    from segzero.shapes.perception import named_shape
    from segzero.shapes.warmup import ShapesRows
    from segzero.shapes.world import COLOURS, KINDS, world_from_spec

    config, families = world_from_spec(WORLD, size=128)
    rows = ShapesRows(config, families, seed=0, size=200, choice="gt", no_target=0.25)
    nothing, named = 0, 0
    for i in range(len(rows)):
        row = rows[i]
        answer = parse_answer(row["completion"])
        assert answer.ok
        scene = set(re.findall(r"\d+ (\w+) (\w+) \[", answer.think))  # the listed (colour, kind) of every shape
        asked = re.fullmatch(r"the (\w+) (\w+)", row["query"])
        if asked and asked.groups()[0] in COLOURS and asked.groups()[1] in KINDS:
            named += 1
            assert (asked.groups() in scene) == bool(answer.objects)
        if answer.objects:  # one shape: the reasoning names it
            assert named_shape(answer.think) is not None
            continue
        nothing += 1
        assert answer.think.endswith("The query means nothing.") and named_shape(answer.think) is None
        assert score("visionreasoner", row["completion"], "[]")["accuracy"] == 3.0  # a right empty answer
    assert named >= 5  # some naming queries were checked against the scene (6 of these 200 rows)
    assert 30 <= nothing <= 70  # a quarter of 200 rows, within sampling noise (binomial sd ~6)
    again = ShapesRows(config, families, seed=0, size=200, choice="gt", no_target=0.25)
    assert [again[i]["completion"] for i in range(20)] == [rows[i]["completion"] for i in range(20)]  # resumable


def test_ranked_listing_ranks_a_superlatives_candidates_and_decides_on_the_first():
    # oracle: the ranking recomputed from the listed items' own text (area, or the box edge the direction looks at,
    # among the shapes of the query's colour / kind); the world's answer is the first entry; other queries: no ranking
    from segzero.parsing import parse_answer
    from segzero.shapes.perception import perception_completion
    from segzero.shapes.world import make_sample, world_from_spec

    config, _ = world_from_spec(WORLD, size=128)
    item = re.compile(r"(\d+) (\w+) (\w+) \[(\d+),(\d+),(\d+),(\d+)\] \(\d+,\d+\) \(\d+,\d+\) area (\d+)")
    keys = {"largest": lambda b, a: -a, "smallest": lambda b, a: a}  # size templates: area, larger first or not
    edges = {
        "left": lambda b, a: b[0],
        "top": lambda b, a: b[1],
        "right": lambda b, a: -b[2],
        "bottom": lambda b, a: -b[3],
    }
    ranked = 0
    for i in range(150):
        sample = make_sample(i, seed=4, config=config, split="train", families=("superlative", "attribute"))
        text = perception_completion(sample, choice="gt", listing="ranked")
        think = parse_answer(text).think
        assert parse_answer(text).objects == parse_answer(perception_completion(sample, choice="gt")).objects
        if sample["family"] != "superlative":
            assert "Ranked" not in think  # only superlatives rank
            continue
        if "Ranked" not in think:  # the listed values disagree with the world's rule (whole silhouettes)
            continue
        ranked += 1
        params = sample["params"] or {}
        items = [(int(k), c, kind, tuple(map(int, box)), int(area)) for k, c, kind, *box, area in item.findall(think)]
        cands = [t for t in items if params.get("colour", t[1]) == t[1] and params.get("kind", t[2]) == t[2]]
        key = edges[params["direction"]] if "direction" in params else keys[sample["template"].split("_")[0]]
        want = ", ".join(f"{k} {c} {kind}" for k, c, kind, _, _ in sorted(cands, key=lambda t: key(t[3], t[4])))
        phrase = think.split("Ranked ", 1)[1].split(": ", 1)[0]
        assert f"Ranked {phrase}: {want}. The query means " in think
        k, c, kind, _, _ = min(cands, key=lambda t: key(t[3], t[4]))
        assert think.endswith(f"The query means the {c} {kind}, {k}.")  # the first entry
        gt = sample["shapes"][sample["answers"][0]]
        assert (gt["colour"], gt["kind"]) == (c, kind)  # the world's own answer
    assert ranked >= 40  # most superlatives rank (about half of these 150 rows are superlatives)
