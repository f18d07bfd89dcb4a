"""Decision drills (segzero.train.drills): superlative queries over made-up listings, answered as the world would.

Run: ``OMP_NUM_THREADS=1 pytest tests/test_drills.py -q``
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
WORLD = {"kinds": ["circle", "square", "triangle"], "min_shapes": 2, "max_shapes": 3, "overlap": False}
ITEM = re.compile(r"(\d+) (\w+) (\w+) \[(\d+),(\d+),(\d+),(\d+)\] \((\d+),(\d+)\) \((\d+),(\d+)\) area (\d+)")
# the same item with its area before its name (sft_listing: area_first)
ITEM_AREA_FIRST = re.compile(
    r"(\d+) area (\d+) (\w+) (\w+) \[(\d+),(\d+),(\d+),(\d+)\] \((\d+),(\d+)\) \((\d+),(\d+)\)"
)
MEANS = re.compile(r"The query means the (\w+) (\w+), (\d+)\.")


def _oracle(query: str, items: list[tuple], *, ratio: float, margin: float) -> int | None:
    """The 1-based listed position the query means, read from the text alone (independent of the drill code):
    the listed area for size words (winner >= ratio x runner-up), the box edge and centre for extremes (both
    must win by more than ``margin``); None when unclear."""
    colours = {"red", "orange", "yellow", "green", "blue", "purple"}
    words = query.split()
    colour = next((w for w in words if w in colours), None)
    kind = next((w for w in words if w in ("circle", "square", "triangle")), None)
    cands = [it for it in items if (colour is None or it["colour"] == colour) and (kind is None or it["kind"] == kind)]
    if any(w in words for w in ("largest", "biggest", "smallest", "tiniest")):
        larger = any(w in words for w in ("largest", "biggest"))
        ranked = sorted(cands, key=lambda it: it["area"], reverse=larger)
        if len(ranked) > 1:
            a, b = ranked[0]["area"], ranked[1]["area"]
            if (a < ratio * b) if larger else (b < ratio * a):
                return None
        return ranked[0]["pos"]
    side = {"leftmost": (0, False), "topmost": (1, False), "rightmost": (2, True), "bottommost": (3, True)}
    (edge, larger) = next(side[w] for w in words if w in side)
    axis = edge % 2
    picks = set()
    for value in (lambda it: it["box"][edge], lambda it: (it["box"][axis] + it["box"][axis + 2]) / 2):
        ranked = sorted(cands, key=value, reverse=larger)
        if len(ranked) > 1 and abs(value(ranked[0]) - value(ranked[1])) <= margin:
            return None
        picks.add(ranked[0]["pos"])
    return picks.pop() if len(picks) == 1 else None


def _listed(completion: str, *, area_first: bool = False) -> list[dict]:
    if area_first:
        return [
            {"pos": int(m[0]), "colour": m[2], "kind": m[3], "box": tuple(map(int, m[4:8])), "area": int(m[1])}
            for m in ITEM_AREA_FIRST.findall(completion)
        ]
    return [
        {"pos": int(m[0]), "colour": m[1], "kind": m[2], "box": tuple(map(int, m[3:7])), "area": int(m[11])}
        for m in ITEM.findall(completion)
    ]


@pytest.mark.parametrize("listing", ["left_to_right", "area_first"])  # as the warm-up lists: name or area first
def test_drills_answer_as_the_world_would(listing):
    from segzero.train.drills import drill_row
    from segzero.worlds.shapes import world_from_spec

    area_first = listing == "area_first"
    config, _ = world_from_spec(WORLD, size=128)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        row = drill_row(rng, config=config, listing=listing)
        items = _listed(row["completion"], area_first=area_first)
        assert not _listed(row["completion"], area_first=not area_first)  # the other layout appears nowhere
        assert 2 <= len(items) <= 5 and [it["pos"] for it in items] == list(range(1, len(items) + 1))
        assert all(it["kind"] in WORLD["kinds"] for it in items)  # only the world's kinds
        centres = [(it["box"][0] + it["box"][2], it["box"][1] + it["box"][3]) for it in items]
        assert [c[0] for c in centres] == sorted(c[0] for c in centres)  # listed left to right
        colour, kind, pos = MEANS.search(row["completion"]).groups()
        want = _oracle(row["query"], items, ratio=config.area_ratio, margin=config.margin_frac * config.side)
        assert int(pos) == want  # clear, and the one the oracle picks from the listed numbers
        assert (items[want - 1]["colour"], items[want - 1]["kind"]) == (colour, kind)
        box = items[want - 1]["box"]
        assert f'"bbox": [{",".join(map(str, box))}]' in row["completion"]  # the answer copies the winner's box
        assert row["image"].size == (128, 128) and np.ptp(np.asarray(row["image"])) == 0  # blank: no scene
        seen |= set(row["query"].split())
    assert {"leftmost", "topmost", "rightmost", "bottommost"} <= seen  # every direction and both sizes drilled
    assert seen & {"largest", "biggest"} and seen & {"smallest", "tiniest"}


def test_collator_keeps_a_drills_listing_out_of_the_loss(tmp_path):
    from segzero.train.perception_warmup import CompletionCollator, PerceptionRows
    from segzero.train.processing import load_training_processor
    from segzero.worlds.reasoner import build_shapes_reasoner
    from segzero.worlds.shapes import world_from_spec

    path = build_shapes_reasoner(
        tmp_path / "m", frame=64, arch="qwen3_vl", number_tokens=True, hidden_size=32, num_layers=1
    )
    config, families = world_from_spec(WORLD, size=64)
    rows = PerceptionRows(config, families, seed=0, size=40, choice="gt", drill_fraction=0.5)
    batch_rows = [rows[i] for i in range(8)]
    drills = [r for r in batch_rows if "supervise_from" in r]
    assert 0 < len(drills) < 8  # both kinds of row in one batch
    processor = load_training_processor(path)
    batch = CompletionCollator(processor, prompt_kind="compact", decision_weight=2.0)(batch_rows)
    for i, row in enumerate(batch_rows):
        ids, labels = batch["input_ids"][i], batch["labels"][i]
        supervised = processor.tokenizer.decode(ids[labels != -100])
        completion = row["completion"] + "<|im_end|>"
        decision = completion[completion.index("The query means") - 1 :]
        # a drill: from the decision on only (its listing is made up); a scene row: the whole completion
        assert supervised == (decision if "supervise_from" in row else completion)


@pytest.mark.parametrize(
    ("overrides", "choice", "fraction"),
    [
        ([], "gt", 0.0),  # off by default
        (["sft_drill_fraction=0.5"], "gt", 0.5),  # asked for: half the gt-answer rows are drills
        (["sft_drill_fraction=0.5"], "random", 0.0),  # the gt-answer share does not reach the random warm-up
        (["sft_warmup_drills=0.25"], "random", 0.25),  # the warm-up's own share: drills alongside seeing
        (["sft_warmup_drills=0.25"], "gt", 0.0),  # ... and it does not reach the gt-answer rows
    ],
)
def test_drill_fraction_reaches_the_rows(overrides, choice, fraction):
    from segzero.train.config import TrainConfig
    from segzero.train.perception_warmup import rows_for

    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=overrides)
    rows = rows_for(cfg, steps=50, choice=choice)
    assert rows.drill_fraction == fraction
    drills = sum("supervise_from" in rows[i] for i in range(200))
    assert abs(drills / 200 - fraction) < 0.1  # about that share, drawn per row index
    assert [("supervise_from" in rows[i]) for i in range(20)] == [("supervise_from" in rows[i]) for i in range(20)]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sft_drill_fraction=1.0"], "sft_drill_fraction"),  # a share in [0, 1): all drills would never see a scene
        (["sft_drill_fraction=-0.1"], "sft_drill_fraction"),  # negative share
        (["sft_warmup_drills=1.0"], "sft_warmup_drills"),  # the warm-up's share, same bounds
        (["sft_warmup_drills=0.2", "sft_listing=query"], "left to right"),  # drills cannot list in the query's order
        (["sft_drill_fraction=0.2", "sft_listing=orders"], "without orders"),  # drills list no orders
    ],
)
def test_bad_drill_fraction(overrides, message):
    from segzero.errors import UserError
    from segzero.train.config import TrainConfig

    with pytest.raises(UserError, match=message):
        TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=overrides)


@pytest.mark.parametrize("listing", ["left_to_right", "area_first"])
def test_drills_list_as_the_scene_rows_do(listing):
    from segzero.train.config import TrainConfig
    from segzero.train.perception_warmup import rows_for

    overrides = ["sft_warmup_drills=0.5", f"sft_listing={listing}"]
    rows = rows_for(
        TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=overrides), steps=1, choice="random"
    )
    drills = [rows[i] for i in range(30) if "supervise_from" in rows[i]]
    scenes = [rows[i] for i in range(30) if "supervise_from" not in rows[i]]
    assert drills and scenes
    area_first = listing == "area_first"
    for row in drills + scenes:  # one layout for both kinds of row: the drill teaches reading the scene's listing
        assert _listed(row["completion"], area_first=area_first)
        assert not _listed(row["completion"], area_first=not area_first)


@pytest.mark.parametrize(
    ("overrides", "all_gt"),
    [
        ([], False),  # random picks: 2 in 5 expected with 2-3 shapes (16 of these 28 rows: fixed seeds)
        (["sft_warmup_gt_families=[superlative]"], True),  # superlative rows pick the gt shape in the warm-up too
    ],
)
def test_warmup_gt_families_pick_the_gt_shape(overrides, all_gt):
    from segzero.train.config import TrainConfig
    from segzero.train.perception_warmup import rows_for
    from segzero.worlds.shapes import make_sample

    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=overrides)
    rows = rows_for(cfg, steps=2, choice="random")
    hits = []
    for i in range(60):
        sample = make_sample(
            i, seed=rows.seed, config=rows.config, split="train", layout="single", families=rows.families
        )
        if sample["family"] != "superlative":
            continue
        (want,) = sample["answers"]
        ys, xs = np.nonzero(sample["shape_masks"][want])
        box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))  # oracle: the world's answer's pixels
        picked = int(MEANS.search(rows[i]["completion"]).group(3))
        hits.append(_listed(rows[i]["completion"])[picked - 1]["box"] == box)
    assert len(hits) >= 10
    assert all(hits) if all_gt else sum(hits) / len(hits) < 0.7


def test_unknown_warmup_gt_family():
    from segzero.errors import UserError
    from segzero.train.config import TrainConfig

    with pytest.raises(UserError, match="unknown families"):
        TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=["sft_warmup_gt_families=[superlatives]"])


@pytest.mark.parametrize("listing", ["query", "orders", "by_colour"])  # a drill has no query order or scene orders
def test_drill_row_refuses_listings_it_cannot_write(listing):
    from segzero.train.drills import drill_row
    from segzero.worlds.shapes import world_from_spec

    config, _ = world_from_spec(WORLD, size=128)
    with pytest.raises(ValueError, match="drills are listed"):
        drill_row(np.random.default_rng(0), config=config, listing=listing)
