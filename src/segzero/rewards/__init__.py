"""Rewards of Seg-Zero (single object) and VisionReasoner (multi object). Light: stdlib, numpy, scipy.

- ``score(kind, completion, solution, **thresholds) -> dict[str, float]``: every term plus ``total``.
  ``kind="segzero"``: ``think_format``, ``answer_format``, ``box_iou``, ``box_l1``, ``points`` (each 0/1; total
  in [0, 5]). ``kind="visionreasoner"``: ``think_format`` (0/1), ``answer_format`` (0-2), ``accuracy`` (0-3),
  ``non_repeat`` (0/1); total in [0, 7]. Never raises on a malformed completion; malformed gt raises ValueError.
- Scalar per-term functions of (completion, solution): ``segzero.rewards.single`` and ``segzero.rewards.multi``.
- TRL reward functions ``f(completions, solution, **kw) -> list[float]``, one per term, named after the term:
  ``SEGZERO_REWARDS``, ``VISIONREASONER_REWARDS`` (term -> function), ``reward_functions(kind, **thresholds)``.

Usage::

    from segzero.rewards import score
    score("segzero", completion, "<box>(10,100),(200,210)</box><points>(30,110),(35,180)</points>")
"""

from __future__ import annotations

from typing import Any

from segzero.answer import KINDS
from segzero.rewards import multi, single
from segzero.rewards.trl import REWARDS, SEGZERO_REWARDS, VISIONREASONER_REWARDS, reward_functions

__all__ = [
    "KINDS",
    "REWARDS",
    "SEGZERO_REWARDS",
    "VISIONREASONER_REWARDS",
    "multi",
    "reward_functions",
    "score",
    "single",
]


def score(kind: str, completion: Any, solution: Any, **thresholds: Any) -> dict[str, float]:
    """All reward terms of ``kind`` ("segzero" or "visionreasoner") and their ``total``.

    ``completion``: str or chat message list. ``solution``: gt in a released string form or typed objects.
    ``thresholds``: keyword overrides of the paper values (see ``single.score`` / ``multi.score``).
    """
    if kind == "segzero":
        return single.score(completion, solution, **thresholds)
    if kind == "visionreasoner":
        return multi.score(completion, solution, **thresholds)
    raise ValueError(f"unknown reward kind {kind!r}; expected one of {KINDS}")
