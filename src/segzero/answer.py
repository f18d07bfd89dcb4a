"""Typed answers: what a reasoning model said, parsed once.

Every consumer (rewards, metrics, pipeline, evaluation, serving) works on these types rather than on raw
strings. Coordinates are floats in whatever frame the producer states: model answers are in the model
frame (840 x 840 by default); pipeline results are in original-image pixels.

- ``SegObject``: one object, a box ``(x1, y1, x2, y2)`` (inclusive pixel box, may be ``None`` when the
  answer had points only), zero, one or two points ``((x, y), ...)`` and, when the answer names it, a ``label``
  (the phrase an item's ``"label"`` gives, e.g. Qwen3-VL's grounding items; a concept segmenter prompts with it).
- ``Answer``: the think text, the objects, the layout it was read from (``"single"`` for Seg-Zero's
  ``bbox/points_1/points_2``, ``"multi"`` for VisionReasoner's list of ``bbox_2d/point_2d``), and whether
  parsing succeeded. A failed parse is a value (``ok == False`` with a ``reason``), never an exception.
  An empty ``objects`` tuple with ``ok == True`` is a valid "nothing here" answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Box = tuple[float, float, float, float]
Point = tuple[float, float]
Layout = Literal["single", "multi"]

KINDS: tuple[str, ...] = ("segzero", "visionreasoner")
"""The two answer families, one name each for rewards, gt and recipes (``reward_kind``): Seg-Zero's single object
(``bbox``/``points_1``/``points_2``) and VisionReasoner's list of objects (``bbox_2d``/``point_2d``)."""
LAYOUT_OF: dict[str, Layout] = {"segzero": "single", "visionreasoner": "multi"}
"""Answer family -> the ``Layout`` its answers and gt are written in."""


@dataclass(frozen=True)
class SegObject:
    """One object: an inclusive pixel box ``(x1, y1, x2, y2)``, up to two points ``(x, y)`` and an optional
    ``label`` (a short phrase naming it; None when the answer gives none)."""

    box: Box | None
    points: tuple[Point, ...] = ()
    label: str | None = None

    def __repr__(self) -> str:  # the label only when there is one: unlabelled objects read as they always have
        label = "" if self.label is None else f", label={self.label!r}"
        return f"SegObject(box={self.box!r}, points={self.points!r}{label})"

    def to_dict(self) -> dict:
        """JSON-ready form: ``{"box": [x1, y1, x2, y2] | None, "points": [[x, y], ...]}``, plus ``"label"`` when
        the object has one."""
        out: dict = {
            "box": None if self.box is None else [float(v) for v in self.box],
            "points": [[float(x), float(y)] for x, y in self.points],
        }
        if self.label is not None:
            out["label"] = self.label
        return out

    @classmethod
    def from_dict(cls, d: dict) -> SegObject:
        """Inverse of ``to_dict``."""
        box = d.get("box")
        return cls(
            box=None if box is None else tuple(float(v) for v in box),  # type: ignore[arg-type]
            points=tuple((float(p[0]), float(p[1])) for p in d.get("points", ())),
            label=d.get("label"),
        )


@dataclass(frozen=True)
class Answer:
    """A parsed completion.

    ``ok`` is False when no answer could be read; ``reason`` then says why in a short phrase.
    ``think`` is the text inside ``<think>...</think>`` (None when absent). ``layout`` says which answer
    format was recognised. ``raw`` keeps the completion text the answer came from. ``notes`` lists repairs a
    tolerant parse made (e.g. ``"object 0: box corners reordered"``); empty when the text was read as written.
    """

    objects: tuple[SegObject, ...] = ()
    think: str | None = None
    ok: bool = True
    reason: str = ""
    layout: Layout | None = None
    raw: str = field(default="", repr=False)
    notes: tuple[str, ...] = ()

    @classmethod
    def failure(cls, reason: str, *, raw: str = "", think: str | None = None) -> Answer:
        """A failed parse with a short ``reason``."""
        return cls(objects=(), think=think, ok=False, reason=reason, layout=None, raw=raw)


def segzero_answer_json(box, points) -> str:
    """Seg-Zero's single-object answer as strict JSON with integer pixels, spaced as the released models write it.

    >>> segzero_answer_json((1, 2, 30, 40), ((10, 20), (15.4, 25)))
    '{"bbox": [1,2,30,40], "points_1": [10,20], "points_2": [15,25]}'
    """
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    (a, b), (c, d) = ((int(round(v)) for v in p) for p in points[:2])
    return f'{{"bbox": [{x1},{y1},{x2},{y2}], "points_1": [{a},{b}], "points_2": [{c},{d}]}}'
