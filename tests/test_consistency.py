"""Reasoning-answer consistency terms: the domain-free rule (``segzero.rewards.consistency``: the answer box agrees
with a box the reasoning states) and the shapes format's rule (``segzero.shapes.consistency``: the answer is the
listed shape the reasoning decides on), against oracles built from the shapes world's own scenes.

Run: ``pytest tests/test_consistency.py -q``
"""

from __future__ import annotations

import pytest

from segzero.rewards.consistency import box_consistency, stated_boxes
from segzero.shapes.consistency import decision_consistency
from segzero.shapes.perception import read_listing

ANSWER = '<answer>{{"bbox": [{},{},{},{}], "points_1": [5,5], "points_2": [6,6]}}</answer>'


def _answer(*box) -> str:
    return ANSWER.format(*box)


@pytest.mark.parametrize(
    ("think", "answer", "expect"),
    [
        # the answer copies the stated box
        ("the cup [10,10,50,60]", _answer(10, 10, 50, 60), 1.0),
        # close enough: IoU 0.9
        ("the cup [10,10,50,60]", _answer(10, 10, 50, 56), 1.0),
        # another place entirely
        ("the cup [10,10,50,60]", _answer(100, 100, 150, 160), 0.0),
        # agreeing with any stated box counts (the second of two)
        ("a plate [0,0,5,5] and the cup [10, 10, 50, 60]", _answer(10, 10, 50, 60), 1.0),
        # nothing stated: not judged
        ("the cup on the left", _answer(10, 10, 50, 60), None),
        # points alone are not a box
        ("the cup at (10,10)", _answer(10, 10, 50, 60), None),
        # a "nothing here" answer has no object to check
        ("the cup [10,10,50,60]", "<answer>[]</answer>", None),
        # an unreadable answer while boxes are stated
        ("the cup [10,10,50,60]", "<answer>{bbox: oops}</answer>", 0.0),
    ],
)
def test_box_consistency(think, answer, expect):
    assert box_consistency(f"<think>{think}</think>{answer}") == expect


def test_multi_object_answers_score_the_agreeing_fraction():
    answer = (
        '<answer>[{"bbox_2d": [10,10,50,60], "point_2d": [20,20]}, {"bbox_2d": [90,90,99,99], "point_2d": [95,95]}]'
    )
    assert box_consistency(f"<think>cups [10,10,50,60] [60,60,70,70]</think>{answer}</answer>") == 0.5


def test_stated_boxes_reads_decimals_and_spaces_in_order():
    assert stated_boxes("[1, 2, 3, 4] then [5.5,6,7,8]") == [(1.0, 2.0, 3.0, 4.0), (5.5, 6.0, 7.0, 8.0)]


def _scenes(n: int = 24):
    from segzero.shapes import ShapesConfig, make_sample
    from segzero.shapes.perception import seen_shapes

    config = ShapesConfig(size=128, min_shapes=2, max_shapes=3, overlap=False)
    for i in range(n):
        shapes = seen_shapes(make_sample(i, seed=3, config=config, split="val", layout="eval"))
        if len(shapes) >= 2:
            yield shapes


def test_decision_consistency_agrees_exactly_when_the_answer_is_the_decided_shape():
    # oracle: the target format itself (``format_completion``) decides on shape ``pick``; the answer of shape ``j``
    # is spliced in; the term must be 1 exactly when j == pick (shapes do not overlap in this world)
    from segzero.shapes.perception import format_completion

    checked = 0
    for shapes in _scenes():
        for pick in range(len(shapes)):
            think = format_completion(shapes, pick).split("<answer>")[0]
            for j, other in enumerate(shapes):
                got = decision_consistency(f"{think}<answer>{other.answer()}</answer>")
                assert got == float(j == pick), (pick, j, think)
                checked += 1
    assert checked > 50


@pytest.mark.parametrize(
    ("decision", "answer", "expect"),
    [
        # decides on listed shape 2 and answers its box
        ("The query means the blue square, 2.", _answer(50, 50, 90, 90), 1.0),
        # the decision's name does not match listed entry 2
        ("The query means the red square, 2.", _answer(50, 50, 90, 90), 0.0),
        # a number the listing lacks
        ("The query means the blue square, 3.", _answer(50, 50, 90, 90), 0.0),
        # no decision at all
        ("", _answer(50, 50, 90, 90), 0.0),
        # "nothing" with the "nothing here" answer
        ("The query means nothing.", "<answer>[]</answer>", 1.0),
        # "nothing" while boxing a shape
        ("The query means nothing.", _answer(50, 50, 90, 90), 0.0),
        # the last decision counts
        ("The query means the red circle, 1. The query means the blue square, 2.", _answer(50, 50, 90, 90), 1.0),
        # an unreadable answer
        ("The query means the blue square, 2.", "<answer>{oops</answer>", 0.0),
    ],
)
def test_decision_consistency_cases(decision, answer, expect):
    listing = "I see 1 red circle [1,2,30,40] (9,9) (8,8) area 9; 2 blue square [50,50,90,90] (70,70) (60,60) area 12."
    assert decision_consistency(f"<think>{listing} {decision}</think>{answer}") == expect


def test_listed_shapes_keeps_the_first_entry_of_each_number():
    think = (
        "I see 1 red circle [1,2,3,4] (2,3) (2,3) area 9. Ranked largest first: 1 red circle. 1 red circle [9,9,9,9]"
    )
    assert read_listing(think) == {1: ("red", "circle", (1, 2, 3, 4))}
