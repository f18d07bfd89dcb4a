"""VisionReasoner multi-object reward terms, as scalar functions of (completion, solution).

``think_format`` (0/1) + ``answer_format`` (0-2) + ``accuracy`` (0-3) + ``non_repeat`` (0/1); ``score`` adds
``total`` in [0, 7]. The prediction is the JSON between the first ``<answer>`` and the next ``</answer>``
(``json.loads``). ``solution`` is a JSON list of ``{"bbox_2d": [x1,y1,x2,y2], "point_2d": [x,y]}`` (str or list)
or any form ``segzero.parsing.parse_solution`` reads (an object's first point is its ``point_2d``). A malformed
completion never raises; malformed gt raises ``ValueError``.

Definitions where the reference code (EasyR1 ``vision_reasoner`` reward) is silent or crashes:

- ``answer_format`` of an empty list ``[]``: ``empty_list_score`` (default 2.0, a well-formed "nothing here");
  the reference averages over no items and gives 0. Items must hold *numbers* (the papers' wording), NaN/inf are not numbers;
  a non-dict item scores 0. The average is one division (well-formed items / items); the reference adds per-item
  fractions and can land an ulp above the maximum (2.0000000000000004 on 20 well-formed items).
- ``accuracy`` with no predicted and no gt objects: ``empty_score`` (default 3.0, full accuracy); the reference
  gives 0 (its numpy code fails on empty arrays). A predicted item whose ``bbox_2d`` is not 4 numbers or whose
  ``point_2d`` is not 2 numbers (or is missing) makes the accuracy 0, as a missing key does in the reference.
- ``non_repeat``: the completion is split on ``'.'``; pieces are stripped and empty pieces (from ``'...'``,
  ``'. .'``, a trailing ``'.'``) are dropped, as in the reference; the reward is 0 once ``repeat_limit`` (default
  2) pieces repeat an earlier piece, else 1. One repeated sentence is tolerated.

``score`` is the family's entry point (every term and the total, EasyR1's ``compute_score`` shape); ``TERMS`` maps
each term's name to its function, in the paper's order::

    >>> score(_ANSWER, _GT)
    {'think_format': 1.0, 'answer_format': 2.0, 'accuracy': 3.0, 'non_repeat': 1.0, 'total': 7.0}
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np

from segzero import geometry as geo
from segzero.answer import SegObject
from segzero.parsing import answer_block, number_list, parse_solution, text_of, think_format_ok

IOU_THRESHOLD = 0.5  # pair counts 1 when IoU is strictly greater
L1_THRESHOLD = 10.0  # pair counts 1 when mean box L1 (px) is strictly smaller
POINT_DISTANCE_THRESHOLD = 30.0  # pair counts 1 when point distance (px) is strictly smaller and in its own box
# The thresholds that are lengths in pixels of the 840 frame (keyword -> paper value); ``segzero.rewards.
# thresholds_for_frame`` scales them for answers in another frame. The IoU threshold is a ratio: the same in any.
PIXEL_THRESHOLDS = {"l1_threshold": L1_THRESHOLD, "point_threshold": POINT_DISTANCE_THRESHOLD}
MAX_OBJECTS = 120  # the reference truncates predictions and gt to this many objects before matching
REPEAT_LIMIT = 2  # non_repeat drops to 0 at this many repeated sentences
EMPTY_LIST_SCORE = 2.0  # answer_format of a well-formed empty list
EMPTY_SCORE = 3.0  # accuracy when both prediction and gt are empty
# the docstrings' examples: one gt and one answer that earns every term
_GT = '[{"bbox_2d": [10,100,200,210], "point_2d": [30,110]}]'
_ANSWER = '<think>one cup.</think><answer>[{"bbox_2d": [12,101,199,212], "point_2d": [31,112]}]</answer>'


@lru_cache(maxsize=8192)
def _gt_cached(solution: str) -> tuple[SegObject, ...]:
    return _gt_checked(parse_solution(solution))


def _gt_checked(objs: tuple[SegObject, ...]) -> tuple[SegObject, ...]:
    for i, o in enumerate(objs):
        if o.box is None or not o.points:
            raise ValueError(f"gt object {i} needs a box and a point")
    return objs


def gt_objects(solution: Any) -> tuple[SegObject, ...]:
    """The gt objects of ``solution`` (cached for strings); ``ValueError`` when malformed."""
    if isinstance(solution, str):
        return _gt_cached(solution)
    return _gt_checked(parse_solution(solution))


def _pred_data(text: str) -> tuple[Any, bool]:
    block = answer_block(text)
    if block is None:
        return None, False
    try:
        return json.loads(block), True
    except (ValueError, RecursionError):
        return None, False


def think_format(completion: Any, solution: Any = None) -> float:
    """1.0 when the whole completion matches ``<think>.*?</think>\\s*<answer>.*?</answer>`` (DOTALL)."""
    return 1.0 if think_format_ok(text_of(completion)) else 0.0


def answer_format(completion: Any, solution: Any = None, *, empty_list_score: float = EMPTY_LIST_SCORE) -> float:
    """Per item (1 if ``bbox_2d`` is 4 numbers) + (1 if ``point_2d`` is 2 numbers), averaged over items: [0, 2].

    >>> answer_format(_ANSWER), answer_format('<answer>[{"bbox_2d": [1,2,3,4]}]</answer>'), answer_format("<answer>[]</answer>")
    (2.0, 1.0, 2.0)
    """
    data, ok = _pred_data(text_of(completion))
    if not ok or not isinstance(data, list):
        return 0.0
    if not data:
        return float(empty_list_score)
    hits = 0
    for item in data:
        if isinstance(item, dict):
            hits += number_list(item.get("bbox_2d"), 4) is not None
            hits += number_list(item.get("point_2d"), 2) is not None
    return hits / len(data)


def pair_scores(
    pred: list[tuple[list, list]],
    gt: tuple[SegObject, ...],
    *,
    iou_threshold: float = IOU_THRESHOLD,
    l1_threshold: float = L1_THRESHOLD,
    point_threshold: float = POINT_DISTANCE_THRESHOLD,
) -> np.ndarray:
    """(M, N) matrix of per-pair scores in {0, 1, 2, 3} for M predicted (box, point) and N gt objects."""
    out = np.zeros((len(pred), len(gt)))
    for i, (box, pt) in enumerate(pred):
        inside = geo.point_in_box(pt, box)
        for j, g in enumerate(gt):
            s = 1.0 if geo.box_iou(box, g.box) > iou_threshold else 0.0  # type: ignore[arg-type]
            s += 1.0 if geo.box_l1(box, g.box) < l1_threshold else 0.0  # type: ignore[arg-type]
            s += 1.0 if inside and geo.point_distance(pt, g.points[0]) < point_threshold else 0.0
            out[i, j] = s
    return out


def accuracy(
    completion: Any,
    solution: Any,
    *,
    iou_threshold: float = IOU_THRESHOLD,
    l1_threshold: float = L1_THRESHOLD,
    point_threshold: float = POINT_DISTANCE_THRESHOLD,
    max_objects: int = MAX_OBJECTS,
    empty_score: float = EMPTY_SCORE,
) -> float:
    """Hungarian one-to-one matching maximising the summed pair scores, divided by max(#pred, #gt): [0, 3].

    >>> accuracy(_ANSWER, _GT), accuracy('<answer>[{"bbox_2d": [12,101,199,212], "point_2d": [31,112]}, '
    ...                                '{"bbox_2d": [300,300,310,310], "point_2d": [305,305]}]</answer>', _GT)
    (3.0, 1.5)
    """
    gt = gt_objects(solution)[:max_objects]
    data, ok = _pred_data(text_of(completion))
    if not ok or not isinstance(data, list):
        return 0.0
    pred = []
    for item in data:
        box = number_list(item.get("bbox_2d"), 4) if isinstance(item, dict) else None
        pt = number_list(item.get("point_2d"), 2) if isinstance(item, dict) else None
        if box is None or pt is None:
            return 0.0
        pred.append((box, pt))
    pred = pred[:max_objects]
    if not pred or not gt:
        return float(empty_score) if not pred and not gt else 0.0
    scores = pair_scores(
        pred, gt, iou_threshold=iou_threshold, l1_threshold=l1_threshold, point_threshold=point_threshold
    )
    from scipy.optimize import linear_sum_assignment  # lazy: scipy.optimize costs ~0.7 s to import

    rows, cols = linear_sum_assignment(scores, maximize=True)
    return float(scores[rows, cols].sum() / max(len(pred), len(gt)))


def non_repeat(completion: Any, solution: Any = None, *, repeat_limit: int = REPEAT_LIMIT) -> float:
    """0.0 when ``repeat_limit`` or more '.'-separated sentences repeat an earlier one, else 1.0.

    >>> non_repeat("A cup. A cup. A plate."), non_repeat("A cup. A cup. A cup.")
    (1.0, 0.0)
    """
    seen: set[str] = set()
    repeats = 0
    for piece in text_of(completion).split("."):
        sentence = piece.strip()
        if not sentence:
            continue
        if sentence in seen:
            repeats += 1
            if repeats >= repeat_limit:
                return 0.0
        seen.add(sentence)
    return 1.0


def score(
    completion: Any,
    solution: Any,
    *,
    iou_threshold: float = IOU_THRESHOLD,
    l1_threshold: float = L1_THRESHOLD,
    point_threshold: float = POINT_DISTANCE_THRESHOLD,
    max_objects: int = MAX_OBJECTS,
    empty_score: float = EMPTY_SCORE,
    empty_list_score: float = EMPTY_LIST_SCORE,
    repeat_limit: int = REPEAT_LIMIT,
) -> dict[str, float]:
    """All terms plus ``total`` (their sum, in [0, 7]): the family's entry point (module docstring)."""
    out = {
        "think_format": think_format(completion),
        "answer_format": answer_format(completion, empty_list_score=empty_list_score),
        "accuracy": accuracy(
            completion,
            solution,
            iou_threshold=iou_threshold,
            l1_threshold=l1_threshold,
            point_threshold=point_threshold,
            max_objects=max_objects,
            empty_score=empty_score,
        ),
        "non_repeat": non_repeat(completion, repeat_limit=repeat_limit),
    }
    out["total"] = sum(out.values())
    return out


TERMS = {
    "think_format": think_format,
    "answer_format": answer_format,
    "accuracy": accuracy,
    "non_repeat": non_repeat,
}
"""Term name -> scalar function ``(completion, solution, **thresholds) -> float``, in the paper's order."""
