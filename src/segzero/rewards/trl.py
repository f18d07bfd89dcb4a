"""TRL-facing reward functions: each family's scalar terms (``single.TERMS``, ``multi.TERMS``), one per term, batched.

Each is a ``TrlTerm`` with the signature TRL's ``GRPOTrainer`` calls, ``f(completions, solution, **kwargs) ->
list[float]``: one float per completion; a completion is a str or a chat message list
(``[{"role": "assistant", "content": ...}]``, content a str or a list of ``{"type": "text", "text": ...}``
parts). ``solution`` is the dataset column of that name (gt strings as released, or parsed objects); other
dataset columns and TRL's extras (``prompts``, ``completion_ids``, ``trainer_state``, ``log_metric``, ...) are
accepted and ignored. Thresholds are bound when the term is made (paper values by default).

A term's ``__name__`` is its name, so TRL logs ``rewards/<term>/mean`` (e.g. ``rewards/box_iou/mean``); terms are
plain picklable objects (a module-level function and its bound thresholds). Use ``SEGZERO_REWARDS`` /
``VISIONREASONER_REWARDS`` (term name -> function, in the papers' order) or ``reward_functions(kind,
**thresholds)``::

    from segzero.rewards import reward_functions
    trainer = GRPOTrainer(model=..., reward_funcs=reward_functions("segzero"), train_dataset=ds, ...)

>>> box_iou, gt = SEGZERO_REWARDS["box_iou"], "<box>(0,0),(9,9)</box><points>(2,2),(7,7)</points>"
>>> box_iou.__name__, box_iou(['{"bbox": [0,0,9,9]}', "no answer"], solution=[gt, gt])
('box_iou', [1.0, 0.0])
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from segzero.rewards import multi, single


class TrlTerm:
    """One scalar term ``func(completion, solution, **thresholds)`` as a TRL reward function named ``name``."""

    def __init__(self, name: str, func: Callable[..., float], **thresholds: Any):
        self.__name__ = name
        self.func = func
        self.thresholds = thresholds
        self.needs_solution = inspect.signature(func).parameters["solution"].default is inspect.Parameter.empty

    def __call__(self, completions: list, solution: Any = None, **kwargs: Any) -> list[float]:
        if not self.needs_solution:
            return [self.func(c, **self.thresholds) for c in completions]
        if solution is None:
            raise ValueError(f"reward {self.__name__!r} needs the dataset column 'solution' (the ground truth)")
        if len(solution) != len(completions):
            raise ValueError(f"reward {self.__name__!r}: {len(completions)} completions but {len(solution)} solutions")
        return [self.func(c, s, **self.thresholds) for c, s in zip(completions, solution, strict=True)]

    def __repr__(self) -> str:
        return f"TrlTerm({self.__name__}, {self.func.__module__}.{self.func.__name__}, {self.thresholds})"


FAMILIES = {"segzero": single.TERMS, "visionreasoner": multi.TERMS}
"""Answer family -> its scalar terms (name -> function), in the papers' order."""


def _thresholds(func: Callable) -> set[str]:
    return {p.name for p in inspect.signature(func).parameters.values() if p.kind is p.KEYWORD_ONLY}


def reward_functions(kind: str = "segzero", **thresholds: Any) -> list[TrlTerm]:
    """The per-term TRL reward functions of ``kind``, each with the ``thresholds`` it takes bound; ``ValueError``
    for an unknown kind or a threshold no term of that kind accepts.

    >>> [f.__name__ for f in reward_functions("visionreasoner", iou_threshold=0.7)]
    ['think_format', 'answer_format', 'accuracy', 'non_repeat']
    """
    if kind not in FAMILIES:
        raise ValueError(f"unknown reward kind {kind!r}; expected one of {sorted(FAMILIES)}")
    terms = FAMILIES[kind]
    unknown = set(thresholds) - set().union(*(_thresholds(f) for f in terms.values()))
    if unknown:
        raise ValueError(f"unknown {kind} reward thresholds: {sorted(unknown)}")
    return [
        TrlTerm(name, f, **{k: v for k, v in thresholds.items() if k in _thresholds(f)}) for name, f in terms.items()
    ]


SEGZERO_REWARDS: dict[str, TrlTerm] = {f.__name__: f for f in reward_functions("segzero")}
VISIONREASONER_REWARDS: dict[str, TrlTerm] = {f.__name__: f for f in reward_functions("visionreasoner")}
REWARDS = {"segzero": SEGZERO_REWARDS, "visionreasoner": VISIONREASONER_REWARDS}
