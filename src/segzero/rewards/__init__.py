"""Rewards of Seg-Zero (single object) and VisionReasoner (multi object). Light: stdlib, numpy, scipy.

- ``score(kind, completion, solution, **thresholds) -> dict[str, float]``: every term plus ``total``.
  ``kind="segzero"``: ``think_format``, ``answer_format``, ``box_iou``, ``box_l1``, ``points`` (each 0/1; total
  in [0, 5]). ``kind="visionreasoner"``: ``think_format`` (0/1), ``answer_format`` (0-2), ``accuracy`` (0-3),
  ``non_repeat`` (0/1); total in [0, 7]. Never raises on a malformed completion; malformed gt raises ValueError.
- Scalar per-term functions of (completion, solution): ``segzero.rewards.single`` and ``segzero.rewards.multi``.
- TRL reward functions ``f(completions, solution, **kw) -> list[float]``, one per term, named after the term:
  ``SEGZERO_REWARDS``, ``VISIONREASONER_REWARDS`` (term -> function), ``reward_functions(kind, **thresholds)``.
- The pixel thresholds (box L1 10 px, point distances 100 / 30 px) are the papers', for answers in the 840 frame.
  ``thresholds_for_frame(kind, frame)`` gives them for answers in another frame, as the same fraction of the image:
  for Qwen3-VL's relative 0..1000 answers, ``x 1000 / 840`` (L1 11.9, points 119.0 / 35.7); pass them as
  ``**thresholds`` (or a recipe's ``reward_thresholds``).

Usage::

    from segzero.rewards import score
    score("segzero", completion, "<box>(10,100),(200,210)</box><points>(30,110),(35,180)</points>")
"""

from __future__ import annotations

from typing import Any

from segzero.answer import KINDS
from segzero.geometry import DEFAULT_FRAME, length_scale
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
    "thresholds_for_frame",
]

PIXEL_THRESHOLDS = {"segzero": single.PIXEL_THRESHOLDS, "visionreasoner": multi.PIXEL_THRESHOLDS}
"""Answer family -> its thresholds that are lengths in pixels of the 840 frame (keyword -> paper value)."""


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


def thresholds_for_frame(kind: str, frame: int | tuple[int, int], *, reference=DEFAULT_FRAME) -> dict[str, float]:
    """The pixel thresholds of ``kind``'s terms for answers in ``frame``: the papers' values, defined for the 840
    frame (``reference``), times ``segzero.geometry.length_scale(frame, reference)``, so each is the same fraction
    of the image. Keyword arguments of ``score`` / ``reward_functions``; the IoU threshold (a ratio) is not among
    them. ``ValueError`` for an unknown kind.

    >>> {k: round(v, 3) for k, v in thresholds_for_frame("visionreasoner", 1000).items()}
    {'l1_threshold': 11.905, 'point_threshold': 35.714}
    """
    if kind not in PIXEL_THRESHOLDS:
        raise ValueError(f"unknown reward kind {kind!r}; expected one of {KINDS}")
    scale = length_scale(frame, reference)
    return {name: value * scale for name, value in PIXEL_THRESHOLDS[kind].items()}
