"""An optional soft variant of the Seg-Zero accuracy rewards (``reward_variant: soft``); the paper's are "hard".

The paper's ``box_iou`` and ``box_l1`` terms are 0/1 thresholds (IoU > 0.5, mean L1 < 10 px). With a small,
weak policy most samples of a group fall on the same side of a threshold, the group's rewards are equal and GRPO
gets no signal. The soft variant keeps the term names (so logs and tables line up) and replaces

- ``box_iou`` by the IoU itself, in [0, 1] (inclusive pixel boxes, the reference's strict-overlap rule);
- ``box_l1`` by ``max(0, 1 - L1 / l1_scale)`` (``l1_scale`` = 2 x the L1 threshold: 20 px by default);

reading the prediction exactly as the hard terms do (the first flat ``{...}`` of the completion, strict JSON
numbers; missing -> 0). ``think_format``, ``answer_format`` and ``points`` stay the paper's. Usage:

>>> from segzero.train.soft_rewards import soft_box_iou
>>> answer = '<answer>{"bbox": [0,0,9,9], "points_1": [2,2], "points_2": [5,5]}</answer>'
>>> soft_box_iou([answer], ["<box>(0,0),(9,9)</box><points>(2,2),(5,5)</points>"])
[1.0]
>>> soft_box_iou([answer], ["<box>(0,0),(9,19)</box><points>(2,2),(5,5)</points>"])  # half the gt box
[0.5]
"""

from __future__ import annotations

import functools
from typing import Any

from segzero import geometry as geo
from segzero.rewards.single import gt_object, pred_box

L1_SCALE = 20.0


def soft_iou(completion: Any, solution: Any) -> float:
    """IoU of the predicted box with the gt box, in [0, 1] (0 when no box can be read)."""
    box = pred_box(completion)
    return 0.0 if box is None else float(geo.box_iou(box, gt_object(solution).box, strict_overlap=True))


def soft_l1(completion: Any, solution: Any, *, l1_scale: float = L1_SCALE) -> float:
    """``max(0, 1 - mean |box - gt box| / l1_scale)`` (0 when no box can be read)."""
    box = pred_box(completion)
    return 0.0 if box is None else max(0.0, 1.0 - geo.box_l1(box, gt_object(solution).box) / l1_scale)


def soft_box_iou(completions: list, solution: list, **_unused) -> list[float]:
    """TRL reward function: ``soft_iou`` per completion."""
    return [soft_iou(c, s) for c, s in zip(completions, solution, strict=True)]


def soft_box_l1(completions: list, solution: list, *, l1_scale: float = L1_SCALE, **_unused) -> list[float]:
    """TRL reward function: ``soft_l1`` per completion."""
    return [soft_l1(c, s, l1_scale=l1_scale) for c, s in zip(completions, solution, strict=True)]


def soft_terms(*, l1_threshold: float | None = None) -> dict:
    """``{term name: TRL reward function}`` of the soft terms that replace the paper's ``box_iou`` and ``box_l1``;
    the L1 scale is 2 x ``l1_threshold`` when one is given (``L1_SCALE`` otherwise)."""
    scale = L1_SCALE if l1_threshold is None else 2.0 * float(l1_threshold)
    return {"box_iou": soft_box_iou, "box_l1": functools.partial(soft_box_l1, l1_scale=scale)}
