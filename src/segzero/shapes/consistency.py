"""Reasoning-answer consistency for the shapes reasoning format: the answer must be the listed shape the
reasoning decides on.

A shapes-world reasoning lists every shape it sees, numbered, each with its box, then decides::

    I see 1 purple triangle [20,65,66,110] (43,92) (35,100) area 61; 2 red square [45,13,82,50] (63,31)
    (74,42) area 83. The query means the red square, 2.

``decision_consistency`` is 1.0 when the answer's box agrees (box IoU >= ``iou_threshold``, 0.5; a copy of the
listed numbers gives 1.0) with the box listed under the number the decision names, and that listed entry has the
colour and kind the decision names; "The query means nothing." agrees with the "nothing here" answer ``[]``.
Anything else is 0.0: a reasoning without a decision, a decision naming a number the listing lacks, an
unreadable answer, or an answer boxing another shape. Boxes are compared in the model frame, as written. The
domain-free rule for other reasonings is ``segzero.rewards.consistency.box_consistency``.

Used as a reward plug-in of ``segzero train`` (``reward_plugins``); logged as ``rewards/decision_consistency/mean``.

>>> think = "I see 1 red circle [1,2,30,40] (9,9) (8,8) area 9; 2 blue square [50,50,90,90] (70,70) (60,60) area 12."
>>> answer = '<answer>{"bbox": [50,50,90,90], "points_1": [70,70], "points_2": [60,60]}</answer>'
>>> decision_consistency(f"<think>{think} The query means the blue square, 2.</think>{answer}")
1.0
>>> decision_consistency(f"<think>{think} The query means the red circle, 1.</think>{answer}")
0.0
"""

from __future__ import annotations

from typing import Any

from segzero.geometry import box_iou
from segzero.parsing import parse_answer
from segzero.rewards.consistency import AGREE_IOU
from segzero.shapes.perception import read_decision, read_listing


def decision_consistency(completion: Any, solution: Any = None, *, iou_threshold: float = AGREE_IOU, **columns: Any):
    """1.0 when the answer is the listed shape the reasoning's last decision names, else 0.0 (module docstring).
    ``solution`` and the row's other columns are accepted and not used."""
    answer = parse_answer(completion)
    decided = read_decision(answer.think)
    if not answer.ok or decided is None:
        return 0.0
    if decided == "nothing":
        return float(not answer.objects)
    colour, kind, number = decided
    entry = read_listing(answer.think).get(number)
    if entry is None or entry[:2] != (colour, kind) or len(answer.objects) != 1:
        return 0.0
    box = answer.objects[0].box
    return float(box is not None and box_iou(box, entry[2]) >= iou_threshold)
