"""The reward set of a GRPO run: the kind's terms changed by its variant (``VARIANTS``, as data), the reward
plug-ins, and their weights.

The terms come from ``segzero.rewards.REWARDS[kind]`` (term name -> TRL reward function, the papers' order), each
``f(completions, solution, **kwargs) -> list[float]`` named after its term (TRL logs ``rewards/<term>/mean`` and
``/std``). ``build_reward_functions`` returns them in the core's order with the weights list
``GRPOConfig.reward_weights`` expects. The completions sample file is ``segzero.train.samples``.

Usage::

    from segzero.train.rewards import build_reward_functions, reward_term_names
    funcs, weights = build_reward_functions("segzero", weights={"box_iou": 2.0})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from segzero.answer import KINDS
from segzero.errors import UserError
from segzero.rewards import single


def core_terms(kind: str) -> list[tuple[str, Callable]]:
    """``[(term name, TRL reward function), ...]`` of the core rewards for ``kind``, in the papers' order."""
    from segzero import rewards

    if kind not in KINDS:
        raise UserError(f"reward kind must be one of {KINDS}, got {kind!r}")
    return list(rewards.REWARDS[kind].items())


def reward_term_names(kind: str) -> list[str]:
    """The term names of ``kind`` (the suffixes of TRL's ``rewards/<term>/mean`` metrics)."""
    return [name for name, _ in core_terms(kind)]


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
    extra_terms: list[tuple[str, Callable]] = (),
) -> tuple[list[Callable], list[float]]:
    """The reward functions of ``kind`` / ``variant`` (``variant_terms``), then ``extra_terms`` (reward plug-ins,
    ``segzero.train.plugins``), and their weights (``weights`` by term name; missing terms weigh 1.0). Unknown
    names in ``weights`` and an extra term named like a built-in one raise ``UserError`` listing the terms.
    Each function's ``__name__`` is its term's name.
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
    funcs = [f if getattr(f, "__name__", None) == n else Named(n, f) for n, f in terms]
    return funcs, [float(weights.get(name, 1.0)) for name in names]


class Named:
    """A TRL reward function under its term's name (TRL logs ``rewards/<__name__>/mean``)."""

    def __init__(self, name: str, func: Callable):
        self.__name__, self.func = name, func

    def __call__(self, completions: list, solution: list | None = None, **kwargs) -> list:
        return self.func(completions, solution, **kwargs)
