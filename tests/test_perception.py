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
    from segzero.worlds.shapes import make_sample, world_from_spec

    config, families = world_from_spec(WORLD, size=size)
    return make_sample(index, seed=0, config=config, split="train", families=families)


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 5])  # six scenes of 2-3 shapes, queries of several families
def test_gt_perception_target_earns_every_paper_reward(index):
    from segzero.parsing import parse_answer
    from segzero.rewards import score
    from segzero.train.perception import named_shape, perception_completion

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


def _seen(*shapes):
    """SeenShapes from (colour, kind, box, area) in list order."""
    from segzero.train.perception import SeenShape

    return [SeenShape(i, c, k, box, ((0, 0), (1, 1)), a) for i, (c, k, box, a) in enumerate(shapes)]


THREE = _seen(
    ("red", "triangle", (4, 9, 44, 44), 45),
    ("orange", "triangle", (69, 79, 107, 112), 44),
    ("red", "circle", (71, 1, 107, 37), 71),
)


@pytest.mark.parametrize(
    ("template", "params", "pick", "expected"),
    [
        # the running winner against each next shape, in list order: 45 beats 44, 71 beats 45
        ("largest", {}, 2, "Compare largest: 1 (45) or 2 (44): 1; 1 (45) or 3 (71): 3."),
        ("smallest", {}, 1, "Compare smallest: 1 (45) or 2 (44): 2; 2 (44) or 3 (71): 2."),
        # only the red shapes are candidates (1 and 3)
        ("largest_colour", {"colour": "red"}, 2, "Compare largest: 1 (45) or 3 (71): 3."),
        ("smallest_colour", {"colour": "orange"}, 1, "Compare smallest: only 2."),  # one candidate
        # extremes compare a box edge: top y1 (smaller wins), bottom y2 (larger), left x1 (smaller), right x2
        ("extreme", {"direction": "top"}, 2, "Compare topmost: 1 (9) or 2 (79): 1; 1 (9) or 3 (1): 3."),
        ("extreme", {"direction": "bottom"}, 1, "Compare bottommost: 1 (44) or 2 (112): 2; 2 (112) or 3 (37): 2."),
        ("extreme", {"direction": "left"}, 0, "Compare leftmost: 1 (4) or 2 (69): 1; 1 (4) or 3 (71): 1."),
        ("extreme_kind", {"direction": "right", "kind": "triangle"}, 1, "Compare rightmost: 1 (44) or 2 (107): 2."),
        ("largest", {}, 0, None),  # the chain ends on 3, the gt is 1: no chain rather than a contradiction
        ("name", {"colour": "red", "kind": "circle"}, 2, None),  # not a superlative
        ("extreme", {"direction": "right"}, 2, None),  # 2 and 3 tie on x2 = 107: no chain
    ],
)
def test_comparison_chain(template, params, pick, expected):
    from segzero.train.perception import comparison

    assert comparison({"template": template, "params": params}, THREE, pick) == expected


@pytest.mark.parametrize(
    ("template", "params", "pick", "expected"),
    [
        # the largest / smallest listed area among the candidates (areas 45, 44, 71)
        ("largest", {}, 2, "Pick by largest area: 71."),
        ("smallest", {}, 1, "Pick by smallest area: 44."),
        ("largest_colour", {"colour": "red"}, 2, "Pick by largest area: 71."),  # red: 1 and 3
        ("smallest_colour", {"colour": "red"}, 0, "Pick by smallest area: 45."),  # 44 is orange: not a candidate
        # extremes: the box edge the direction looks at (top y1 9/79/1, bottom y2 44/112/37, left x1 4/69/71)
        ("extreme", {"direction": "top"}, 2, "Pick by topmost edge: 1."),
        ("extreme", {"direction": "bottom"}, 1, "Pick by bottommost edge: 112."),
        ("extreme_kind", {"direction": "left", "kind": "triangle"}, 0, "Pick by leftmost edge: 4."),
        ("largest", {}, 0, None),  # the numbers say 3, the gt says 1: no sentence rather than a contradiction
        ("extreme", {"direction": "right"}, 2, None),  # x2 = 107 twice: the number does not say which
        ("name", {"colour": "red", "kind": "circle"}, 2, None),  # not a superlative
    ],
)
def test_winner_sentence(template, params, pick, expected):
    from segzero.train.perception import winner

    assert winner({"template": template, "params": params}, THREE, pick) == expected


def test_gt_target_of_a_superlative_states_the_winner_then_decides():
    from segzero.errors import UserError
    from segzero.train.config import TrainConfig
    from segzero.train.perception import perception_completion, seen_shapes
    from segzero.train.perception_warmup import rows_for

    sample = next(s for s in map(_sample, range(40)) if s["template"] == "largest")
    gt, random = (
        perception_completion(sample, choice=c, rng=np.random.default_rng(0), winner_first=True)
        for c in ("gt", "random")
    )
    best = max(s.area for s in seen_shapes(sample))
    assert f". Pick by largest area: {best}. The query means the " in gt  # listing, winner, then the decision
    assert "Pick by" not in random  # the random warm-up pick is never justified
    with pytest.raises(ValueError, match="pick one"):
        perception_completion(sample, choice="gt", compare=True, winner_first=True)
    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=["sft_winner=true"])
    assert (
        rows_for(cfg, steps=1, choice="gt").winner_first and not rows_for(cfg, steps=1, choice="random").winner_first
    )
    with pytest.raises(UserError, match="pick one"):
        TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=["sft_winner=true", "sft_compare=true"])


def test_gt_target_of_a_superlative_compares_then_decides():
    from segzero.train.perception import perception_completion

    sample = next(s for s in map(_sample, range(40)) if s["family"] == "superlative")
    gt, random = (
        perception_completion(sample, choice=c, rng=np.random.default_rng(0), compare=True) for c in ("gt", "random")
    )
    assert re.search(r"\. Compare \w+: .+\. The query means the \w+ \w+, \d\.</think>", gt)  # chain, then decision
    assert "Compare" not in random  # the random warm-up pick is never justified by a chain
    assert "Compare" not in perception_completion(sample, choice="gt")  # off unless asked for


def test_random_pick_is_a_listed_shape_and_covers_them_all():
    from segzero.parsing import parse_answer
    from segzero.train.perception import perception_completion, seen_shapes

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
    from segzero.train.perception import perception_completion

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
    from segzero.train.perception import named_shape

    assert named_shape(think) == expected


@pytest.mark.parametrize(
    "supervise_from",
    [
        None,  # the whole completion (the perception warm-up)
        "The query means",  # from the decision on (the gt-answer stage with sft_answer_loss: decision)
    ],
)
@pytest.mark.parametrize(
    ("chain", "marker"),
    [
        ({"compare": True}, "Compare"),  # a superlative's pairs decide
        ({"winner_first": True}, "Pick by"),  # a superlative's winner sentence decides
        ({"listing": "orders"}, "From the top:"),  # every row's scene orders decide
        ({"listing": "ranked"}, "Ranked"),  # a superlative's ranking decides
    ],
)
def test_collator_supervises_exactly_the_completion(tmp_path, supervise_from, chain, marker):
    import torch

    from segzero.train.perception_warmup import CompletionCollator, PerceptionRows
    from segzero.train.processing import load_training_processor
    from segzero.worlds.reasoner import build_shapes_reasoner
    from segzero.worlds.shapes import world_from_spec

    path = build_shapes_reasoner(
        tmp_path / "m", frame=64, arch="qwen3_vl", number_tokens=True, hidden_size=32, num_layers=1
    )
    config, families = world_from_spec(WORLD, size=64)
    rows = PerceptionRows(config, families, seed=0, size=3, choice="gt", **chain)
    processor = load_training_processor(path)
    collate = CompletionCollator(processor, prompt_kind="compact", supervise_from=supervise_from, decision_weight=3.0)
    batch = collate([rows[i] for i in range(3)])
    assert any(marker in rows[i]["completion"] for i in range(3))  # the rows include what decides
    for i in range(3):
        ids, labels, weights = batch["input_ids"][i], batch["labels"][i], batch["loss_weights"][i]
        supervised = processor.tokenizer.decode(ids[labels != -100])
        completion = rows[i]["completion"] + "<|im_end|>"
        # a superlative's chain (or winner sentence), or the scene's orders, decide too
        decides = next(
            (m for m in ("Compare", "Pick by", "From the top:", "Ranked") if m in completion), "The query means"
        )
        decision = completion[completion.index(decides) - 1 :]
        expected = completion if supervise_from is None else decision
        assert supervised == expected  # (from the space before the decision: it is part of its first token)
        assert processor.tokenizer.decode(ids[(labels != -100) & (weights == 3.0)]) == decision  # weighed 3x
        assert set(weights[labels != -100].tolist()) <= {1.0, 3.0} and torch.all(weights[labels == -100] >= 1.0)


def test_weighted_loss_with_unit_weights_is_the_models_own_loss(tmp_path):
    import torch
    from transformers import AutoModelForImageTextToText

    from segzero.train.perception_warmup import CompletionCollator, PerceptionRows, WeightedLossTrainer
    from segzero.train.processing import load_training_processor
    from segzero.worlds.reasoner import build_shapes_reasoner
    from segzero.worlds.shapes import world_from_spec

    path = build_shapes_reasoner(
        tmp_path / "m", frame=64, arch="qwen3_vl", number_tokens=True, hidden_size=32, num_layers=1
    )
    config, families = world_from_spec(WORLD, size=64)
    rows = PerceptionRows(config, families, seed=0, size=2, choice="gt")
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
    from segzero.worlds.reasoner import build_shapes_reasoner

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
    assert quick.sft_steps < full.sft_steps  # its own fields win
    assert (quick.frame, quick.prompt, quick.synthetic_world) == (full.frame, full.prompt, full.synthetic_world)
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
        (["sft_target=essay"], "sft_target"),  # only answer / perception
        (["sft_choice=best"], "sft_choice"),  # only random / gt
        (["dataset=some/hub_set"], "synthetic"),  # the perception target needs the world's shape lists
        (["sft_only=true", "sft_steps=0", "sft_answer_steps=0"], "sft_steps"),  # nothing to stop after
        (["sft_answer_decision_weight=0"], "sft_answer_decision_weight"),  # a weight must be positive
        (["sft_answer_loss=listing"], "sft_answer_loss"),  # only all / decision
        (["sft_cosine_steps=10"], "sft_cosine_steps"),  # a cosine that ends before the run does
        (["sft_target=answer"], "sft_answer_steps"),  # the gt-answer stage follows a perception warm-up only
        (["sft_no_target=1.0"], "sft_no_target"),  # a share: every row "nothing" would teach nothing else
        (["sft_no_target=-0.1"], "sft_no_target"),  # a share is not negative
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
    from segzero.eval.grounding import _judge, name_probes, summarise

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
    from segzero.serve.examples import ShapesExamples
    from segzero.worlds.queries import TEMPLATES

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

    from segzero.train.perception_warmup import Stage

    stage = Stage("s", steps, 1.0, warmup, horizon)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = get_cosine_schedule_with_warmup(opt, warmup, steps, num_cycles=stage.num_cycles())
    h = horizon or steps
    for step in range(steps):
        oracle = step / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * (step - warmup) / (h - warmup)))
        assert sched.get_last_lr()[0] == pytest.approx(oracle, abs=1e-9)  # the cosine to 0 at the horizon
        opt.step()
        sched.step()


@pytest.mark.parametrize(
    ("overrides", "choice", "compare"),
    [
        ([], "gt", False),  # off by default: the recipes' targets decide without a chain
        (["sft_compare=true"], "gt", True),  # asked for: gt targets of superlatives carry it
        (["sft_compare=true"], "random", False),  # never in the random warm-up
    ],
)
def test_sft_compare_reaches_the_rows(overrides, choice, compare):
    from segzero.train.config import TrainConfig
    from segzero.train.perception_warmup import rows_for

    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=overrides)
    assert rows_for(cfg, steps=1, choice=choice).compare is compare


@pytest.mark.parametrize(
    ("overrides", "listing"),
    [
        ([], "left_to_right"),  # default: every query's shapes listed left to right
        (["sft_listing=query"], "query"),  # asked for: superlatives listed in the order they ask about
        (["sft_listing=area_first"], "area_first"),  # asked for: left to right, each area before its name
        (["sft_listing=orders"], "orders"),  # asked for: left to right, then the scene's orders
        (["sft_listing=ranked"], "ranked"),  # asked for: left to right, then a superlative's ranking
    ],
)
def test_sft_listing_reaches_the_rows(overrides, listing):
    from segzero.train.config import TrainConfig
    from segzero.train.perception_warmup import rows_for

    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=overrides)
    assert rows_for(cfg, steps=1, choice="gt").listing == listing


def test_sft_listing_rejects_unknown_order():
    from segzero.errors import UserError
    from segzero.train.config import TrainConfig

    with pytest.raises(UserError, match="sft_listing"):
        TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=["sft_listing=by_colour"])


def test_query_listing_puts_the_answer_first_among_candidates():
    # oracle: the world's own answer (its rules on whole silhouettes) is the first listed shape of the query's
    # colour / kind, and the decision names position 1 for unrestricted superlatives
    from segzero.train.perception import _MEANS_RE, perception_completion
    from segzero.worlds.shapes import ShapesConfig, make_sample

    seen = 0
    for i in range(400):
        sample = make_sample(i, seed=5, config=ShapesConfig(size=128), split="train", families=("superlative",))
        text = perception_completion(sample, choice="gt", listing="query")
        if not text.startswith("<think>I see, "):  # the listed values disagree with the world's rule: left to right
            continue
        seen += 1
        want = sample["shapes"][sample["answers"][0]]
        assert _MEANS_RE.search(text).groups() == (want["colour"], want["kind"])
        if not (sample["params"] or {}).keys() & {"colour", "kind"}:
            assert text.split("</think>")[0].endswith(", 1.")
    assert seen > 300  # almost every superlative gets its order


@pytest.mark.parametrize(
    ("overrides", "choice", "share"),
    [
        ([], "gt", 0.0),  # off by default: every query means one shape
        (["sft_no_target=0.2"], "gt", 0.2),  # asked for: a fifth of the gt-answer rows mean nothing
        (["sft_no_target=0.2"], "random", 0.0),  # never in the random warm-up (it does not supervise the pick)
    ],
)
def test_sft_no_target_reaches_the_rows(overrides, choice, share):
    from segzero.train.config import TrainConfig
    from segzero.train.perception_warmup import rows_for

    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=overrides)
    assert rows_for(cfg, steps=1, choice=choice).no_target == share


def test_no_target_rows_answer_nothing_and_the_rest_one_shape():
    # oracle: the world's colour / kind names of the scene; a naming query ("the <colour> <kind>") of a "nothing" row
    # names a pair that is not in the scene, one of a one-shape row names a pair that is
    from segzero.parsing import parse_answer
    from segzero.rewards import score
    from segzero.train.perception import named_shape
    from segzero.train.perception_warmup import PerceptionRows
    from segzero.worlds.shapes import COLOURS, KINDS, world_from_spec

    config, families = world_from_spec(WORLD, size=128)
    rows = PerceptionRows(config, families, seed=0, size=200, choice="gt", no_target=0.25)
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
    again = PerceptionRows(config, families, seed=0, size=200, choice="gt", no_target=0.25)
    assert [again[i]["completion"] for i in range(20)] == [rows[i]["completion"] for i in range(20)]  # resumable


@pytest.mark.parametrize("index", [0, 1, 2, 3])  # four scenes of 2-3 shapes
def test_area_first_listing_moves_only_the_area(index):
    # oracle: the default listing of the same scene; each item is the same words with "area N" moved to the front
    from segzero.parsing import parse_answer
    from segzero.train.perception import perception_completion

    sample = _sample(index)
    plain = parse_answer(perception_completion(sample, choice="gt"))
    moved = parse_answer(perception_completion(sample, choice="gt", listing="area_first"))
    assert moved.objects == plain.objects  # the same answer
    items = re.findall(r"(\d+) (.+?) area (\d+)(?:; |\. )", plain.think)
    assert items and len(items) == len(sample["shapes"])
    for k, seen, area in items:
        assert f"{k} area {area} {seen}" in moved.think
    assert moved.think.split(". ", 1)[1] == plain.think.split(". ", 1)[1]  # the same decision


def test_orders_listing_sorts_the_listed_shapes_and_ends_superlatives_on_an_entry():
    # oracle: the orders are recomputed from the listed items' own text (box centre y, area), and the world's answer
    # to a superlative (its rules on whole silhouettes) must be the first / last entry among the query's candidates
    from segzero.parsing import parse_answer
    from segzero.train.perception import perception_completion
    from segzero.worlds.shapes import make_sample, world_from_spec

    config, _ = world_from_spec(WORLD, size=128)
    item = re.compile(r"(\d+) (\w+) (\w+) \[(\d+),(\d+),(\d+),(\d+)\] \(\d+,\d+\) \(\d+,\d+\) area (\d+)")
    checked = ends = 0
    for i in range(120):
        sample = make_sample(i, seed=3, config=config, split="train", families=("superlative", "attribute"))
        think = parse_answer(perception_completion(sample, choice="gt", listing="orders")).think
        plain = parse_answer(perception_completion(sample, choice="gt")).think
        listed = [
            (int(k), f"{c} {kind}", int(y1) + int(y2), int(area))
            for k, c, kind, _, y1, _, y2, area in item.findall(think)
        ]
        assert listed and think.startswith(plain.split(". The query means")[0])  # the same listing first
        top = ", ".join(f"{k} {name}" for k, name, _, _ in sorted(listed, key=lambda t: t[2]))
        large = ", ".join(f"{k} {name}" for k, name, _, _ in sorted(listed, key=lambda t: -t[3]))
        assert f". From the top: {top}. Largest first: {large}. The query means" in think
        assert think.endswith(plain.split(". ")[-1])  # the same decision
        if sample["family"] != "superlative":
            continue
        checked += 1
        params = sample["params"] or {}
        names = {k: name for k, name, _, _ in listed}
        want = next(k for k, name in names.items() if think.endswith(f"the {name}, {k}."))
        order = large if sample["template"].startswith(("largest", "smallest")) else top
        if params.get("direction") in ("left", "right"):  # "the leftmost shape", "the rightmost circle"
            order = ", ".join(f"{k} {name}" for k, name in names.items())  # the listing itself is left to right
        entries = [int(e.split()[0]) for e in order.split(", ")]
        entries = [
            k for k in entries if all(w in names[k].split() for w in (params.get("colour"), params.get("kind")) if w)
        ]
        ends += want in (entries[0], entries[-1])
    assert checked >= 30 and ends == checked  # every superlative's answer ends one order


def test_ranked_listing_ranks_a_superlatives_candidates_and_decides_on_the_first():
    # oracle: the ranking recomputed from the listed items' own text (area, or the box edge the direction looks at,
    # among the shapes of the query's colour / kind); the world's answer is the first entry; other queries: no ranking
    from segzero.parsing import parse_answer
    from segzero.train.perception import perception_completion
    from segzero.worlds.shapes import make_sample, world_from_spec

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


def test_ranked_listing_is_one_way_to_state_the_decision():
    from segzero.errors import UserError
    from segzero.train.config import TrainConfig

    for other in ("sft_compare=true", "sft_winner=true"):
        with pytest.raises(UserError, match="pick one"):
            TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=["sft_listing=ranked", other])
