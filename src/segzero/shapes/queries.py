"""Shapes-world queries: templates in families, each answered exactly from the scene's shape list.

A ``Template`` has a ``name``, a ``family`` (``attribute``, ``superlative``, ``relation``, ``counting``,
``affordance``), seen ``wordings`` (train/val) and ``heldout`` wordings (test only), a parameter sampler and an
answer rule. ``answer`` returns the indices of every shape the query means (possibly none, possibly several), or
``None`` when the scene makes the query unclear (e.g. two shapes of almost the same size for "the largest
shape"); unclear queries are never emitted. Semantics (all in the image's pixel frame):

- size = whole-silhouette pixel area (``Shape.area``), clear when best >= ``area_ratio`` x runner-up;
- "left of X" = centre x smaller than X's by more than ``margin_frac * side``; no other candidate may sit within
  the margin (same for right of / above / below); extremes ("leftmost") must win by the margin both by centre and
  by silhouette extent; "closest to X" = centre distance, runner-up >= ``distance_ratio`` x nearest;
- corners = ``CORNERS`` (circle 0, triangle 3, square 4, pentagon 5, hexagon 6, star 10);
- affordances map to kinds (``segzero.shapes.rules.AFFORDANCES``): roll -> circle, stack -> square/hexagon
  (flat tops), sharp -> triangle/star, sky -> star, honeycomb -> hexagon.

The samplers and rules live in ``segzero.shapes.rules``; this module pairs them with wordings.

Usage::

    from segzero.shapes.queries import sample_query, TEMPLATES
    q = sample_query(shapes, config, rng, split="train", want="one")   # Query or None
    q.text, q.answers, q.template, q.wording, q.params

Imports only numpy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from segzero.shapes import rules
from segzero.shapes.scene import COLOURS, KINDS, PLURALS, Shape, ShapesConfig

FAMILIES: tuple[str, ...] = ("attribute", "superlative", "relation", "counting", "affordance")
WANTS = ("one", "none", "several", "any")


@dataclass(frozen=True)
class Query:
    """One generated query: its ``text``, the indices of the shapes it means (``answers``), the ``template`` and
    ``family`` it came from, the ``wording`` id (``name:s0`` seen / ``name:h0`` held out) and ``params``."""

    text: str
    answers: tuple[int, ...]
    template: str
    family: str
    wording: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Template:
    """A query template; ``params(rng, shapes, config) -> dict | None`` and ``answer(shapes, params, config)``."""

    name: str
    family: str
    wordings: tuple[str, ...]
    heldout: tuple[str, ...]
    params: Callable[[np.random.Generator, list[Shape], ShapesConfig], dict | None]
    answer: Callable[[list[Shape], dict, ShapesConfig], tuple[int, ...] | None]
    kinds: tuple[str, ...] | None = None  # the only kinds it can ever mean (None: any kind)


def answerable(template: Template, config: ShapesConfig) -> bool:
    """Whether ``template`` can mean a shape in some scene of the world ``config``: False for a query about kinds
    the world never draws ("a shape that twinkles at night" where there are no stars), which means nothing in every
    scene, so its "nothing here" answer can be told from the words alone.

    >>> answerable(BY_NAME["afford_sky"], ShapesConfig(kinds=("circle", "square")))
    False
    >>> answerable(BY_NAME["afford_sharp"], ShapesConfig(kinds=("circle", "triangle")))
    True
    """
    return template.kinds is None or bool(set(template.kinds) & set(config.kinds))


# ----------------------------------------------------------------------------- the templates
def _t(name, family, wordings, heldout, params, answer, kinds=None) -> Template:
    return Template(name, family, tuple(wordings), tuple(heldout), params, answer, kinds)


def _afford(name: str, wordings, heldout) -> Template:
    kinds = rules.AFFORDANCES[name]
    return _t(f"afford_{name}", "affordance", wordings, heldout, rules.p_none, rules.afford_rule(kinds), kinds)


TEMPLATES: tuple[Template, ...] = (
    _t(
        "name",
        "attribute",
        ["the {colour} {kind}", "find the {colour} {kind}"],
        ["the {kind} that is {colour}"],
        rules.p_name,
        rules.a_name,
    ),
    _t(
        "colour_all",
        "attribute",
        ["every {colour} shape", "all the {colour} shapes"],
        ["anything coloured {colour}"],
        rules.p_colour,
        rules.a_colour,
    ),
    _t(
        "kind_all",
        "attribute",
        ["every {kind}", "all the {kinds}"],
        ["each {kind} in the picture"],
        rules.p_kind,
        rules.a_kind,
    ),
    _t(
        "largest",
        "superlative",
        ["the largest shape", "the biggest shape"],
        ["the shape that covers the most area"],
        rules.p_none,
        rules.size_rule(True, False),
    ),
    _t(
        "smallest",
        "superlative",
        ["the smallest shape", "the tiniest shape"],
        ["the shape that covers the least area"],
        rules.p_none,
        rules.size_rule(False, False),
    ),
    _t(
        "largest_colour",
        "superlative",
        ["the largest {colour} shape", "the biggest {colour} shape"],
        ["the {colour} shape with the greatest area"],
        rules.p_colour,
        rules.size_rule(True, True),
    ),
    _t(
        "smallest_colour",
        "superlative",
        ["the smallest {colour} shape", "the tiniest {colour} shape"],
        ["the {colour} shape with the least area"],
        rules.p_colour,
        rules.size_rule(False, True),
    ),
    _t(
        "extreme",
        "superlative",
        ["the {extreme} shape", "the {extreme} object"],
        ["the shape nearest the {side} edge"],
        rules.p_direction,
        rules.a_extreme,
    ),
    _t(
        "extreme_kind",
        "superlative",
        ["the {extreme} {kind}"],
        ["of all the {kinds}, the {extreme} one"],
        rules.p_direction_kind,
        rules.a_extreme,
    ),
    _t(
        "relation",
        "relation",
        ["the shape {rel} the {ref}", "the object {rel} the {ref}"],
        ["whatever lies {rel} the {ref}"],
        rules.p_relation,
        rules.a_relation,
    ),
    _t(
        "relation_kind",
        "relation",
        ["the {kind} {rel} the {ref}"],
        ["any {kind} that is {rel} the {ref}"],
        rules.p_relation_kind,
        rules.a_relation,
    ),
    _t(
        "closest",
        "relation",
        ["the shape closest to the {ref}", "the shape nearest to the {ref}"],
        ["the closest neighbour of the {ref}"],
        rules.p_ref,
        rules.a_closest,
    ),
    _t(
        "most_corners",
        "counting",
        ["the shape with the most corners", "the shape that has the most corners"],
        ["the shape with the largest number of corners"],
        rules.p_none,
        rules.corner_rule(True),
    ),
    _t(
        "fewest_corners",
        "counting",
        ["the shape with the fewest corners", "the shape that has the fewest corners"],
        ["the shape with the smallest number of corners"],
        rules.p_none,
        rules.corner_rule(False),
    ),
    _t(
        "n_corners",
        "counting",
        ["the shapes with {n} corners", "every shape with {n} corners"],
        ["each shape that has exactly {n} corners"],
        rules.p_corners,
        rules.a_n_corners,
    ),
    _t(
        "more_corners",
        "counting",
        ["the shapes with more corners than the {ref}"],
        ["every shape having a higher corner count than the {ref}"],
        rules.p_ref,
        rules.a_more_corners,
    ),
    _t(
        "unique_colour",
        "counting",
        ["every shape whose colour no other shape has", "the shapes alone in their colour"],
        ["each shape with a colour of its own"],
        rules.p_none,
        rules.a_unique_colour,
    ),
    _t(
        "common_colour",
        "counting",
        ["the shapes of the most common colour", "every shape in the most frequent colour"],
        ["all shapes sharing the colour that appears most often"],
        rules.p_none,
        rules.a_common_colour,
    ),
    _afford(
        "roll",
        ["something that could roll", "a shape that would roll down a slope"],
        ["whatever could roll away if pushed"],
    ),
    _afford(
        "stack",
        ["something with a flat top to stack things on", "a shape you could balance a cup on"],
        ["anything whose top is flat enough to put a box on"],
    ),
    _afford(
        "sharp",
        ["something sharp enough to poke you", "a shape with a spiky tip"],
        ["anything with a pointy tip that could prick a finger"],
    ),
    _afford(
        "sky",
        ["something you could see in the night sky", "a shape that twinkles at night"],
        ["what you might wish upon after dark"],
    ),
    _afford(
        "honeycomb",
        ["the shape of a honeycomb cell", "a shape bees build with"],
        ["the shape of a cell in a beehive"],
    ),
)
BY_NAME: dict[str, Template] = {t.name: t for t in TEMPLATES}


def wordings(template: Template, split: str) -> list[tuple[str, str]]:
    """``(wording id, wording)`` pairs a split may use: held-out ones for ``test``, seen ones otherwise."""
    if split == "test":
        return [(f"{template.name}:h{i}", w) for i, w in enumerate(template.heldout)]
    return [(f"{template.name}:s{i}", w) for i, w in enumerate(template.wordings)]


def render_text(wording: str, params: dict, shapes: list[Shape]) -> str:
    """Fill a wording's slots from ``params`` (``{ref}`` becomes 'red circle' or 'circle')."""
    words = {
        "colour": params.get("colour", ""),
        "kind": params.get("kind", ""),
        "kinds": PLURALS.get(params.get("kind", ""), ""),
        "extreme": rules.EXTREMES.get(params.get("direction", ""), ""),
        "side": params.get("direction", ""),
        "rel": rules.RELATIONS.get(params.get("rel", ""), ""),
        "n": rules.NUMBERS.get(params.get("n", -1), ""),
        "ref": " ".join(w for w in (params.get("ref_colour", ""), params.get("ref_kind", "")) if w),
    }
    return wording.format(**words)


def corpus() -> tuple[str, ...]:
    """Text covering every word the queries use (each wording, seen and held out, plus every slot filler): for
    training a small tokenizer on the shapes world."""
    fill = {"colour": "red", "kind": "circle", "direction": "left", "rel": "left", "n": 3, "ref_kind": "square"}
    lines = [render_text(w, fill, []) for t in TEMPLATES for w in (*t.wordings, *t.heldout)]
    lines.append(", ".join([*COLOURS, *KINDS, *PLURALS.values(), *rules.EXTREMES.values(), *rules.EXTREMES]))
    lines.append(", ".join([*rules.RELATIONS.values(), *rules.NUMBERS.values()]))
    return tuple(lines)


def _fits(want: str, n: int) -> bool:
    return {"one": n == 1, "none": n == 0, "several": n >= 2, "any": True}[want]


def sample_query(
    shapes: list[Shape],
    config: ShapesConfig,
    rng: np.random.Generator,
    *,
    split: str = "train",
    want: str = "one",
    families: tuple[str, ...] = FAMILIES,
    tries: int = 40,
    answerable_only: bool = False,
) -> Query | None:
    """A clear query about ``shapes`` whose answer count fits ``want`` (``one``, ``none``, ``several``, ``any``).

    Family uniform over ``families``, then template uniform within it, then its parameters and a wording of
    ``split``. ``answerable_only``: only templates that can mean a shape in the world (``answerable``), so that a
    "nothing here" query is one the scene decides. Returns ``None`` when ``tries`` draws found none (the caller
    redraws the scene).
    """
    if want not in WANTS:
        raise ValueError(f"want must be one of {WANTS}, got {want!r}")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families or not shapes:
        raise ValueError(f"need shapes and families from {FAMILIES}; got unknown {unknown}")
    for _ in range(tries):
        family = rules.pick(rng, families)
        options = [t for t in TEMPLATES if t.family == family and (not answerable_only or answerable(t, config))]
        if not options:
            continue
        template = rules.pick(rng, options)
        params = template.params(rng, shapes, config)
        if params is None:
            continue
        answers = template.answer(shapes, params, config)
        if answers is None or not _fits(want, len(answers)):
            continue
        options = wordings(template, split)
        wid, wording = options[int(rng.integers(len(options)))]
        return Query(render_text(wording, params, shapes), tuple(answers), template.name, family, wid, params)
    return None


__all__ = [
    "BY_NAME",
    "FAMILIES",
    "TEMPLATES",
    "Query",
    "Template",
    "answerable",
    "corpus",
    "sample_query",
    "wordings",
]
