"""The perception warm-up of the shapes recipe: teach a from-scratch reasoner to *see* before GRPO teaches it to *reason*.

Why: Seg-Zero starts GRPO from Qwen2.5-VL, which already names and boxes the objects of an image from its
pretraining; RL then only has to learn which object a query means. A model built from scratch has neither. The
perception warm-up supplies the first part and nothing more: a supervised, teacher-forced fine-tune whose target
lists every shape of the scene, left to right, with its box, two points (the same box and points as the gt of
that shape) and its area, then names one listed shape and copies its numbers into a Seg-Zero answer::

    <think>I see 1 purple triangle [20,65,66,110] (43,92) (35,100) area 61; 2 red square [45,13,82,50]
    (63,31) (74,42) area 83. The query means the red square, 2.</think><answer>{"bbox": [45,13,82,50],
    "points_1": [63,31], "points_2": [74,42]}</answer>

The decision names the shape first ("the red square"), then its number in the list (two shapes may share a name):
naming is a copy of the query's words for naming queries, and the number and the answer's numbers then follow the
listed name (what a small transformer learns first: find the earlier occurrence, copy what is next to it). The area (visible pixels per thousand pixels of the image,
so the same at every frame) makes "the largest shape" a comparison of one number per shape.

``choice`` says which shape the warm-up target picks:

- ``"random"`` (the recipe's warm-up): a shape drawn uniformly, independently of the query: the query is never
  supervised, so the warm-up model sees and copies but does not reason (it is right 1 time in 2-3). GRPO then has
  to learn the choice from the rewards alone, which is the part the paper trains.
- ``"gt"``: the shape the query means (supervised fine-tuning on gt answers; the SFT arm of the comparison).

Coordinates are integer pixels of the model frame (the scene is drawn at the frame). Each row is drawn on the fly
from the shapes world (``make_sample(index)``), so thousands of steps never repeat a scene.

Usage (normally through ``segzero train`` with ``sft_target: perception``)::

    from segzero.train.perception import perception_completion
    text = perception_completion(make_sample(0, config=ShapesConfig(size=128)), choice="gt")
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from segzero.answer import segzero_answer_json
from segzero.points import mask_to_object

CHOICES: tuple[str, ...] = ("random", "gt")
# The sentence that names the picked shape: "The query means the red square, 2." (see ``named_shape``); DECISION is
# where it starts (the reasoning's conclusion, after the listing).
DECISION = "The query means"
PER_MILLE = 1000  # SeenShape.area: visible pixels per this many pixels of the image
_MEANS = DECISION + " the {colour} {kind}, {index}."
_MEANS_RE = re.compile(r"The query means the (\w+) (\w+), \d+\.")


@dataclass(frozen=True)
class SeenShape:
    """One listed shape: ``colour``, ``kind``, inclusive ``box`` (x1, y1, x2, y2) and two ``points`` (x, y), ints
    in the model frame (``segzero.points.mask_to_object`` of its visible mask); ``area``: visible pixels per
    thousand pixels of the image (int); ``index`` in the scene's order."""

    index: int
    colour: str
    kind: str
    box: tuple[int, int, int, int]
    points: tuple[tuple[int, int], tuple[int, int]]
    area: int

    def listing(self) -> str:
        """``purple triangle [20,65,66,110] (43,92) (35,100) area 61``"""
        (a, b), (c, d) = self.points
        return f"{self.colour} {self.kind} [{','.join(map(str, self.box))}] ({a},{b}) ({c},{d}) area {self.area}"

    def answer(self) -> str:
        """The Seg-Zero answer JSON of this shape: ``{"bbox": [..], "points_1": [..], "points_2": [..]}``."""
        return segzero_answer_json(self.box, self.points)


def seen_shapes(sample: dict) -> list[SeenShape]:
    """The shapes of a ``segzero.worlds.shapes.make_sample`` sample, left to right (box centre x, then y)."""
    out = []
    for i, (facts, mask) in enumerate(zip(sample["shapes"], sample["shape_masks"], strict=True)):
        obj = mask_to_object(mask)
        if obj is None:  # a fully hidden shape is not part of the scene the model can see
            continue
        box = tuple(int(round(v)) for v in obj.box)
        (p1, p2) = (tuple(int(round(v)) for v in p) for p in obj.points[:2])
        area = int(round(PER_MILLE * float(mask.sum()) / mask.size))
        out.append(SeenShape(i, facts["colour"], facts["kind"], box, (p1, p2), area))
    return sorted(out, key=lambda s: (s.box[0] + s.box[2], s.box[1] + s.box[3], s.index))


def perception_completion(sample: dict, *, choice: str = "random", rng: np.random.Generator | None = None) -> str:
    """The warm-up target of one sample (see the module docstring); ``rng`` draws the ``"random"`` pick."""
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
    shapes = seen_shapes(sample)
    if choice == "gt":
        (want,) = sample["answers"]
        pick = next(k for k, s in enumerate(shapes) if s.index == want)
    else:
        pick = int((rng or np.random.default_rng()).integers(len(shapes)))
    listed = "; ".join(f"{k + 1} {s.listing()}" for k, s in enumerate(shapes))
    chosen = shapes[pick]
    means = _MEANS.format(colour=chosen.colour, kind=chosen.kind, index=pick + 1)
    return f"<think>I see {listed}. {means}</think><answer>{chosen.answer()}</answer>"


def named_shape(think: str | None) -> tuple[str, str] | None:
    """``(colour, kind)`` that a perception-style reasoning names as its answer (the last "The query means" line);
    None when it names none.

    >>> named_shape("I see 1 red circle [1,2,3,4] (2,3) (2,3) area 9. The query means the red circle, 1.")
    ('red', 'circle')
    >>> named_shape("I look for the red circle.") is None
    True
    """
    found = _MEANS_RE.findall(think or "")
    return found[-1] if found else None
