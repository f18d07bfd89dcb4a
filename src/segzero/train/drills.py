"""Decision drills for the shapes recipe's gt-answer stage: superlative queries over made-up listings.

Why: the shapes model lists a scene accurately (colour, kind, box, points and area of every shape), but its pick
for "the largest shape" or "the topmost circle" is barely better than chance, even after thousands of gt-answer
steps (measured: in 40 of 42 val superlative failures the listing is right to a few units, the pick ignores it).
The pick is a comparison of two to three numbers of the listing, something a pretrained language model brings to
Seg-Zero's GRPO from pretraining and a model built from scratch has to learn from one decision per scene. A drill
row supplies that skill alone: a superlative query, a teacher-forced listing of 2 to ``max_shapes`` made-up shapes
with random boxes and areas, and the gt decision and answer. Only the decision and answer are in the loss (the
listing does not describe the drill's blank image and must not be learned), so a drill teaches "read the listed
numbers, name the winner, copy its numbers", never what a scene looks like.

The drill's semantics are the world's (``segzero.worlds.rules``) applied to the listed numbers: size = the listed
area, clear when the winner's is at least ``area_ratio`` x the runner-up's; an extreme ("leftmost") must win by
``margin_frac * side`` both by box centre and by the box edge it looks at (left x1, top y1, right x2, bottom y2).
Unclear draws are redrawn, as the world never emits an unclear query.

Measured (``benchmarks/shapes_decision_probe.md``): 1000 steps from the shipped model with half the rows drills
lifted its pick on drills from chance (27%) to 41% and lowered it on val superlative scenes (65% -> 61%), so the
recipes leave ``sft_drill_fraction`` at 0. Drills from the start of a fresh model (``sft_warmup_drills``: a
quarter of the perception warm-up rows, then a fifth of the gt-answer rows) did no better: drills 41%, val
superlative scenes 62% after the gt-answer stage, 72.9% right on 512 dev scenes (``benchmarks/shapes_grounding.md``).

Usage (normally through ``segzero train`` with ``sft_drill_fraction`` > 0)::

    from segzero.train.drills import drill_row
    row = drill_row(np.random.default_rng(0), config=ShapesConfig(size=128))
    row["query"], row["completion"]    # 'the smallest shape', '<think>I see 1 ... The query means ...'
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from segzero.train.perception import DECISION, DRILL_LISTINGS, SeenShape, format_completion
from segzero.worlds.queries import TEMPLATES, render_text, wordings
from segzero.worlds.rules import EXTREMES
from segzero.worlds.scene import ShapesConfig

DRILL_TEMPLATES: tuple[str, ...] = (
    "largest",
    "smallest",
    "largest_colour",
    "smallest_colour",
    "extreme",
    "extreme_kind",
)
# template -> larger wins (size templates compare the listed area)
_SIZE = {"largest": True, "smallest": False, "largest_colour": True, "smallest_colour": False}
# direction -> (box edge index, centre axis, larger wins)
_DIRECTIONS = {"left": (0, 0, False), "top": (1, 1, False), "right": (2, 0, True), "bottom": (3, 1, True)}


def _made_up_shape(rng: np.random.Generator, index: int, config: ShapesConfig, *, max_area: int) -> SeenShape:
    """One listed shape with a random colour and kind of ``config``, a box inside the frame at least 1/8 of the
    side wide and high, two points inside the box, and an area in [1/10, 1] x ``max_area`` per mille."""
    w, h = config.wh
    lo = max(2, config.side // 8)
    bw, bh = (int(rng.integers(lo, max(lo + 1, d // 2))) for d in (w, h))
    x1, y1 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
    box = (x1, y1, x1 + bw - 1, y1 + bh - 1)
    points = tuple((int(rng.integers(box[0], box[2] + 1)), int(rng.integers(box[1], box[3] + 1))) for _ in range(2))
    colour, kind = (
        config.colours[int(rng.integers(len(config.colours)))],
        config.kinds[int(rng.integers(len(config.kinds)))],
    )
    area = int(rng.integers(max(1, max_area // 10), max_area + 1))
    return SeenShape(index, colour, kind, box, points, area)


def drill_answer(template: str, params: dict, shapes: list[SeenShape], config: ShapesConfig) -> int | None:
    """Position in ``shapes`` of the one shape a superlative query means, read from the listed numbers; None when
    no shape qualifies or the winner is unclear (see the module docstring).

    >>> s = [SeenShape(i, "red", "circle", (10 * i, 0, 10 * i + 9, 9), ((0, 0), (1, 1)), a)
    ...      for i, a in enumerate([40, 60, 20, 45])]
    >>> cfg = ShapesConfig(size=128)
    >>> drill_answer("largest", {}, s[:3], cfg), drill_answer("smallest", {}, s[:3], cfg)
    (1, 2)
    >>> drill_answer("largest", {}, [s[0], s[3]], cfg) is None   # 45 < 1.25 x 40: unclear
    True
    >>> drill_answer("extreme", {"direction": "right"}, s, cfg)   # box right edges 9, 19, 29, 39
    3
    """
    keep = [
        k
        for k, s in enumerate(shapes)
        if s.colour == params.get("colour", s.colour) and s.kind == params.get("kind", s.kind)
    ]
    if not keep:
        return None
    if template in _SIZE:
        larger = _SIZE[template]
        order = sorted(keep, key=lambda k: shapes[k].area, reverse=larger)
        if len(order) > 1:
            best, second = shapes[order[0]].area, shapes[order[1]].area
            if not (best >= config.area_ratio * second if larger else second >= config.area_ratio * best):
                return None
        return order[0]
    edge, axis, larger = _DIRECTIONS[params["direction"]]
    margin = config.margin_frac * config.side
    winners = set()
    for value in (lambda s: s.box[edge], lambda s: (s.box[axis] + s.box[axis + 2]) / 2):
        order = sorted(keep, key=lambda k: value(shapes[k]), reverse=larger)
        if len(order) > 1 and abs(value(shapes[order[0]]) - value(shapes[order[1]])) <= margin:
            return None
        winners.add(order[0])
    return winners.pop() if len(winners) == 1 else None


def drill_row(
    rng: np.random.Generator,
    *,
    config: ShapesConfig,
    max_shapes: int = 5,
    max_area: int = 150,
    tries: int = 100,
    listing: str = "left_to_right",
) -> dict:
    """One drill: ``{"image": blank PIL at the frame, "query": str, "completion": str, "supervise_from":
    DECISION}``; a superlative template of ``DRILL_TEMPLATES`` (uniform), 2..``max_shapes`` made-up shapes listed
    left to right as the warm-up lists a scene (``listing``, one of ``DRILL_LISTINGS``: ``"area_first"`` puts each
    area before its name, as ``sft_listing: area_first`` does), the query's wording drawn from the train wordings,
    redrawn until clear (``tries`` draws, then ValueError)."""
    if listing not in DRILL_LISTINGS:
        raise ValueError(f"drills are listed one of {DRILL_LISTINGS} ways, got {listing!r}")
    templates = {t.name: t for t in TEMPLATES if t.name in DRILL_TEMPLATES}
    for _ in range(tries):
        n = int(rng.integers(2, max_shapes + 1))
        shapes = [_made_up_shape(rng, i, config, max_area=max_area) for i in range(n)]
        shapes.sort(key=lambda s: (s.box[0] + s.box[2], s.box[1] + s.box[3], s.index))
        name = DRILL_TEMPLATES[int(rng.integers(len(DRILL_TEMPLATES)))]
        pick_from = shapes[int(rng.integers(n))]  # the colour / kind slot names a listed shape's
        params = {}
        if name.endswith("_colour"):
            params["colour"] = pick_from.colour
        if name.startswith("extreme"):
            params["direction"] = list(EXTREMES)[int(rng.integers(len(EXTREMES)))]
        if name == "extreme_kind":
            params["kind"] = pick_from.kind
        pick = drill_answer(name, params, shapes, config)
        if pick is None:
            continue
        options = wordings(templates[name], "train")
        text = render_text(options[int(rng.integers(len(options)))][1], params, [])
        image = Image.new("RGB", config.wh, tuple(config.background))
        return {
            "image": image,
            "query": text,
            "completion": format_completion(shapes, pick, listing=listing),
            "supervise_from": DECISION,
        }
    raise ValueError(f"no clear drill in {tries} draws (frame {config.wh}, up to {max_shapes} shapes)")


__all__ = ["DRILL_TEMPLATES", "drill_answer", "drill_row"]
