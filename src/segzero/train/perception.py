"""The perception warm-up of the shapes recipe: teach a from-scratch reasoner to *see* before GRPO teaches it to *reason*.

Why: Seg-Zero starts GRPO from Qwen2.5-VL, which already names and boxes the objects of an image from its
pretraining; RL then only has to learn which object a query means. A model built from scratch has neither. The
perception warm-up supplies the first part and nothing more: a supervised, teacher-forced fine-tune whose target
lists every shape of the scene, left to right, with its box, two points (the same box and points as the gt of
that shape) and its area, then names one listed shape and copies its numbers into a Seg-Zero answer::

    <think>I see 1 purple triangle [20,65,66,110] (43,92) (35,100) area 61; 2 red square [45,13,82,50]
    (63,31) (74,42) area 83. The query means the red square, 2.</think><answer>{"bbox": [45,13,82,50],
    "points_1": [63,31], "points_2": [74,42]}</answer>

With ``compare=True`` (``sft_compare``), the gt target of a superlative query (the largest / smallest [colour]
shape, the leftmost / rightmost / topmost / bottommost [kind]) compares before it decides, one pair at a time,
keeping the running winner::

    ... area 71. Compare largest: 1 (45) or 2 (44): 1; 1 (45) or 3 (71): 3. The query means the red circle, 3.

Each step copies two listed numbers (the area, or the box edge the direction looks at: left x1, top y1, right x2,
bottom y2) and names the winner: a comparison of two adjacent numbers, where picking the largest of three numbers
spread over the listing in one step is what a small model fails at (chance level on "the largest shape"). The
candidates are the listed shapes of the query's colour or kind. The chain is written only where it ends on the gt
shape (the world's rules use whole silhouettes with a margin; the listing shows visible pixels, which an occluding
shape can change) and never in the ``"random"`` warm-up. Measured on the shapes model (2500 steps from the shipped
one): the model writes the chain and copies the numbers, but does not learn to compare two numbers, so its
superlatives got worse (72% -> 69% on val); the option stays off in the recipes.

With ``winner_first=True`` (``sft_winner``), the gt target of a superlative query states what it compares and the
winning candidate's listed number before it decides::

    ... area 71. Pick by largest area: 71. The query means the red circle, 3.

The idea: the winning number is a copy of the largest (or smallest) listed number among the candidates (one
attention head with a score that grows with the value, then a copy of the token it lands on), and the decision then
finds that number in the listing and copies the name next to it: two simple steps instead of naming the largest of
three numbers spread over the listing in one. Written only where the winning number is unique among the candidates
and is the gt shape's. Measured from the shipped model (750 of 1500
steps, superlatives 3 in 5): the sentence is written, but its number is a listed one in 33 of 253 dev completions
(a typical value rather than a copy: "Pick by largest area: 124" over areas 83 and 46), and dev right fell (80% ->
75%); the option stays off in the recipes.

With ``listing="query"`` (``sft_listing``), a superlative query's shapes are listed in the order it asks about,
the winner first, and the order is named ("I see, largest first: 1 ...", "I see, from the top: 1 ..."): the decision
is then the first listed candidate, and the comparison moves into the listing, made from the image. Measured from
the shipped model (1500 steps): the model writes the phrase and keeps listing left to right (the top-to-bottom
listings are in order 10 times in 28), and right falls (80% -> 71% on 512 val scenes); the option stays off.

With ``listing="orders"`` (``sft_listing``), every target writes the scene's two orders after the left-to-right
listing, weighed as the decision (``scene_orders``)::

    ... area 83. From the top: 2 red square, 1 purple triangle. Largest first: 2 red square, 1 purple triangle.
    The query means the red square, 2.

so every superlative's answer is the first or last entry (among its candidates) of one order, and the sort is
supervised on every row. Measured from the model shipped before the ranked one (2000 steps): the orders are
written exactly right in 437 of 512 dev scenes, but the decision keeps its own comparison and ignores them (the
largest shape is the first "Largest first" entry in 11 of 28 decisions); right fell (80% -> 73%); the option
stays off in the recipes.

With ``listing="ranked"`` (``sft_listing``; the shipped model's last stage), the gt target of a superlative query
ranks its candidates in the order the query asks about, the winner first, right before the decision (``ranking``)::

    ... area 83. Ranked largest first: 2 red square, 1 purple triangle. The query means the red square, 2.

The sort gets a sentence of its own (written from the image and the listing, as the scene orders above are), and the
decision is a copy of the entry right after the colon, which the model learns at once where it would not read the
first entry of an order written for every query. Measured from the model shipped before it (2000 steps): the
decision is the first ranked entry in 248 of 255 dev superlatives, the ranking is exactly right in 169, and dev
right rose from 80% to 87% ("the largest shape" 17 -> 26 of 28, "the smallest shape" 14 -> 28 of 32).

The decision names the shape first ("the red square"), then its number in the list (two shapes may share a name):
naming is a copy of the query's words for naming queries, and the number and the answer's numbers then follow the
listed name (what a small transformer learns first: find the earlier occurrence, copy what is next to it). The area (visible pixels per thousand pixels of the image,
so the same at every frame) makes "the largest shape" a comparison of one number per shape.

``choice`` says which shape the warm-up target picks:

- ``"random"`` (the recipe's warm-up): a shape drawn uniformly, independently of the query: the query is never
  supervised, so the warm-up model sees and copies but does not reason (it is right 1 time in 2-3). GRPO then has
  to learn the choice from the rewards alone, which is the part the paper trains.
- ``"gt"``: the shape the query means (supervised fine-tuning on gt answers; the SFT arm of the comparison). A
  query that means no shape of the scene ("the red circle" where there is none; rows of ``sft_no_target``) decides
  ``The query means nothing.`` and answers ``[]``, the "nothing here" answer that ``segzero eval`` scores with
  GRES's N-acc.

Coordinates are integer pixels of the model frame (the scene is drawn at the frame). Each row is drawn on the fly
from the shapes world (``make_sample(index)``), so thousands of steps never repeat a scene.

Usage (normally through ``segzero train`` with ``sft_target: perception``)::

    from segzero.train.perception import perception_completion
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
# How the shapes are listed (``sft_listing``): always left to right, or in the order a superlative query asks about
# (``listing_order``: "largest first", "from the top", ...), so that its answer is the first listed candidate, or
# left to right with each shape's area before its name ("1 area 61 purple triangle [..] ..."): a shape's name tokens
# then follow its area, so a head that finds the largest area lands next to the name it must copy; or left to right
# followed by the scene's orders ("From the top: 2 blue square, 1 red circle. Largest first: ..."; ``scene_orders``),
# so that every superlative's answer is the first or last entry of one order; or left to right, then (gt targets)
# a superlative's candidates ranked in the order it asks about, the winner first, right before the decision
# ("Ranked largest first: 3 red circle, 1 blue square."; see ``ranking``).
LISTINGS: tuple[str, ...] = ("left_to_right", "query", "area_first", "orders", "ranked")
# The listings a decision drill's made-up shapes can take (``segzero.train.drills``): left to right, name or area
# first; a drill has no query order or scene orders to write.
DRILL_LISTINGS: tuple[str, ...] = ("left_to_right", "area_first")
# Where the orders sentence of ``listing="orders"`` starts (part of the decision, as ``COMPARE`` is).
ORDERS = "From the top:"
# Where the ranking of ``listing="ranked"`` starts (part of the decision).
RANKED = "Ranked"
# The comparison chain of a superlative query: "Compare largest: 1 (45) or 2 (44): 1; ..." (see ``comparison``).
COMPARE = "Compare"
# The winner sentence of a superlative query: "Pick by largest area: 71." (see ``winner``).
WINNER = "Pick by"
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
_MEANS_RE = re.compile(r"The query means the (\w+) (\w+), \d+\.")


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

    def listing(self, *, area_first: bool = False) -> str:
        """``purple triangle [20,65,66,110] (43,92) (35,100) area 61``; ``area_first``:
        ``area 61 purple triangle [20,65,66,110] (43,92) (35,100)``"""
        (a, b), (c, d) = self.points
        seen = f"{self.colour} {self.kind} [{','.join(map(str, self.box))}] ({a},{b}) ({c},{d})"
        return f"area {self.area} {seen}" if area_first else f"{seen} area {self.area}"

    def answer(self) -> str:
        """The Seg-Zero answer JSON of this shape: ``{"bbox": [..], "points_1": [..], "points_2": [..]}``."""
        return segzero_answer_json(self.box, self.points)


def seen_shapes(sample: dict) -> list[SeenShape]:
    """The shapes of a ``segzero.worlds.shapes.make_sample`` sample, left to right (box centre x, then y)."""
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


def comparison(sample: dict, shapes: list[SeenShape], pick: int) -> str | None:
    """The comparison chain of a superlative ``sample`` over its listed ``shapes`` (``seen_shapes``), or None when
    the query is not a superlative, two compared numbers tie, or the chain does not end on ``pick`` (the gt shape's
    position in ``shapes``). Numbers in the chain are 1-based list positions.

    >>> s = [SeenShape(i, c, "circle", (10 * i, 0, 10 * i + 5, 5), ((0, 0), (1, 1)), a)
    ...      for i, (c, a) in enumerate([("red", 45), ("blue", 44), ("red", 71)])]
    >>> comparison({"template": "largest", "params": {}}, s, 2)
    'Compare largest: 1 (45) or 2 (44): 1; 1 (45) or 3 (71): 3.'
    >>> comparison({"template": "smallest_colour", "params": {"colour": "blue"}}, s, 1)
    'Compare smallest: only 2.'
    >>> comparison({"template": "extreme", "params": {"direction": "right"}}, s, 2)
    'Compare rightmost: 1 (5) or 2 (15): 2; 2 (15) or 3 (25): 3.'
    >>> comparison({"template": "name", "params": {}}, s, 0) is None
    True
    """
    criterion = _criterion(sample)
    if criterion is None:
        return None
    value, larger, word = criterion
    keep = [k for k, s in enumerate(shapes) if _candidate(sample, s)]
    if not keep:
        return None
    best, steps = keep[0], []
    for k in keep[1:]:
        a, b = value(shapes[best]), value(shapes[k])
        if a == b:
            return None
        winner = k if (b > a) == larger else best
        steps.append(f"{best + 1} ({a}) or {k + 1} ({b}): {winner + 1}")
        best = winner
    if best != pick:
        return None
    return f"{COMPARE} {word}: " + ("; ".join(steps) if steps else f"only {best + 1}") + "."


def winner(sample: dict, shapes: list[SeenShape], pick: int) -> str | None:
    """The winner sentence of a superlative ``sample`` over its listed ``shapes``: what the query compares and the
    winning candidate's listed number ("Pick by largest area: 71.", "Pick by topmost edge: 23."), or None when the
    query is not a superlative, the winning number is shared by another candidate, or the winner is not ``pick``
    (the gt shape's position in ``shapes``).

    >>> s = [SeenShape(i, c, "circle", (10 * i, 0, 10 * i + 5, 5), ((0, 0), (1, 1)), a)
    ...      for i, (c, a) in enumerate([("red", 45), ("blue", 44), ("red", 71)])]
    >>> winner({"template": "largest", "params": {}}, s, 2)
    'Pick by largest area: 71.'
    >>> winner({"template": "smallest_colour", "params": {"colour": "red"}}, s, 0)
    'Pick by smallest area: 45.'
    >>> winner({"template": "extreme", "params": {"direction": "right"}}, s, 2)
    'Pick by rightmost edge: 25.'
    >>> winner({"template": "largest", "params": {}}, s, 0) is None  # the numbers say 3, the gt says 1
    True
    """
    criterion = _criterion(sample)
    if criterion is None:
        return None
    value, larger, word = criterion
    values = [value(s) for s in shapes if _candidate(sample, s)]
    if not values:
        return None
    best = max(values) if larger else min(values)
    if values.count(best) > 1 or not _candidate(sample, shapes[pick]) or value(shapes[pick]) != best:
        return None
    return f"{WINNER} {word} {'area' if sample['template'] in _SIZE_TEMPLATES else 'edge'}: {best}."


def _criterion(sample: dict) -> tuple[Callable[[SeenShape], int], bool, str] | None:
    """What a superlative ``sample`` compares: (the listed number of a shape, whether the larger one wins, the
    superlative's word): the area for the size templates ("largest" / "smallest"), the box edge the direction looks
    at (left x1, top y1, right x2, bottom y2) for the extreme templates ("leftmost", ...); None for any other query."""
    from segzero.worlds.rules import EXTREMES

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


def listing_order(sample: dict, shapes: list[SeenShape]) -> tuple[str, list[SeenShape]] | None:
    """``(phrase, shapes re-ordered)`` for a superlative ``sample``: its shapes sorted by what the query compares,
    the winner first (area for the size templates; for the extreme templates the box edge the direction looks at,
    as ``comparison`` does), ties kept left to right; None for any other query, or when the first listed
    candidate (shape of the query's colour / kind) is not the gt shape (the world decides on whole silhouettes).

    >>> s = [SeenShape(i, c, "circle", (10 * i, 9 - i, 10 * i + 5, 14 - i), ((0, 0), (1, 1)), a)
    ...      for i, (c, a) in enumerate([("red", 45), ("blue", 30), ("red", 71)])]
    >>> phrase, order = listing_order({"template": "largest", "params": {}, "answers": [2]}, s)
    >>> phrase, [t.area for t in order]
    ('largest first', [71, 45, 30])
    >>> phrase, order = listing_order({"template": "extreme", "params": {"direction": "top"}, "answers": [2]}, s)
    >>> phrase, [t.index for t in order]
    ('from the top', [2, 1, 0])
    >>> listing_order({"template": "smallest_colour", "params": {"colour": "red"}, "answers": [2]}, s) is None
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
    None where ``listing_order`` is None (not a superlative, or the listed values disagree with the world's answer).
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
    ordered = listing_order(sample, shapes)
    if ordered is None:
        return None
    phrase, order = ordered
    entries = _entries((shapes.index(s) + 1, s) for s in order if _candidate(sample, s))
    return f"{RANKED} {phrase}: {entries}."


def _entries(numbered) -> str:
    """An order's entries, each a shape's listed number and name: ``3 red circle, 1 blue square``."""
    return ", ".join(f"{k} {s.colour} {s.kind}" for k, s in numbered)


def scene_orders(shapes: list[SeenShape]) -> str:
    """The scene's two orders for ``listing="orders"``, each entry a listed number and name: top to bottom by
    visible box centre y, then largest first by listed area (ties keep listing order). Every superlative is then the
    first or last entry of one order (its candidates' first or last, for "the topmost circle"), written for every
    query, so each row supervises two sorts made from the image and the listing.

    >>> s = [SeenShape(i, c, "circle", (10 * i, 9 - 4 * i, 10 * i + 5, 14 - 4 * i), ((0, 0), (1, 1)), a)
    ...      for i, (c, a) in enumerate([("red", 45), ("blue", 30), ("red", 71)])]
    >>> for line in scene_orders(s).split(". "): print(line)
    From the top: 3 red circle, 2 blue circle, 1 red circle
    Largest first: 3 red circle, 1 red circle, 2 blue circle.
    """
    numbered = list(enumerate(shapes, start=1))
    top = sorted(numbered, key=lambda ks: ks[1].box[1] + ks[1].box[3])
    large = sorted(numbered, key=lambda ks: -ks[1].area)
    return f"{ORDERS} {_entries(top)}. Largest first: {_entries(large)}."


def perception_completion(
    sample: dict,
    *,
    choice: str = "random",
    rng: np.random.Generator | None = None,
    compare: bool = False,
    listing: str = "left_to_right",
    winner_first: bool = False,
) -> str:
    """The warm-up target of one sample (see the module docstring); ``rng`` draws the ``"random"`` pick;
    ``compare``: a ``"gt"`` target of a superlative query compares before it decides (``comparison``);
    ``winner_first``: a ``"gt"`` target of a superlative query states the winning number before it decides
    (``winner``; not with ``compare``);
    ``listing="query"``: a superlative query's shapes are listed in the order it asks about (``listing_order``);
    ``listing="area_first"``: left to right, each shape's area before its name; ``listing="orders"``: left to
    right, then the scene's orders (``scene_orders``) before the decision; ``listing="ranked"``: left to right, then
    a ``"gt"`` superlative's ranking (``ranking``) before the decision."""
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
    if listing not in LISTINGS:
        raise ValueError(f"listing must be one of {LISTINGS}, got {listing!r}")
    if compare + winner_first + (listing == "ranked") > 1:
        raise ValueError(
            "compare, winner_first and a ranked listing are ways to state a superlative's decision: pick one"
        )
    shapes = seen_shapes(sample)
    phrase = None
    ordered = listing_order(sample, shapes) if listing == "query" else None
    if ordered is not None:
        phrase, shapes = ordered
    if choice == "gt" and not sample["answers"]:
        return format_completion(shapes, None, order=phrase, listing=listing)  # "nothing", []
    if choice == "gt":
        (want,) = sample["answers"]
        pick = next(k for k, s in enumerate(shapes) if s.index == want)
    else:
        pick = int((rng or np.random.default_rng()).integers(len(shapes)))
    chain = None
    if choice == "gt" and (compare or winner_first):
        chain = (comparison if compare else winner)(sample, shapes, pick)
    elif choice == "gt" and listing == "ranked":
        chain = ranking(sample, shapes)
    return format_completion(shapes, pick, chain=chain, order=phrase, listing=listing)


def format_completion(
    shapes: list[SeenShape],
    pick: int | None,
    *,
    chain: str | None = None,
    order: str | None = None,
    listing: str = "left_to_right",
) -> str:
    """The target text: ``shapes`` listed in order (1-based; ``order`` names an order other than left to right,
    "I see, largest first: 1 ..."), the comparison ``chain`` where given, the decision naming ``shapes[pick]``, and
    its Seg-Zero answer; ``listing`` (``LISTINGS``) ``"area_first"``: each listed shape's area before its name,
    ``"orders"``: the scene's orders after the listing (``scene_orders``), any other: as given (a query order or a
    ranking comes from the caller, as ``order`` and ``chain``); ``pick=None``: the query means none of them ("The
    query means nothing.", answer ``[]``, the "nothing here" answer of ``segzero.parsing``).

    >>> s = [SeenShape(0, "red", "circle", (1, 2, 3, 4), ((2, 3), (2, 3)), 9)]
    >>> format_completion(s, 0)  # doctest: +NORMALIZE_WHITESPACE
    '<think>I see 1 red circle [1,2,3,4] (2,3) (2,3) area 9. The query means the red circle,
    1.</think><answer>{"bbox": [1,2,3,4], "points_1": [2,3], "points_2": [2,3]}</answer>'
    >>> format_completion(s, None)
    '<think>I see 1 red circle [1,2,3,4] (2,3) (2,3) area 9. The query means nothing.</think><answer>[]</answer>'
    """
    area_first = listing == "area_first"
    listed = "; ".join(f"{k + 1} {s.listing(area_first=area_first)}" for k, s in enumerate(shapes))
    seen = f"I see, {order}: " if order else "I see "
    think = f"{seen}{listed}." + (f" {scene_orders(shapes)}" if listing == "orders" else "")
    if pick is None:
        return f"<think>{think} {NOTHING}</think><answer>{NO_ANSWER}</answer>"
    chosen = shapes[pick]
    means = _MEANS.format(colour=chosen.colour, kind=chosen.kind, index=pick + 1)
    if chain:
        means = f"{chain} {means}"
    return f"<think>{think} {means}</think><answer>{chosen.answer()}</answer>"


def named_shape(think: str | None) -> tuple[str, str] | None:
    """``(colour, kind)`` that a perception-style reasoning names as its answer (the last "The query means" line);
    None when it names none.

    >>> named_shape("I see 1 red circle [1,2,3,4] (2,3) (2,3) area 9. The query means the red circle, 1.")
    ('red', 'circle')
    >>> named_shape("I look for the red circle.") is None
    True
    """
    found = _MEANS_RE.findall(think or "")
    return found[-1] if found else None
