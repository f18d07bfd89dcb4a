"""Shapes-world query semantics: parameter samplers (``p_*``) and answer rules (``a_*`` and the ``*_rule``
factories) that ``segzero.shapes.queries.TEMPLATES`` combines with wordings.

A sampler ``p_x(rng, shapes, config) -> dict | None`` draws a template's parameters (``None``: this scene offers
none, e.g. no shape has a unique name to refer to). A rule ``a_x(shapes, params, config) -> tuple[int, ...] | None``
returns the indices of every shape the query means, or ``None`` when the scene makes it unclear (see the
semantics in ``segzero.shapes.queries``). Imports only numpy.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from segzero.shapes.scene import CORNERS, Shape

EXTREMES = {"left": "leftmost", "right": "rightmost", "top": "topmost", "bottom": "bottommost"}
RELATIONS = {"left": "left of", "right": "right of", "above": "above", "below": "below"}
NUMBERS = {3: "three", 4: "four", 5: "five", 6: "six", 10: "ten"}
AFFORDANCES: dict[str, tuple[str, ...]] = {
    "roll": ("circle",),
    "stack": ("square", "hexagon"),
    "sharp": ("triangle", "star"),
    "sky": ("star",),
    "honeycomb": ("hexagon",),
}


# ----------------------------------------------------------------------------- parameter samplers
def pick(rng: np.random.Generator, items):
    """One element of ``items``, drawn uniformly with ``rng``."""
    items = list(items)
    return items[int(rng.integers(len(items)))]


def _colour(rng, shapes, config) -> str:
    """A colour in the scene (3 in 4) or any colour of the config (may be absent: a no-answer query)."""
    return pick(rng, [s.colour for s in shapes]) if rng.random() < 0.75 else pick(rng, config.colours)


def _kind(rng, shapes, config) -> str:
    return pick(rng, [s.kind for s in shapes]) if rng.random() < 0.75 else pick(rng, config.kinds)


def _ref(rng, shapes) -> dict | None:
    """A reference shape and a name for it: ``ref`` (index), ``ref_colour`` ('' = kind alone), ``ref_kind``."""
    i = int(rng.integers(len(shapes)))
    s = shapes[i]
    names = []
    if sum(t.kind == s.kind and t.colour == s.colour for t in shapes) == 1:
        names.append(s.colour)
    if sum(t.kind == s.kind for t in shapes) == 1:
        names.append("")
    if not names:
        return None
    return {"ref": i, "ref_colour": pick(rng, names), "ref_kind": s.kind}


def p_none(rng, shapes, config) -> dict:
    return {}


def p_colour(rng, shapes, config) -> dict:
    return {"colour": _colour(rng, shapes, config)}


def p_kind(rng, shapes, config) -> dict:
    return {"kind": _kind(rng, shapes, config)}


def p_name(rng, shapes, config) -> dict:
    if rng.random() < 0.75:
        s = pick(rng, shapes)
        return {"colour": s.colour, "kind": s.kind}
    return {"colour": pick(rng, config.colours), "kind": pick(rng, config.kinds)}


def p_direction(rng, shapes, config) -> dict:
    return {"direction": pick(rng, EXTREMES)}


def p_direction_kind(rng, shapes, config) -> dict:
    return {"direction": pick(rng, EXTREMES), "kind": _kind(rng, shapes, config)}


def p_relation(rng, shapes, config) -> dict | None:
    ref = _ref(rng, shapes)
    return None if ref is None else {**ref, "rel": pick(rng, RELATIONS)}


def p_relation_kind(rng, shapes, config) -> dict | None:
    ref = _ref(rng, shapes)
    return None if ref is None else {**ref, "rel": pick(rng, RELATIONS), "kind": _kind(rng, shapes, config)}


def p_ref(rng, shapes, config) -> dict | None:
    return _ref(rng, shapes)


def p_corners(rng, shapes, config) -> dict | None:
    counts = [CORNERS[k] for k in config.kinds if CORNERS[k] in NUMBERS]
    present = [s.corners for s in shapes if s.corners in NUMBERS]
    if not counts:
        return None
    return {"n": pick(rng, present) if present and rng.random() < 0.75 else pick(rng, counts)}


# ----------------------------------------------------------------------------- answer rules
def _extreme(values: dict[int, float], *, largest: bool, ratio: float | None = None, margin: float = 0.0):
    """The unique extreme key of ``values`` (``()`` when empty), ``None`` when the runner-up is too close."""
    if not values:
        return ()
    order = sorted(values, key=values.__getitem__, reverse=largest)
    if len(order) == 1:
        return (order[0],)
    best, second = values[order[0]], values[order[1]]
    if ratio is not None:
        clear = best >= ratio * second if largest else second >= ratio * best
    else:
        clear = abs(best - second) > margin
    return (order[0],) if clear else None


def _where(shapes, keep) -> tuple[int, ...]:
    return tuple(i for i, s in enumerate(shapes) if keep(s))


def a_name(shapes, p, config):
    return _where(shapes, lambda s: s.colour == p["colour"] and s.kind == p["kind"])


def a_colour(shapes, p, config):
    return _where(shapes, lambda s: s.colour == p["colour"])


def a_kind(shapes, p, config):
    return _where(shapes, lambda s: s.kind == p["kind"])


def size_rule(largest: bool, by_colour: bool):
    def answer(shapes, p, config):
        areas = {i: float(s.area) for i, s in enumerate(shapes) if not by_colour or s.colour == p["colour"]}
        return _extreme(areas, largest=largest, ratio=config.area_ratio)

    return answer


def _extent(s: Shape) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(s.full_mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def a_extreme(shapes, p, config):
    d = p["direction"]
    axis, largest = {"left": (0, False), "right": (0, True), "top": (1, False), "bottom": (1, True)}[d]
    idx = [i for i, s in enumerate(shapes) if "kind" not in p or s.kind == p["kind"]]
    margin = config.margin_frac * config.side
    by_centre = _extreme({i: (shapes[i].cx, shapes[i].cy)[axis] for i in idx}, largest=largest, margin=margin)
    edge = axis + (2 if largest else 0)
    by_edge = _extreme({i: float(_extent(shapes[i])[edge]) for i in idx}, largest=largest, margin=margin)
    return by_centre if by_centre == by_edge else None


def _offset(s: Shape, ref: Shape, rel: str) -> float:
    """How far ``s``'s centre lies on the ``rel`` side of ``ref``'s centre (pixels; negative = other side)."""
    return {"left": ref.cx - s.cx, "right": s.cx - ref.cx, "above": ref.cy - s.cy, "below": s.cy - ref.cy}[rel]


def a_relation(shapes, p, config):
    ref = shapes[p["ref"]]
    margin = config.margin_frac * config.side
    cands = [i for i, s in enumerate(shapes) if i != p["ref"] and ("kind" not in p or s.kind == p["kind"])]
    offsets = {i: _offset(shapes[i], ref, p["rel"]) for i in cands}
    if any(abs(v) <= margin for v in offsets.values()):
        return None
    return tuple(i for i in cands if offsets[i] > margin)


def a_closest(shapes, p, config):
    ref = shapes[p["ref"]]
    dist = {i: float(np.hypot(s.cx - ref.cx, s.cy - ref.cy)) for i, s in enumerate(shapes) if i != p["ref"]}
    return _extreme(dist, largest=False, ratio=config.distance_ratio)


def corner_rule(most: bool):
    def answer(shapes, p, config):
        best = (max if most else min)(s.corners for s in shapes)
        return _where(shapes, lambda s: s.corners == best)

    return answer


def a_n_corners(shapes, p, config):
    return _where(shapes, lambda s: s.corners == p["n"])


def a_more_corners(shapes, p, config):
    ref = shapes[p["ref"]]
    return _where(shapes, lambda s: s.corners > ref.corners)


def a_unique_colour(shapes, p, config):
    counts = Counter(s.colour for s in shapes)
    return _where(shapes, lambda s: counts[s.colour] == 1)


def a_common_colour(shapes, p, config):
    counts = Counter(s.colour for s in shapes).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None
    return _where(shapes, lambda s: s.colour == counts[0][0])


def afford_rule(kinds: tuple[str, ...]):
    def answer(shapes, p, config):
        return _where(shapes, lambda s: s.kind in kinds)

    return answer


__all__ = [
    "AFFORDANCES",
    "EXTREMES",
    "NUMBERS",
    "RELATIONS",
    "a_closest",
    "a_colour",
    "a_common_colour",
    "a_extreme",
    "a_kind",
    "a_more_corners",
    "a_n_corners",
    "a_name",
    "a_relation",
    "a_unique_colour",
    "afford_rule",
    "corner_rule",
    "p_colour",
    "p_corners",
    "p_direction",
    "p_direction_kind",
    "p_kind",
    "p_name",
    "p_none",
    "p_ref",
    "p_relation",
    "p_relation_kind",
    "pick",
    "size_rule",
]
