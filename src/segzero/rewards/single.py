"""Seg-Zero single-object reward terms, as scalar functions of (completion, solution).

Each term is 0.0 or 1.0; ``score`` adds ``total`` in [0, 5]. The prediction is read as the reference reads it:
the first ``{...}`` without a closing brace inside, anywhere in the completion (tags may be missing), parsed
with ``json.loads``. The accuracy terms (``box_iou``, ``box_l1``, ``points``) are scored whether or not the
format terms pass. The completion may be a str or a chat message list; ``solution`` is the gt in any form
``segzero.parsing.parse_solution`` reads (``<box>(x1,y1),(x2,y2)</box><points>(x,y),(x,y)</points>``, ...) and
must hold exactly one object (``ValueError`` otherwise); a gt with one point (VisionReasoner form) is matched
to the closer predicted point. A malformed completion never raises.

Where this differs from the reference code, it follows the paper's wording: the format term asks for *numbers*
(the reference only checks list lengths, so ``["a","b","c","d"]`` passed there), and NaN/Infinity (which
Python's ``json.loads`` accepts) count as non-numbers. The accuracy terms give the same values as the reference.

``score`` is the family's entry point (every term and the total, EasyR1's ``compute_score`` shape); ``TERMS`` maps
each term's name to its function, in the paper's order. The examples below share one gt and one answer::

    >>> score(_ANSWER, _GT)
    {'think_format': 1.0, 'answer_format': 1.0, 'box_iou': 1.0, 'box_l1': 1.0, 'points': 1.0, 'total': 5.0}
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from segzero import geometry as geo
from segzero.answer import SegObject
from segzero.parsing import (
    first_flat_object,
    is_number,
    number_list,
    parse_answer,
    parse_solution,
    text_of,
    think_format_ok,
)

IOU_THRESHOLD = 0.5  # box_iou: IoU must be strictly greater
L1_THRESHOLD = 10.0  # box_l1: mean absolute coordinate difference (px) must be strictly smaller
POINT_DISTANCE_THRESHOLD = 100.0  # points: mean matched point distance (px) must be strictly smaller
# The thresholds that are lengths in pixels of the 840 frame (keyword -> paper value); ``segzero.rewards.
# thresholds_for_frame`` scales them for answers in another frame. The IoU threshold is a ratio: the same in any.
PIXEL_THRESHOLDS = {"l1_threshold": L1_THRESHOLD, "distance_threshold": POINT_DISTANCE_THRESHOLD}
# the docstrings' examples: one gt and one answer that earns every term
_GT = "<box>(100,100),(199,199)</box><points>(120,120),(180,180)</points>"
_ANSWER = (
    '<think>the mug</think><answer>{"bbox": [102,98,200,201], "points_1": [121,119], "points_2": [178,182]}</answer>'
)


@lru_cache(maxsize=8192)
def _gt_cached(solution: str) -> SegObject:
    return _gt_object(parse_solution(solution))


def _gt_object(objs: tuple[SegObject, ...]) -> SegObject:
    if len(objs) != 1 or objs[0].box is None:
        raise ValueError(f"Seg-Zero rewards need exactly one gt object with a box, got {len(objs)}")
    return objs[0]


def gt_object(solution: Any) -> SegObject:
    """The single gt object of ``solution`` (cached for strings); ``ValueError`` when malformed."""
    if isinstance(solution, str):
        return _gt_cached(solution)
    return _gt_object(parse_solution(solution))


def _pred(text: str) -> dict | None:
    """The reference reading: ``json.loads`` of the first flat ``{...}``; None when absent or not a JSON object."""
    span = first_flat_object(text)
    if span is None:
        return None
    try:
        data = json.loads(span)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def pred_box(completion: Any) -> list | None:
    """The predicted bbox as the reference reads it (``bbox`` of the first flat JSON object, 4 numbers), else None."""
    data = _pred(text_of(completion))
    return number_list(data.get("bbox"), 4) if data else None


def _pred_point(v: Any) -> tuple[int, int] | None:
    """A predicted point truncated to ints, as the reference does (``int(p[0]), int(p[1])``; extra items ignored)."""
    if not isinstance(v, list) or len(v) < 2 or not (is_number(v[0]) and is_number(v[1])):
        return None
    return int(v[0]), int(v[1])


def think_format(completion: Any, solution: Any = None) -> float:
    """1.0 when the whole completion matches ``<think>.*?</think>\\s*<answer>.*?</answer>`` (DOTALL)."""
    return 1.0 if think_format_ok(text_of(completion)) else 0.0


def answer_format(completion: Any, solution: Any = None) -> float:
    """1.0 when the first ``{...}`` is strict JSON with ``bbox`` (4 numbers), ``points_1``/``points_2`` (2 each)."""
    return 1.0 if parse_answer(text_of(completion), strict=True, layout="single").ok else 0.0


def box_iou(completion: Any, solution: Any, *, iou_threshold: float = IOU_THRESHOLD) -> float:
    """1.0 when IoU(pred bbox, gt box) > ``iou_threshold`` (inclusive pixels; Seg-Zero's strict-overlap rule).

    >>> box_iou(_ANSWER, _GT), box_iou('{"bbox": [100,100,199,149]}', _GT)  # IoU exactly 0.5 is not above it
    (1.0, 0.0)
    """
    gt = gt_object(solution)
    box = pred_box(completion)
    if box is None:
        return 0.0
    return 1.0 if geo.box_iou(box, gt.box, strict_overlap=True) > iou_threshold else 0.0  # type: ignore[arg-type]


def box_l1(completion: Any, solution: Any, *, l1_threshold: float = L1_THRESHOLD) -> float:
    """1.0 when the mean absolute difference of the 4 box coordinates is < ``l1_threshold`` px.

    >>> box_l1(_ANSWER, _GT), box_l1(_ANSWER, _GT, l1_threshold=1.0)  # off by 2, 2, 1, 2 px: mean 1.75
    (1.0, 0.0)
    """
    gt = gt_object(solution)
    box = pred_box(completion)
    if box is None:
        return 0.0
    return 1.0 if geo.box_l1(box, gt.box) < l1_threshold else 0.0  # type: ignore[arg-type]


def points(completion: Any, solution: Any, *, distance_threshold: float = POINT_DISTANCE_THRESHOLD) -> float:
    """1.0 when both predicted points (truncated to int) lie in the predicted bbox (edges inside) and the mean
    distance to the gt points under the better pairing is < ``distance_threshold`` px.

    >>> points(_ANSWER, _GT), points('{"bbox": [100,100,199,199], "points_1": [5,5], "points_2": [150,150]}', _GT)
    (1.0, 0.0)
    """
    gt = gt_object(solution)
    data = _pred(text_of(completion))
    if not data or not gt.points:
        return 0.0
    box = number_list(data.get("bbox"), 4)
    p1, p2 = _pred_point(data.get("points_1")), _pred_point(data.get("points_2"))
    if box is None or p1 is None or p2 is None:
        return 0.0
    if not (geo.point_in_box(p1, box) and geo.point_in_box(p2, box)):
        return 0.0
    return 1.0 if geo.matched_point_distance([p1, p2], gt.points) < distance_threshold else 0.0


def score(
    completion: Any,
    solution: Any,
    *,
    iou_threshold: float = IOU_THRESHOLD,
    l1_threshold: float = L1_THRESHOLD,
    distance_threshold: float = POINT_DISTANCE_THRESHOLD,
) -> dict[str, float]:
    """All terms plus ``total`` (their sum, in [0, 5]): the family's entry point (module docstring)."""
    out = {
        "think_format": think_format(completion),
        "answer_format": answer_format(completion),
        "box_iou": box_iou(completion, solution, iou_threshold=iou_threshold),
        "box_l1": box_l1(completion, solution, l1_threshold=l1_threshold),
        "points": points(completion, solution, distance_threshold=distance_threshold),
    }
    out["total"] = sum(out.values())
    return out


# The soft variant (``reward_variant: soft``): the paper's box terms are 0/1 thresholds, and with a small, weak
# policy most samples of a group fall on the same side of one, so the group's rewards are equal and GRPO gets no
# signal. These keep the term names and read the prediction exactly as the hard terms do.
SOFT_L1_SCALE_FACTOR = 2.0  # soft_box_l1's scale: this many times the box L1 threshold (20 px at the paper's 10)


def soft_box_iou(completion: Any, solution: Any) -> float:
    """The IoU of the predicted box with the gt box itself, in [0, 1] (0 when no box can be read).

    >>> round(soft_box_iou(_ANSWER, _GT), 3), soft_box_iou('{"bbox": [100,100,199,149]}', _GT), soft_box_iou("", _GT)
    (0.934, 0.5, 0.0)
    """
    box = pred_box(completion)
    return 0.0 if box is None else float(geo.box_iou(box, gt_object(solution).box, strict_overlap=True))


def soft_box_l1(completion: Any, solution: Any, *, l1_threshold: float = L1_THRESHOLD) -> float:
    """``max(0, 1 - mean |box - gt box| / (SOFT_L1_SCALE_FACTOR * l1_threshold))`` (0 when no box can be read).

    >>> soft_box_l1(_ANSWER, _GT), soft_box_l1("none", _GT)  # mean L1 1.75 px of a 20 px scale
    (0.9125, 0.0)
    """
    box = pred_box(completion)
    if box is None:
        return 0.0
    return max(0.0, 1.0 - geo.box_l1(box, gt_object(solution).box) / (SOFT_L1_SCALE_FACTOR * l1_threshold))


TERMS = {
    "think_format": think_format,
    "answer_format": answer_format,
    "box_iou": box_iou,
    "box_l1": box_l1,
    "points": points,
}
"""Term name -> scalar function ``(completion, solution, **thresholds) -> float``, in the paper's order."""
SOFT_TERMS = {"box_iou": soft_box_iou, "box_l1": soft_box_l1}
"""The soft variant's replacements of the paper's box terms, by term name."""
