"""TRL-facing reward functions: one plain, picklable function per reward term.

Each has the signature TRL's ``GRPOTrainer`` calls, ``f(completions, solution, **kwargs) -> list[float]``: one
float per completion; a completion is a str or a chat message list (``[{"role": "assistant", "content": ...}]``,
content a str or a list of ``{"type": "text", "text": ...}`` parts). ``solution`` is the dataset column of that
name (gt strings as released, or parsed objects); other dataset columns and TRL's extras (``prompts``,
``completion_ids``, ``trainer_state``, ``log_metric``, ...) are accepted and ignored. Thresholds are keyword
arguments (paper values by default): bind them with ``functools.partial``, which TRL unwraps for the name.

Every function's ``__name__`` is its term name, so TRL logs ``rewards/<term>/mean`` (e.g. ``rewards/box_iou/mean``).
Use ``SEGZERO_REWARDS`` / ``VISIONREASONER_REWARDS`` (term name -> function, in the papers' order) or
``reward_functions(kind, **thresholds)``::

    from segzero.rewards import reward_functions
    trainer = GRPOTrainer(model=..., reward_funcs=reward_functions("segzero"), train_dataset=ds, ...)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from segzero.rewards import multi, single


def term(name: str) -> Callable:
    """Name a TRL reward function after its term where it is defined (TRL logs ``rewards/<__name__>/mean``); its
    ``__qualname__`` stays, so pickle still finds it."""

    def named(fn: Callable) -> Callable:
        fn.__name__ = name
        return fn

    return named


def _need(solution: Any, completions: list, name: str) -> list:
    if solution is None:
        raise ValueError(f"reward {name!r} needs the dataset column 'solution' (the ground truth)")
    if len(solution) != len(completions):
        raise ValueError(f"reward {name!r}: {len(completions)} completions but {len(solution)} solutions")
    return list(solution)


def think_format(completions: list, solution: Any = None, **kwargs: Any) -> list[float]:
    """1.0 per completion that is exactly ``<think>...</think> <answer>...</answer>`` (both kinds)."""
    return [single.think_format(c) for c in completions]


@term("answer_format")
def segzero_answer_format(completions: list, solution: Any = None, **kwargs: Any) -> list[float]:
    """Seg-Zero answer format (0/1): strict JSON ``bbox`` + ``points_1`` + ``points_2``."""
    return [single.answer_format(c) for c in completions]


@term("box_iou")
def segzero_box_iou(
    completions: list, solution: Any = None, *, iou_threshold: float = single.IOU_THRESHOLD, **kwargs: Any
) -> list[float]:
    """Seg-Zero box IoU term (0/1): IoU > ``iou_threshold``."""
    sols = _need(solution, completions, "box_iou")
    return [single.box_iou(c, s, iou_threshold=iou_threshold) for c, s in zip(completions, sols, strict=True)]


@term("box_l1")
def segzero_box_l1(
    completions: list, solution: Any = None, *, l1_threshold: float = single.L1_THRESHOLD, **kwargs: Any
) -> list[float]:
    """Seg-Zero box L1 term (0/1): mean coordinate difference < ``l1_threshold`` px."""
    sols = _need(solution, completions, "box_l1")
    return [single.box_l1(c, s, l1_threshold=l1_threshold) for c, s in zip(completions, sols, strict=True)]


@term("points")
def segzero_points(
    completions: list,
    solution: Any = None,
    *,
    distance_threshold: float = single.POINT_DISTANCE_THRESHOLD,
    **kwargs: Any,
) -> list[float]:
    """Seg-Zero points term (0/1): both points in the predicted box, matched distance < ``distance_threshold``."""
    sols = _need(solution, completions, "points")
    return [single.points(c, s, distance_threshold=distance_threshold) for c, s in zip(completions, sols, strict=True)]


@term("answer_format")
def visionreasoner_answer_format(
    completions: list, solution: Any = None, *, empty_list_score: float = multi.EMPTY_LIST_SCORE, **kwargs: Any
) -> list[float]:
    """VisionReasoner answer format in [0, 2] (per-item bbox_2d + point_2d validity, averaged)."""
    return [multi.answer_format(c, empty_list_score=empty_list_score) for c in completions]


@term("accuracy")
def visionreasoner_accuracy(
    completions: list,
    solution: Any = None,
    *,
    iou_threshold: float = multi.IOU_THRESHOLD,
    l1_threshold: float = multi.L1_THRESHOLD,
    point_threshold: float = multi.POINT_DISTANCE_THRESHOLD,
    max_objects: int = multi.MAX_OBJECTS,
    empty_score: float = multi.EMPTY_SCORE,
    **kwargs: Any,
) -> list[float]:
    """VisionReasoner accuracy in [0, 3] (Hungarian-matched IoU + L1 + point terms over max(#pred, #gt))."""
    sols = _need(solution, completions, "accuracy")
    kw = dict(
        iou_threshold=iou_threshold,
        l1_threshold=l1_threshold,
        point_threshold=point_threshold,
        max_objects=max_objects,
        empty_score=empty_score,
    )
    return [multi.accuracy(c, s, **kw) for c, s in zip(completions, sols, strict=True)]


@term("non_repeat")
def visionreasoner_non_repeat(
    completions: list, solution: Any = None, *, repeat_limit: int = multi.REPEAT_LIMIT, **kwargs: Any
) -> list[float]:
    """VisionReasoner non-repeat term (0/1)."""
    return [multi.non_repeat(c, repeat_limit=repeat_limit) for c in completions]


SEGZERO_REWARDS: dict[str, Callable[..., list[float]]] = {
    "think_format": think_format,
    "answer_format": segzero_answer_format,
    "box_iou": segzero_box_iou,
    "box_l1": segzero_box_l1,
    "points": segzero_points,
}
VISIONREASONER_REWARDS: dict[str, Callable[..., list[float]]] = {
    "think_format": think_format,
    "answer_format": visionreasoner_answer_format,
    "accuracy": visionreasoner_accuracy,
    "non_repeat": visionreasoner_non_repeat,
}
REWARDS = {"segzero": SEGZERO_REWARDS, "visionreasoner": VISIONREASONER_REWARDS}


def reward_functions(kind: str = "segzero", **thresholds: Any) -> list[Callable[..., list[float]]]:
    """The per-term TRL reward functions of ``kind``, with ``thresholds`` bound (``functools.partial``) to every
    term that takes them; ``ValueError`` for an unknown kind or a threshold no term of that kind accepts."""
    if kind not in REWARDS:
        raise ValueError(f"unknown reward kind {kind!r}; expected one of {sorted(REWARDS)}")
    funcs = list(REWARDS[kind].values())
    params = [set(inspect.signature(f).parameters) - {"completions", "solution", "kwargs"} for f in funcs]
    unknown = set(thresholds) - set().union(*params)
    if unknown:
        raise ValueError(f"unknown {kind} reward thresholds: {sorted(unknown)}")
    out = []
    for f, names in zip(funcs, params, strict=True):
        bound = {k: v for k, v in thresholds.items() if k in names}
        out.append(functools.partial(f, **bound) if bound else f)
    return out
