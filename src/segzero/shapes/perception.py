"""The shapes model's reasoning format: every shape it sees, listed, then a decision and a Seg-Zero answer.

A target (and what a trained shapes model writes) lists every visible shape of the scene left to right, each with
its colour and kind, its inclusive box ``[x1,y1,x2,y2]``, two points ``(x,y)`` inside it (the same box and points
as the gt of that shape, ``segzero.points.mask_to_object``) and its area (visible pixels per thousand pixels of the
image, the same at every frame), then names one listed shape and copies its numbers into the answer::

    <think>I see 1 purple triangle [20,65,66,110] (43,92) (35,100) area 61; 2 red square [45,13,82,50]
    (63,31) (74,42) area 83. The query means the red square, 2.</think><answer>{"bbox": [45,13,82,50],
    "points_1": [63,31], "points_2": [74,42]}</answer>

The decision names the shape first ("the red square"), then its number in the list (two shapes may share a name).
Coordinates are integer pixels of the model frame (the scene is drawn at the frame).

``choice`` says which shape a target picks:

- ``"random"`` (the perception warm-up): a shape drawn uniformly, independently of the query: the query is never
  supervised, so the model learns to see and copy, not what a query means (right 1 time in 2-3);
- ``"gt"``: the shape the query means (the gt-answer stage). A query that means no shape of the scene decides
  ``The query means nothing.`` and answers ``[]``, the "nothing here" answer ``segzero eval`` scores as N-acc.

``listing="ranked"``: a ``"gt"`` target of a superlative query ("the largest shape", "the topmost circle") ranks
its candidates in the order it asks about, the winner first, in a sentence right before the decision
(``ranking``)::

    ... area 83. Ranked largest first: 2 red square, 1 purple triangle. The query means the red square, 2.

What each design measured, and the designs that were tried and removed: ``docs/shapes_recipe.md``.

Usage::

    from segzero.shapes.perception import perception_completion
    text = perception_completion(make_sample(0, config=ShapesConfig(size=128)), choice="gt")
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from segzero.answer import segzero_answer_json
from segzero.points import mask_to_object

CHOICES: tuple[str, ...] = ("random", "gt")
"""Which shape a target picks (module docstring)."""
LISTINGS: tuple[str, ...] = ("left_to_right", "ranked")
"""How a target states its decision: the listing alone, or a superlative's ranking before it (``ranking``)."""
# Where the ranking of ``listing="ranked"`` starts (part of the decision).
RANKED = "Ranked"
# superlative template -> which listed number it compares ("area" or the box edge 0-3) and whether larger wins; the
# direction of "extreme" templates comes from the query's params
_SIZE_TEMPLATES = {"largest": True, "largest_colour": True, "smallest": False, "smallest_colour": False}
_EDGES = {"left": (0, False), "top": (1, False), "right": (2, True), "bottom": (3, True)}
# The sentence that names the picked shape: "The query means the red square, 2." (see ``named_shape``); DECISION is
# where it starts (the reasoning's conclusion, after the listing).
DECISION = "The query means"
PER_MILLE = 1000  # SeenShape.area: visible pixels per this many pixels of the image
_MEANS = DECISION + " the {colour} {kind}, {index}."
# The decision of a query that means no listed shape (a "nothing here" row); its answer is the empty list.
NOTHING = DECISION + " nothing."
NO_ANSWER = "[]"
_DECISION_RE = re.compile(r"The query means (?:the ([a-z]+) ([a-z]+), (\d+)|(nothing))\.")
_LISTED_RE = re.compile(r"(\d+) ([a-z]+) ([a-z]+) \[(\d+),(\d+),(\d+),(\d+)\]")


@dataclass(frozen=True)
class SeenShape:
    """One listed shape: ``colour``, ``kind``, inclusive ``box`` (x1, y1, x2, y2) and two ``points`` (x, y), ints
    in the model frame (``segzero.points.mask_to_object`` of its visible mask); ``area``: visible pixels per
    thousand pixels of the image (int); ``index`` in the scene's order."""

    index: int
    colour: str
    kind: str
    box: tuple[int, int, int, int]
    points: tuple[tuple[int, int], tuple[int, int]]
    area: int

    def listing(self) -> str:
        """``purple triangle [20,65,66,110] (43,92) (35,100) area 61``"""
        (a, b), (c, d) = self.points
        return f"{self.colour} {self.kind} [{','.join(map(str, self.box))}] ({a},{b}) ({c},{d}) area {self.area}"

    def answer(self) -> str:
        """The Seg-Zero answer JSON of this shape: ``{"bbox": [..], "points_1": [..], "points_2": [..]}``."""
        return segzero_answer_json(self.box, self.points)


def seen_shapes(sample: dict) -> list[SeenShape]:
    """The shapes of a ``segzero.shapes.world.make_sample`` sample, left to right (box centre x, then y)."""
    out = []
    for i, (facts, mask) in enumerate(zip(sample["shapes"], sample["shape_masks"], strict=True)):
        obj = mask_to_object(mask)
        if obj is None:  # a fully hidden shape is not part of the scene the model can see
            continue
        box = tuple(int(round(v)) for v in obj.box)
        (p1, p2) = (tuple(int(round(v)) for v in p) for p in obj.points[:2])
        area = int(round(PER_MILLE * float(mask.sum()) / mask.size))
        out.append(SeenShape(i, facts["colour"], facts["kind"], box, (p1, p2), area))
    return sorted(out, key=lambda s: (s.box[0] + s.box[2], s.box[1] + s.box[3], s.index))


def _criterion(sample: dict) -> tuple[Callable[[SeenShape], int], bool, str] | None:
    """What a superlative ``sample`` compares: (the listed number of a shape, whether the larger one wins, the
    superlative's word): the area for the size templates ("largest" / "smallest"), the box edge the direction looks
    at (left x1, top y1, right x2, bottom y2) for the extreme templates ("leftmost", ...); None for any other query."""
    from segzero.shapes.rules import EXTREMES

    template, params = sample.get("template"), sample.get("params") or {}
    if template in _SIZE_TEMPLATES:
        larger = _SIZE_TEMPLATES[template]
        return (lambda s: s.area), larger, "largest" if larger else "smallest"
    if template in ("extreme", "extreme_kind"):
        edge, larger = _EDGES[params["direction"]]
        return (lambda s: s.box[edge]), larger, EXTREMES[params["direction"]]
    return None


def _candidate(sample: dict, shape: SeenShape) -> bool:
    """Whether ``shape`` has the colour and kind a superlative ``sample``'s query restricts to (if any)."""
    params = sample.get("params") or {}
    return shape.colour == params.get("colour", shape.colour) and shape.kind == params.get("kind", shape.kind)


def _ordered(sample: dict, shapes: list[SeenShape]) -> tuple[str, list[SeenShape]] | None:
    """``(phrase, shapes re-ordered)`` for a superlative ``sample``: its shapes sorted by what the query compares,
    the winner first (area for the size templates; for the extreme templates the box edge the direction looks at,
    ), ties kept left to right; None for any other query, or when the first listed
    candidate (shape of the query's colour / kind) is not the gt shape (the world decides on whole silhouettes).

    >>> s = [SeenShape(i, c, "circle", (10 * i, 9 - i, 10 * i + 5, 14 - i), ((0, 0), (1, 1)), a)
    ...      for i, (c, a) in enumerate([("red", 45), ("blue", 30), ("red", 71)])]
    >>> phrase, order = _ordered({"template": "largest", "params": {}, "answers": [2]}, s)
    >>> phrase, [t.area for t in order]
    ('largest first', [71, 45, 30])
    >>> phrase, order = _ordered({"template": "extreme", "params": {"direction": "top"}, "answers": [2]}, s)
    >>> phrase, [t.index for t in order]
    ('from the top', [2, 1, 0])
    >>> _ordered({"template": "smallest_colour", "params": {"colour": "red"}, "answers": [2]}, s) is None
    True
    """
    criterion = _criterion(sample)
    if criterion is None:
        return None
    value, larger, _ = criterion
    if sample["template"] in _SIZE_TEMPLATES:
        phrase = "largest first" if larger else "smallest first"
    else:
        phrase = f"from the {sample['params']['direction']}"
    order = sorted(shapes, key=lambda s: -value(s) if larger else value(s))  # stable: ties stay left to right
    first = next((s for s in order if _candidate(sample, s)), None)
    if first is None or [first.index] != list(sample.get("answers", [])):
        return None
    return phrase, order


def ranking(sample: dict, shapes: list[SeenShape]) -> str | None:
    """The ranking sentence of a superlative ``sample`` for ``listing="ranked"``: its candidates (the listed shapes
    of the query's colour / kind) in the order it asks about, the winner first, each as its listed number and name;
    None where ``_ordered`` is None (not a superlative, or the listed values disagree with the world's answer).
    The decision that follows is then a copy of the entry right after the colon.

    >>> s = [SeenShape(i, c, "circle", (10 * i, 9 - i, 10 * i + 5, 14 - i), ((0, 0), (1, 1)), a)
    ...      for i, (c, a) in enumerate([("red", 45), ("blue", 30), ("red", 71)])]
    >>> ranking({"template": "largest", "params": {}, "answers": [2]}, s)
    'Ranked largest first: 3 red circle, 1 red circle, 2 blue circle.'
    >>> ranking({"template": "smallest_colour", "params": {"colour": "red"}, "answers": [0]}, s)
    'Ranked smallest first: 1 red circle, 3 red circle.'
    >>> ranking({"template": "name", "params": {}, "answers": [0]}, s) is None
    True
    """
    ordered = _ordered(sample, shapes)
    if ordered is None:
        return None
    phrase, order = ordered
    entries = _entries((shapes.index(s) + 1, s) for s in order if _candidate(sample, s))
    return f"{RANKED} {phrase}: {entries}."


def _entries(numbered) -> str:
    """An order's entries, each a shape's listed number and name: ``3 red circle, 1 blue square``."""
    return ", ".join(f"{k} {s.colour} {s.kind}" for k, s in numbered)


def perception_completion(
    sample: dict, *, choice: str = "random", rng: np.random.Generator | None = None, listing: str = "left_to_right"
) -> str:
    """The target of one sample (see the module docstring); ``rng`` draws the ``"random"`` pick; ``listing``
    (``LISTINGS``) ``"ranked"``: a ``"gt"`` superlative target ranks its candidates before the decision."""
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
    if listing not in LISTINGS:
        raise ValueError(f"listing must be one of {LISTINGS}, got {listing!r}")
    shapes = seen_shapes(sample)
    if choice == "gt" and not sample["answers"]:
        return format_completion(shapes, None)  # "nothing", []
    if choice == "gt":
        (want,) = sample["answers"]
        pick = next(k for k, s in enumerate(shapes) if s.index == want)
    else:
        pick = int((rng or np.random.default_rng()).integers(len(shapes)))
    chain = ranking(sample, shapes) if choice == "gt" and listing == "ranked" else None
    return format_completion(shapes, pick, chain=chain)


def format_completion(shapes: list[SeenShape], pick: int | None, *, chain: str | None = None) -> str:
    """The target text: ``shapes`` listed in order (1-based), the ``chain`` sentence where given (a ranking), the
    decision naming ``shapes[pick]``, and its Seg-Zero answer; ``pick=None``: the query means none of them ("The
    query means nothing.", answer ``[]``, the "nothing here" answer of ``segzero.parsing``).

    >>> s = [SeenShape(0, "red", "circle", (1, 2, 3, 4), ((2, 3), (2, 3)), 9)]
    >>> format_completion(s, 0)  # doctest: +NORMALIZE_WHITESPACE
    '<think>I see 1 red circle [1,2,3,4] (2,3) (2,3) area 9. The query means the red circle,
    1.</think><answer>{"bbox": [1,2,3,4], "points_1": [2,3], "points_2": [2,3]}</answer>'
    >>> format_completion(s, None)
    '<think>I see 1 red circle [1,2,3,4] (2,3) (2,3) area 9. The query means nothing.</think><answer>[]</answer>'
    """
    think = "I see " + "; ".join(f"{k + 1} {s.listing()}" for k, s in enumerate(shapes)) + "."
    if pick is None:
        return f"<think>{think} {NOTHING}</think><answer>{NO_ANSWER}</answer>"
    chosen = shapes[pick]
    means = _MEANS.format(colour=chosen.colour, kind=chosen.kind, index=pick + 1)
    if chain:
        means = f"{chain} {means}"
    return f"<think>{think} {means}</think><answer>{chosen.answer()}</answer>"


def read_listing(think: str | None) -> dict[int, tuple[str, str, tuple[int, int, int, int]]]:
    """``{number: (colour, kind, box)}`` of the shapes a reasoning lists (the first entry of each number).

    >>> read_listing("I see 1 red circle [1,2,3,4] (2,3) (2,3) area 9; 2 blue star [5,6,7,8] (6,7) (6,7) area 3.")
    {1: ('red', 'circle', (1, 2, 3, 4)), 2: ('blue', 'star', (5, 6, 7, 8))}
    """
    listed: dict[int, tuple[str, str, tuple[int, int, int, int]]] = {}
    for m in _LISTED_RE.finditer(think or ""):
        n, colour, kind, *box = m.groups()
        listed.setdefault(int(n), (colour, kind, tuple(int(v) for v in box)))  # type: ignore[arg-type]
    return listed


def read_decision(think: str | None) -> tuple[str, str, int] | str | None:
    """The reasoning's last decision: ``(colour, kind, number)``, ``"nothing"`` for "The query means nothing.",
    or None when it decides nothing.

    >>> read_decision("... The query means the red circle, 1. The query means the blue star, 2.")
    ('blue', 'star', 2)
    >>> read_decision("The query means nothing."), read_decision("I look for the red circle.")
    ('nothing', None)
    """
    found = _DECISION_RE.findall(think or "")
    if not found:
        return None
    colour, kind, number, nothing = found[-1]
    return "nothing" if nothing else (colour, kind, int(number))


def named_shape(think: str | None) -> tuple[str, str] | None:
    """``(colour, kind)`` that a reasoning names as its answer (its last decision); None when it names none.

    >>> named_shape("I see 1 red circle [1,2,3,4] (2,3) (2,3) area 9. The query means the red circle, 1.")
    ('red', 'circle')
    >>> named_shape("I look for the red circle.") is None
    True
    """
    decided = read_decision(think)
    return decided[:2] if isinstance(decided, tuple) else None
