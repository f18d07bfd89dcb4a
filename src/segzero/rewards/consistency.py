"""Reasoning-answer consistency: does the answer box what the reasoning says it found? Light: stdlib only.

The paper's rewards (format, box IoU, box L1, points) score the answer alone; nothing ties the answer to the
reasoning before it, and a policy trained on them drifts into reasonings that state one object while the answer
boxes another. This term scores that tie with a rule that needs no knowledge of the domain:

    Every answer box must agree (box IoU >= ``iou_threshold``, 0.5) with a box the reasoning states, in the
    same frame; the score is the fraction of answer objects that do, in [0, 1]. A reasoning that states no
    box is not judged: the score is ``None`` (TRL leaves a ``None`` out of the weighted sum and of the logged
    mean), and so is a "nothing here" answer (no object to check). An answer that cannot be parsed while the
    reasoning states boxes scores 0.

A box *stated* in the reasoning is four whole or decimal numbers in square brackets, ``[x1,y1,x2,y2]``
(spaces allowed), the way a Qwen-VL model writes a box in prose. Released Seg-Zero and VisionReasoner reasonings
rarely state one, so for them the term is mostly ``None``; it matters for policies whose reasoning lists what
they see (as the shapes world's does, which has a stricter rule of its own: ``segzero.shapes.consistency``).

Not one of the paper's terms: off unless a recipe adds it (``reward_plugins:
["segzero.rewards.consistency:box_consistency"]`` in ``segzero train``).

>>> box_consistency('<think>The mug [10,10,50,60] is left.</think><answer>{"bbox": [11,10,50,58], '
...                 '"points_1": [20,30], "points_2": [30,40]}</answer>')
1.0
>>> box_consistency('<think>The mug [10,10,50,60].</think><answer>{"bbox": [100,100,150,160], '
...                 '"points_1": [120,130], "points_2": [130,140]}</answer>')
0.0
>>> box_consistency('<think>A mug on the left.</think><answer>{"bbox": [1,1,5,5], '
...                 '"points_1": [2,2], "points_2": [3,3]}</answer>') is None
True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from segzero.answer import Answer, Box
from segzero.geometry import box_iou
from segzero.parsing import parse_answer

AGREE_IOU = 0.5
"""Box IoU at or above which an answer box agrees with a box the reasoning states (the paper's box IoU bar)."""

_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_BOX_RE = re.compile(r"\[" + ",".join([_NUM] * 4) + r"\]")


def stated_boxes(think: str | None) -> list[Box]:
    """The ``[x1,y1,x2,y2]`` boxes a reasoning states, in reading order (model frame, as written).

    >>> stated_boxes("I see 1 red circle [18,18,56,56] (37,37) (30,40) area 76; 2 cup [1.5, 2, 3, 4].")
    [(18.0, 18.0, 56.0, 56.0), (1.5, 2.0, 3.0, 4.0)]
    """
    return [tuple(float(v) for v in m.groups()) for m in _BOX_RE.finditer(think or "")]  # type: ignore[misc]


def agreement(answer: Answer, stated: Sequence[Box], *, iou_threshold: float = AGREE_IOU) -> float | None:
    """The fraction of ``answer``'s objects whose box agrees with one of ``stated`` (see the module docstring);
    ``None`` when nothing is stated or the answer is a valid "nothing here"."""
    if not stated:
        return None
    if not answer.ok:
        return 0.0
    if not answer.objects:
        return None
    agree = [o.box is not None and any(box_iou(o.box, s) >= iou_threshold for s in stated) for o in answer.objects]
    return sum(agree) / len(agree)


def box_consistency(completion: Any, solution: Any = None, *, iou_threshold: float = AGREE_IOU, **columns: Any):
    """The consistency score of one completion (str or chat message list): ``agreement`` of its answer with the
    boxes its reasoning states. ``solution`` and the row's other columns are accepted and not used: the term looks
    at the completion alone."""
    answer = parse_answer(completion)
    return agreement(answer, stated_boxes(answer.think), iou_threshold=iou_threshold)
