"""Reward wiring for GRPO: one TRL reward function per reward term, weights, and the completions sample file.

The terms come from ``segzero.rewards.REWARDS[kind]`` (term name -> function, the papers' order): each is a TRL reward function
``f(completions, solution, **kwargs) -> list[float]`` named after its term. ``build_reward_functions`` wraps
each one in a ``TermReward`` whose ``__name__`` is the term (TRL logs ``rewards/<term>/mean`` and ``/std``),
returns them in the core's order with the weights list ``GRPOConfig.reward_weights`` expects, and feeds a
``SampleWriter`` that appends, every N steps, completions with their per-term and weighted total rewards to a
JSONL file (main process only)::

    {"step": 10, "id": "...", "problem": "...", "solution": "...", "completion": "...",
     "rewards": {"think_format": 1.0, ...}, "total": 3.0}

``step`` is the number of optimizer steps completed before the batch was generated (0 = the first batch);
``total`` is the weighted sum TRL turns into advantages.

Usage::

    from segzero.train.rewards import build_reward_functions, reward_term_names
    funcs, weights = build_reward_functions("segzero", weights={"box_iou": 2.0})
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from segzero.answer import KINDS
from segzero.errors import UserError
from segzero.parsing import text_of
from segzero.rewards import single
from segzero.train.processes import is_main_process


def core_terms(kind: str) -> list[tuple[str, Callable]]:
    """``[(term name, TRL reward function), ...]`` of the core rewards for ``kind``, in the papers' order."""
    from segzero import rewards

    if kind not in KINDS:
        raise UserError(f"reward kind must be one of {KINDS}, got {kind!r}")
    return list(rewards.REWARDS[kind].items())


def reward_term_names(kind: str) -> list[str]:
    """The term names of ``kind`` (the suffixes of TRL's ``rewards/<term>/mean`` metrics)."""
    return [name for name, _ in core_terms(kind)]


class SampleWriter:
    """Collects per-term rewards of one generation batch and writes ``count`` rows to a JSONL every ``every`` steps.

    Every ``TermReward`` reports its values with ``record``; once all ``n_terms`` terms of a batch are in, the
    rows are written (only on the main process, ``RANK`` 0) and the buffer is cleared.
    """

    def __init__(self, path: str | Path, *, every: int = 10, count: int = 8):
        self.path = Path(path)
        self.every = every
        self.count = count
        self.n_terms = 0
        self.weights: dict[str, float] = {}
        self._buffer: dict[str, list[float]] = {}
        self._written_steps: set[int] = set()

    def expect(self, weights: dict[str, float]) -> None:
        """The terms of the reward set it records (name -> weight): a batch's rows are written once all of them
        reported."""
        self.n_terms, self.weights = len(weights), dict(weights)

    def wants(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0 and step not in self._written_steps and is_main_process()

    def record(self, term: str, values: list, completions: list, solution: list, kwargs: dict) -> None:
        state = kwargs.get("trainer_state")
        step = int(getattr(state, "global_step", 0) or 0)
        if not self.wants(step):
            return
        self._buffer[term] = list(values)
        if len(self._buffer) < self.n_terms:
            return
        ids, problems = kwargs.get("id") or [None] * len(values), kwargs.get("problem") or [None] * len(values)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            for i in range(min(self.count, len(completions))):
                terms = {t: None if v[i] is None else float(v[i]) for t, v in self._buffer.items()}
                row = {
                    "step": step,
                    "id": ids[i],
                    "problem": problems[i],
                    "solution": solution[i],
                    "completion": text_of(completions[i]),
                    "rewards": terms,
                    "total": sum(self.weights.get(t, 1.0) * v for t, v in terms.items() if v is not None),
                }
                fh.write(json.dumps(row) + "\n")
        self._buffer.clear()
        self._written_steps.add(step)


class TermReward:
    """One reward term as a TRL reward function; ``__name__`` is the term name (TRL's metric name). A ``None``
    value (a plug-in's "not judged") stays ``None``: TRL leaves it out of the weighted sum and the logged mean."""

    def __init__(self, name: str, func: Callable, writer: SampleWriter | None = None):
        self.__name__ = name
        self.func = func
        self.writer = writer

    def __call__(self, completions: list, solution: list, **kwargs) -> list[float]:
        values = [None if v is None else float(v) for v in self.func(completions, solution, **kwargs)]
        if self.writer is not None:
            self.writer.record(self.__name__, values, completions, solution, kwargs)
        return values


FORMAT_TERMS: tuple[str, ...] = ("think_format", "answer_format")


@dataclass(frozen=True)
class Variant:
    """A reward set of a kind, as changes to the paper's terms: ``replace`` swaps terms' scalar functions (by term
    name; the thresholds they take stay bound), ``keep`` keeps only the terms it names (None = all), ``mask_iou``
    appends the IoU of the mask the segmenter makes from the answer (``segzero.train.mask_reward``; rows need their
    gt mask), ``kinds`` the answer families it is defined for."""

    replace: dict[str, Callable] = field(default_factory=dict)
    keep: tuple[str, ...] | None = None
    mask_iou: bool = False
    kinds: tuple[str, ...] = KINDS


VARIANTS: dict[str, Variant] = {
    "hard": Variant(),  # the paper's terms
    "soft": Variant(replace=single.SOFT_TERMS, kinds=("segzero",)),  # its box terms continuous
    "mask": Variant(keep=FORMAT_TERMS, mask_iou=True),  # format terms + mask_iou in place of the accuracy terms
    "mask_mix": Variant(mask_iou=True),  # the paper's terms + mask_iou
}
"""The reward sets of ``reward_variant``."""


def variant_terms(
    kind: str, variant: str = "hard", *, thresholds: dict | None = None, mask_reward: Callable | None = None
) -> list[tuple[str, Callable]]:
    """``[(term name, TRL reward function), ...]`` of reward set ``variant`` of ``kind`` (``VARIANTS``), the paper's
    pixel ``thresholds`` bound to the terms that take them. ``mask_reward`` (a ``MaskIoU``) is needed by the mask
    variants. ``UserError`` for an unknown variant or threshold."""
    from segzero.rewards import reward_functions
    from segzero.rewards.trl import TrlTerm

    if variant not in VARIANTS:
        raise UserError(f"unknown reward variant {variant!r}; use one of {tuple(VARIANTS)}")
    spec = VARIANTS[variant]
    if kind not in spec.kinds:
        raise UserError(f"reward_variant {variant!r} is defined for reward_kind {' / '.join(spec.kinds)} only")
    try:
        terms = [(f.__name__, f) for f in reward_functions(kind, **dict(thresholds or {}))]
    except ValueError as err:
        raise UserError(f"reward_thresholds: {err}") from err
    terms = [(n, TrlTerm(n, spec.replace[n], **f.thresholds) if n in spec.replace else f) for n, f in terms]
    if spec.keep is not None:
        terms = [(n, f) for n, f in terms if n in spec.keep]
    if spec.mask_iou:
        if mask_reward is None:
            raise UserError(f"reward_variant {variant!r} needs a segmenter for its mask_iou term")
        terms.append(("mask_iou", mask_reward))
    return terms


def build_reward_functions(
    kind: str,
    *,
    variant: str = "hard",
    thresholds: dict | None = None,
    mask_reward: Callable | None = None,
    weights: dict[str, float] | None = None,
    writer: SampleWriter | None = None,
    extra_terms: list[tuple[str, Callable]] = (),
) -> tuple[list[TermReward], list[float]]:
    """The reward functions of ``kind`` / ``variant`` (``variant_terms``), then ``extra_terms`` (reward plug-ins,
    ``segzero.train.plugins``), and their weights (``weights`` by term name; missing terms weigh 1.0). Unknown
    names in ``weights`` and an extra term named like a built-in one raise ``UserError`` listing the terms.
    """
    weights = dict(weights or {})
    terms = variant_terms(kind, variant, thresholds=thresholds, mask_reward=mask_reward)
    clash = sorted({n for n, _ in terms} & {n for n, _ in extra_terms})
    if clash:
        raise UserError(f"reward plug-in term(s) {clash} share a name with {kind!r}'s own terms: rename them")
    terms = [*terms, *extra_terms]
    names = [name for name, _ in terms]
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise UserError(f"reward_weights: unknown term(s) {unknown} for {kind!r}; terms are {names}")
    resolved = [float(weights.get(name, 1.0)) for name in names]
    if writer is not None:
        writer.expect(dict(zip(names, resolved, strict=True)))
    return [TermReward(name, f, writer) for name, f in terms], resolved
