"""Tests for segzero.rewards: every reward term at its boundaries, reference reading quirks, TRL wrappers.

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_rewards.py``
"""

from __future__ import annotations

import itertools
import json
import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segzero.answer import SegObject
from segzero.rewards import (
    SEGZERO_REWARDS,
    VISIONREASONER_REWARDS,
    multi,
    reward_functions,
    score,
    single,
)

GT = "<box>(100,100),(199,199)</box><points>(120,120),(180,180)</points>"


def seg(bbox, p1=(120, 120), p2=(180, 180), *, wrap=True, extra=""):
    d = {"bbox": list(bbox), "points_1": list(p1), "points_2": list(p2)}
    body = json.dumps(d) + extra
    return f"<think>the box</think><answer>{body}</answer>" if wrap else body


SEGZERO_CASES = [
    # perfect answer: all five terms
    (seg((100, 100, 199, 199)), (1, 1, 1, 1, 1)),
    # IoU exactly 0.5 (5000/10000) earns no IoU reward; L1 = 12.5 fails too
    (seg((100, 100, 149, 199), (120, 120), (140, 180)), (1, 1, 0, 0, 1)),
    # IoU 0.51 passes
    (seg((100, 100, 150, 199), (120, 120), (140, 180)), (1, 1, 1, 0, 1)),
    # every coordinate off by 10: L1 exactly 10 earns nothing, IoU 0.68 passes
    (seg((110, 110, 209, 209), (120, 120), (180, 180)), (1, 1, 1, 0, 1)),
    # L1 7.5 passes
    (seg((110, 110, 209, 199), (120, 120), (180, 180)), (1, 1, 1, 1, 1)),
    # points exactly on the box corners count as inside
    (seg((100, 100, 199, 199), (100, 100), (199, 199)), (1, 1, 1, 1, 1)),
    # float point 99.9 is truncated to 99, outside a box starting at 99.5 (reference truncation)
    (seg((99.5, 100, 199, 199), (99.9, 120), (180, 180)), (1, 1, 1, 1, 0)),
    # truncation toward zero: -0.5 -> 0, inside a box starting at 0
    (seg((0, 0, 839, 839), (-0.5, 120), (180, 180)), (1, 1, 0, 0, 1)),
    # mean matched point distance exactly 100: no point reward
    (seg((0, 0, 839, 839), (220, 120), (280, 180)), (1, 1, 0, 0, 0)),
    # 99.5 passes
    (seg((0, 0, 839, 839), (219, 120), (280, 180)), (1, 1, 0, 0, 1)),
    # points in swapped order: the better pairing is used
    (seg((100, 100, 199, 199), (180, 180), (120, 120)), (1, 1, 1, 1, 1)),
    # a point outside the predicted box voids the point reward even when close to gt
    (seg((100, 100, 199, 199), (120, 120), (200, 180)), (1, 1, 1, 1, 0)),
    # tags missing: think format 0, but format and accuracy are still scored (first {...} anywhere)
    (seg((100, 100, 199, 199), wrap=False), (0, 1, 1, 1, 1)),
    # text before <think>: fullmatch fails
    ("Sure! " + seg((100, 100, 199, 199)), (0, 1, 1, 1, 1)),
    # trailing newline after </answer>: fullmatch fails
    (seg((100, 100, 199, 199)) + "\n", (0, 1, 1, 1, 1)),
    # whitespace between </think> and <answer> is allowed
    (seg((100, 100, 199, 199)).replace("</think>", "</think>\n "), (1, 1, 1, 1, 1)),
    # the prompt's single-quoted example is not JSON: no format, no accuracy
    (seg((100, 100, 199, 199)).replace('"', "'"), (1, 0, 0, 0, 0)),
    # missing points: format 0, box terms still earned
    ('<think>t</think><answer>{"bbox": [100, 100, 199, 199]}</answer>', (1, 0, 1, 1, 0)),
    # points_1 with three numbers: format 0, point term reads the first two (reference behaviour)
    (
        '<think>t</think><answer>{"bbox": [100, 100, 199, 199], "points_1": [120, 120, 5], "points_2": [180, 180]}'
        "</answer>",
        (1, 0, 1, 1, 1),
    ),
    # NaN in the box: json.loads accepts it, but it is no number: format 0 and no box terms
    (
        '<think>t</think><answer>{"bbox": [NaN, 100, 199, 199], "points_1": [120, 120], "points_2": [180, 180]}'
        "</answer>",
        (1, 0, 0, 0, 0),
    ),
    # numeric strings are not numbers (the paper: "4 numbers")
    (
        '<think>t</think><answer>{"bbox": ["100", 100, 199, 199], "points_1": [120, 120], "points_2": [180, 180]}'
        "</answer>",
        (1, 0, 0, 0, 0),
    ),
    # inverted box (x2 < x1): IoU 0 and points cannot be inside; L1 still measured coordinate-wise
    (seg((199, 100, 100, 199)), (1, 1, 0, 0, 0)),
    # the first {...} is in the thinking: the reference reads that one (no answer keys) -> only think format
    ('<think>use {"x": 1}</think><answer>' + seg((100, 100, 199, 199), wrap=False) + "</answer>", (1, 0, 0, 0, 0)),
    # nested object: the reference's {[^}]+} starts at the outer brace and stops at the inner one: not JSON, 0
    ('<think>t</think><answer>{"result": ' + seg((100, 100, 199, 199), wrap=False) + "}</answer>", (1, 0, 0, 0, 0)),
    # empty completion
    ("", (0, 0, 0, 0, 0)),
    # box sharing one pixel column with gt: Seg-Zero's strict-overlap IoU is 0 (not 1/ tiny)
    (seg((199, 100, 298, 199), (199, 120), (250, 180)), (1, 1, 0, 0, 1)),
]


@pytest.mark.parametrize(
    ("completion", "expected"), SEGZERO_CASES, ids=[f"seg{i:02d}" for i in range(len(SEGZERO_CASES))]
)
def test_segzero_table(completion, expected):
    got = score("segzero", completion, GT)
    terms = ("think_format", "answer_format", "box_iou", "box_l1", "points")
    assert tuple(got[t] for t in terms) == tuple(float(v) for v in expected)
    assert got["total"] == sum(expected)


def test_segzero_solution_forms_agree():
    # the gt string, a typed SegObject and a chat-message completion give the same scores
    c = seg((100, 100, 149, 199), (120, 120), (140, 180))
    typed = SegObject((100, 100, 199, 199), ((120, 120), (180, 180)))
    chat = [{"role": "assistant", "content": [{"type": "text", "text": c}]}]
    assert score("segzero", c, GT) == score("segzero", c, typed) == score("segzero", chat, GT)


def test_segzero_thresholds_are_keywords():
    # loosening the IoU threshold turns the exactly-0.5 case into a pass
    c = seg((100, 100, 149, 199))
    assert single.box_iou(c, GT) == 0.0 and single.box_iou(c, GT, iou_threshold=0.49) == 1.0
    assert single.box_l1(seg((110, 110, 209, 209)), GT, l1_threshold=10.5) == 1.0


def test_segzero_bad_gt_raises():
    # malformed or multi-object gt is a data error, reported loudly
    with pytest.raises(ValueError):
        score("segzero", seg((1, 2, 3, 4)), "<box>(1,2)</box>")
    with pytest.raises(ValueError, match="exactly one"):
        single.box_iou(
            seg((1, 2, 3, 4)), '[{"bbox_2d": [1,2,3,4], "point_2d": [1,2]}, {"bbox_2d": [1,2,3,4], "point_2d": [1,2]}]'
        )


# --- VisionReasoner ----------------------------------------------------------------------------------------------
A = {"bbox_2d": [100, 100, 199, 199], "point_2d": [150, 150]}
B = {"bbox_2d": [400, 400, 499, 599], "point_2d": [450, 500]}
GT2 = json.dumps([A, B])


def vr(items, *, think=True):
    body = items if isinstance(items, str) else json.dumps(items)
    return f"<think>two. objects.</think><answer>{body}</answer>" if think else f"<answer>{body}</answer>"


def item(box, pt):
    return {"bbox_2d": list(box), "point_2d": list(pt)}


VR_CASES = [
    # both objects exact
    (vr([A, B]), GT2, 1, 2, 3),
    # order does not matter (Hungarian)
    (vr([B, A]), GT2, 1, 2, 3),
    # one of two found: 3 / max(1, 2)
    (vr([A]), GT2, 1, 2, 1.5),
    # an extra wrong object dilutes: 6 / 3
    (vr([A, B, item((700, 700, 800, 800), (750, 750))]), GT2, 1, 2, 2),
    # IoU exactly 0.5 and L1 12.5: only the point term (25 px, inside)
    (vr([item((100, 100, 149, 199), (125, 150))]), json.dumps([A]), 1, 2, 1),
    # L1 exactly 10 (all shifted by 10): IoU 0.68 + point 14.1 px -> 2
    (vr([item((110, 110, 209, 209), (160, 160))]), json.dumps([A]), 1, 2, 2),
    # point distance exactly 30: no point term
    (vr([item((100, 100, 199, 199), (180, 150))]), json.dumps([A]), 1, 2, 2),
    # point 29 px away but outside its own predicted box: no point term (IoU 0.51 counts, L1 12.25 does not)
    (vr([item((100, 100, 150, 199), (179, 150))]), json.dumps([A]), 1, 2, 1),
    # point on its box edge counts as inside
    (
        vr([item((100, 100, 199, 199), (199, 150))]),
        json.dumps([{"bbox_2d": [100, 100, 199, 199], "point_2d": [175, 150]}]),
        1,
        2,
        3,
    ),
    # empty prediction and empty gt: full accuracy (the reference gives 0); empty list is well formed
    (vr([]), "[]", 1, 2, 3),
    # empty prediction, objects in gt
    (vr([]), GT2, 1, 2, 0),
    # objects predicted, empty gt
    (vr([A]), "[]", 1, 2, 0),
    # an item without point_2d: format 1/1 for that item, accuracy 0
    (vr([A, {"bbox_2d": B["bbox_2d"]}]), GT2, 1, 1.5, 0),
    # a dict instead of a list: no format, no accuracy
    (vr(A), GT2, 1, 0, 0),
    # no think tags: think 0, accuracy still scored
    (vr([A, B], think=False), GT2, 0, 2, 3),
    # single-quoted list is not JSON
    (vr(json.dumps([A, B]).replace('"', "'")), GT2, 1, 0, 0),
    # non-dict item scores 0 and others keep theirs
    (vr([1, A]), GT2, 1, 1, 0),
    # numeric strings are not numbers
    (vr([item(("100", 100, 199, 199), (150, 150))]), json.dumps([A]), 1, 1, 0),
    # no closing answer tag
    ("<think>t</think><answer>" + json.dumps([A]), json.dumps([A]), 0, 0, 0),
    # three items averaged per item as the reference accumulates: 0 + 1/3 + 2/3
    (vr([{}, {"bbox_2d": [1, 2, 3, 4]}, A]), json.dumps([A]), 1, 0 + 1 / 3 + 2 / 3, 0),
]


@pytest.mark.parametrize(
    ("completion", "gt", "think", "fmt", "acc"), VR_CASES, ids=[f"vr{i:02d}" for i in range(len(VR_CASES))]
)
def test_visionreasoner_table(completion, gt, think, fmt, acc):
    got = score("visionreasoner", completion, gt)
    assert (got["think_format"], got["answer_format"], got["accuracy"]) == (think, fmt, acc)
    assert got["total"] == think + fmt + acc + got["non_repeat"]


NON_REPEAT_CASES = [
    # distinct sentences
    ("a. b. c.", 1),
    # one repeated sentence is tolerated
    ("a. a. b.", 1),
    # the same sentence three times: two repeats
    ("a. a. a.", 0),
    # two different sentences each repeated once: two repeats
    ("a. a. b. b.", 0),
    # empty pieces from '...' and '. .' are ignored, not counted as repeats
    ("wait... wait. . ok.", 1),
    # pieces are stripped before comparing
    (" a .a.  a ", 0),
    # decimal numbers split too (reference behaviour): "x 3" and "5" each repeat
    ("x 3.5. x 3.5.", 0),
    # no '.' at all
    ("", 1),
]


@pytest.mark.parametrize(("text", "expected"), NON_REPEAT_CASES)
def test_non_repeat_table(text, expected):
    assert multi.non_repeat(text) == expected


def test_max_objects_truncation():
    # the reference caps predictions at 120 before matching and dividing
    c = vr([A] * 130)
    assert multi.accuracy(c, json.dumps([A])) == 3 / 120
    assert multi.accuracy(c, json.dumps([A]), max_objects=200) == 3 / 130


def test_empty_definitions_are_keywords():
    # the empty-answer definitions can be set to the reference's 0
    assert multi.accuracy(vr([]), "[]", empty_score=0.0) == 0.0
    assert multi.answer_format(vr([]), empty_list_score=0.0) == 0.0


def _oracle_accuracy(pred, gt):
    """Brute force over all one-to-one assignments with an independent pair score."""

    def pair(p, g):
        (a1, b1, a2, b2), (c1, d1, c2, d2) = p["bbox_2d"], g["bbox_2d"]
        iw, ih = max(0, min(a2, c2) - max(a1, c1) + 1), max(0, min(b2, d2) - max(b1, d1) + 1)
        union = (a2 - a1 + 1) * (b2 - b1 + 1) + (c2 - c1 + 1) * (d2 - d1 + 1) - iw * ih
        iou = iw * ih / union
        l1 = sum(abs(x - y) for x, y in zip(p["bbox_2d"], g["bbox_2d"], strict=True)) / 4
        (px, py), (gx, gy) = p["point_2d"], g["point_2d"]
        inside = a1 <= px <= a2 and b1 <= py <= b2
        return (iou > 0.5) + (l1 < 10) + (inside and math.dist((px, py), (gx, gy)) < 30)

    if not pred and not gt:
        return 3.0
    if not pred or not gt:
        return 0.0
    small, big, swap = (pred, gt, False) if len(pred) <= len(gt) else (gt, pred, True)
    best = 0
    for perm in itertools.permutations(range(len(big)), len(small)):
        s = sum(pair(big[j], small[i]) if swap else pair(small[i], big[j]) for i, j in enumerate(perm))
        best = max(best, s)
    return best / max(len(pred), len(gt))


coord = st.integers(0, 300)


@st.composite
def objects(draw, max_n=4):
    out = []
    for _ in range(draw(st.integers(0, max_n))):
        x1, y1 = draw(coord), draw(coord)
        x2, y2 = x1 + draw(st.integers(0, 60)), y1 + draw(st.integers(0, 60))
        out.append(item((x1, y1, x2, y2), (draw(st.integers(x1 - 5, x2 + 5)), draw(st.integers(y1 - 5, y2 + 5)))))
    return out


@settings(max_examples=300, deadline=None)
@given(objects(), objects())
def test_accuracy_equals_brute_force_matching(pred, gt):
    assert multi.accuracy(vr(pred), json.dumps(gt)) == pytest.approx(_oracle_accuracy(pred, gt), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(objects(max_n=2), st.integers(-3, 3), st.integers(-3, 3))
def test_accuracy_near_duplicate_in_range(gt, dx, dy):
    # jittered copies of gt: accuracy stays within [0, 3]
    pred = [item([v + dx for v in o["bbox_2d"]], [o["point_2d"][0] + dy, o["point_2d"][1]]) for o in gt]
    assert 0.0 <= multi.accuracy(vr(pred), json.dumps(gt)) <= 3.0


# --- never raise, stay in range -------------------------------------------------------------------------------
text_st = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.sampled_from(
            [
                "<think>",
                "</think>",
                "<answer>",
                "</answer>",
                "{",
                "}",
                "[",
                "]",
                '"bbox":',
                '"bbox_2d":',
                '"point_2d":',
                '"points_1":',
                "[1, 2]",
                "[100, 100, 199, 199]",
                ",",
                ".",
                " ",
                "NaN",
                "1e999",
                "-5",
                "[]",
            ]
        ),
        max_size=25,
    ).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(text_st)
def test_rewards_never_raise_and_stay_in_range(text):
    s = score("segzero", text, GT)
    assert all(s[k] in (0.0, 1.0) for k in ("think_format", "answer_format", "box_iou", "box_l1", "points"))
    assert 0.0 <= s["total"] <= 5.0
    v = score("visionreasoner", text, GT2)
    assert v["think_format"] in (0.0, 1.0) and v["non_repeat"] in (0.0, 1.0)
    assert 0.0 <= v["answer_format"] <= 2.0 and 0.0 <= v["accuracy"] <= 3.0
    assert 0.0 <= v["total"] <= 7.0


def test_unknown_kind():
    # a typo in the kind is an error, not silent zeros
    with pytest.raises(ValueError, match="unknown reward kind"):
        score("segzer0", "", GT)


# --- TRL wrappers ---------------------------------------------------------------------------------------------
def test_trl_names_and_batch_call():
    # TRL logs rewards/<__name__>/mean; functions take TRL's extra kwargs and return one float per completion
    assert [f.__name__ for f in SEGZERO_REWARDS.values()] == list(SEGZERO_REWARDS)
    assert [f.__name__ for f in VISIONREASONER_REWARDS.values()] == list(VISIONREASONER_REWARDS)
    comps = [seg((100, 100, 199, 199)), [{"role": "assistant", "content": seg((100, 100, 149, 199))}], "junk"]
    extras = {"prompts": ["p"] * 3, "completion_ids": [[1]] * 3, "trainer_state": None, "image": [None] * 3}
    out = {n: f(comps, solution=[GT] * 3, **extras) for n, f in SEGZERO_REWARDS.items()}
    assert out["box_iou"] == [1.0, 0.0, 0.0] and out["think_format"] == [1.0, 1.0, 0.0]
    vout = {n: f([vr([A, B])], solution=[GT2], **extras) for n, f in VISIONREASONER_REWARDS.items()}
    assert vout == {"think_format": [1.0], "answer_format": [2.0], "accuracy": [3.0], "non_repeat": [1.0]}


def test_trl_thresholds_and_pickle():
    # thresholds bind through reward_functions; TRL's name is the term's; terms pickle and keep their thresholds
    funcs = reward_functions("segzero", iou_threshold=0.49)
    names = [f.__name__ for f in funcs]
    assert names == list(SEGZERO_REWARDS)
    iou = funcs[names.index("box_iou")]
    assert iou([seg((100, 100, 149, 199))], solution=[GT]) == [1.0]  # IoU 0.5 > 0.49
    assert SEGZERO_REWARDS["box_iou"]([seg((100, 100, 149, 199))], solution=[GT]) == [0.0]  # the paper's 0.5
    for f in (*SEGZERO_REWARDS.values(), *VISIONREASONER_REWARDS.values(), iou):
        again = pickle.loads(pickle.dumps(f))
        assert (again.__name__, again.func, again.thresholds) == (f.__name__, f.func, f.thresholds)
    with pytest.raises(ValueError, match="unknown"):
        reward_functions("segzero", point_threshold=3)


def test_trl_solution_required():
    # a dataset without the solution column fails with a message naming it
    with pytest.raises(ValueError, match="solution"):
        SEGZERO_REWARDS["box_iou"](["x"])
    with pytest.raises(ValueError, match="1 completions but 2"):
        VISIONREASONER_REWARDS["accuracy"](["x"], solution=["[]", "[]"])


@pytest.mark.parametrize(
    "value",
    [
        "1" + "0" * 400,  # an integer too large for a float: a sampled completion can write one
        "-" + "9" * 320,  # the same, negative
    ],
)
def test_huge_integers_score_as_no_number_instead_of_raising(value):
    from segzero.rewards import score

    completion = (
        f'<think>t</think><answer>{{"bbox": [10,100,{value},210], "points_1": [1,2], "points_2": [3,4]}}</answer>'
    )
    got = score("segzero", completion, "<box>(10,100),(200,210)</box><points>(30,110),(35,180)</points>")
    assert got["answer_format"] == 0.0 and got["box_iou"] == got["box_l1"] == got["points"] == 0.0
    assert got["think_format"] == 1.0  # the rest of the completion is still read
