"""Rewards and parsing are total: any completion in, finite rewards inside each term's documented range out, no
exception and nothing written to stderr; ground truth that is not finite numbers raises ``ValueError``.

The strategies build answers the way a sampled completion can break them: huge integers (400 digits), floats at
the edge of the float range (1e308, whose square overflows), NaN/Infinity literals, numeric strings, deep nesting,
unicode and lone surrogates, many objects. Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_rewards_total.py``
"""

from __future__ import annotations

import io
import json
import math
import warnings
from contextlib import redirect_stderr, redirect_stdout

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segzero.parsing import parse_answer, parse_solution
from segzero.rewards import SEGZERO_REWARDS, VISIONREASONER_REWARDS, score

SINGLE_GT = "<box>(100,100),(199,199)</box><points>(120,120),(180,180)</points>"
MULTI_GT = json.dumps([{"bbox_2d": [100, 100, 199, 199], "point_2d": [120, 120]}])
# term -> (low, high): the ranges the reward docstrings state
RANGES = {
    "segzero": {"think_format": 1, "answer_format": 1, "box_iou": 1, "box_l1": 1, "points": 1, "total": 5},
    "visionreasoner": {"think_format": 1, "answer_format": 2, "accuracy": 3, "non_repeat": 1, "total": 7},
}
HUGE = "1" + "0" * 400

number_text = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.integers(-(10**500), 10**500).map(str),  # far beyond a float
    st.floats(allow_nan=False, allow_infinity=False).map(repr),  # includes +-1.7976931348623157e+308
    st.sampled_from(["1e308", "-1e308", "1e309", "NaN", "Infinity", "-Infinity", "1e-320", HUGE, "-0"]),
    st.integers(0, 999).map(lambda v: json.dumps(str(v))),  # a numeric string
)


def _list(n: int) -> st.SearchStrategy[str]:
    return st.lists(number_text, min_size=n, max_size=n).map(lambda xs: "[" + ",".join(xs) + "]")


coords = st.one_of(_list(4), _list(2), st.lists(number_text, max_size=6).map(lambda xs: "[" + ",".join(xs) + "]"))
single_obj = st.builds(
    lambda b, p, q: f'{{"bbox": {b}, "points_1": {p}, "points_2": {q}}}', _list(4), _list(2), _list(2)
)
multi_obj = st.builds(lambda b, p: f'{{"bbox_2d": {b}, "point_2d": {p}}}', coords, coords)
multi_list = st.lists(multi_obj, max_size=25).map(lambda xs: "[" + ",".join(xs) + "]")
junk = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)  # any code point, surrogates too
nested = st.integers(1, 5000).map(lambda d: "[" * d + "]" * d)
answer = st.one_of(single_obj, multi_list, nested, junk, st.just("[1or 2]"))
completion = st.builds(
    lambda think, ans, tail, wrap: f"<think>{think}</think><answer>{ans}</answer>{tail}" if wrap else think + ans,
    junk,
    answer,
    st.sampled_from(["", " ", "</answer>", "<answer>[]</answer>", "..."]),
    st.booleans(),
)


def _check(kind: str, got: dict[str, float]) -> None:
    assert set(got) == set(RANGES[kind])
    for term, high in RANGES[kind].items():
        assert isinstance(got[term], float) and math.isfinite(got[term]), (term, got)
        assert 0.0 <= got[term] <= high, (term, got)
    assert got["total"] == sum(v for k, v in got.items() if k != "total")


@settings(max_examples=600, deadline=None)
@given(completion)
def test_any_completion_scores_finite_in_range_and_silent(text):
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught, redirect_stdout(out), redirect_stderr(err):
        warnings.simplefilter("always")
        for kind, gt in (("segzero", SINGLE_GT), ("visionreasoner", MULTI_GT)):
            _check(kind, score(kind, text, gt))
        for strict in (False, True):
            parse_answer(text, strict=strict)  # never raises
    # nothing printed and no warning (e.g. a SyntaxWarning from the Python-literal fallback on "[1or 2]")
    assert (out.getvalue(), err.getvalue(), [str(w.message) for w in caught]) == ("", "", [])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.builds(lambda b, p: {"bbox_2d": b, "point_2d": p}, st.just([1, 2, 30, 40]), st.just([5, 6])),
        min_size=1,
        max_size=40,
    )
)
def test_answer_format_never_exceeds_its_maximum(items):
    # the reference adds per-item fractions: 20 well-formed items summed to 2.0000000000000004
    text = f"<think>t</think><answer>{json.dumps(items)}</answer>"
    assert score("visionreasoner", text, MULTI_GT)["answer_format"] == 2.0


@pytest.mark.parametrize(
    "kind, ans",
    [
        # every coordinate at the float edge: squared distances overflow a float
        ("visionreasoner", '[{"bbox_2d": [1e308, -1e308, 1e308, 1e308], "point_2d": [1e308, 1e308]}]'),
        ("visionreasoner", '[{"bbox_2d": [-1e308, -1e308, 1e308, 1e308], "point_2d": [-1e308, 1e308]}]'),
        # a point far outside and a box covering everything
        ("segzero", '{"bbox": [-1e308, -1e308, 1e308, 1e308], "points_1": [1e308, 1e308], "points_2": [0, 0]}'),
        # a 400-digit integer among the coordinates
        ("visionreasoner", f'[{{"bbox_2d": [10, 100, {HUGE}, 210], "point_2d": [30, 110]}}]'),
        ("segzero", f'{{"bbox": [10, 100, {HUGE}, 210], "points_1": [30, 110], "points_2": [35, 180]}}'),
    ],
)
def test_float_edge_answers_score_instead_of_raising(kind, ans):
    gt = SINGLE_GT if kind == "segzero" else MULTI_GT
    text = f"<think>t</think><answer>{ans}</answer>"
    got = score(kind, text, gt)
    _check(kind, got)
    funcs = SEGZERO_REWARDS if kind == "segzero" else VISIONREASONER_REWARDS
    for name, f in funcs.items():  # the TRL functions GRPO calls, one float per completion
        assert f([text], solution=[gt]) == [got[name]]


@pytest.mark.parametrize(
    "kind, gt, match",
    [
        ("segzero", f"<box>(10,100),({HUGE},210)</box><points>(30,110),(35,180)</points>", "finite"),  # 400 digits
        ("segzero", "<box>(10,100),(1e999,210)</box><points>(30,110),(35,180)</points>", "no <box>"),  # no exponents
        (
            "segzero",
            "<box>(10,100),(200,210)</box><points>(30,110),(" + "9" * 5000 + ",180)</points>",
            "finite",
        ),  # > int limit
        ("visionreasoner", f'[{{"bbox_2d": [10, 100, {HUGE}, 210], "point_2d": [30, 110]}}]', "finite"),
        ("visionreasoner", '[{"bbox_2d": [10, 100, 200, 210], "point_2d": [NaN, 110]}]', "finite"),
    ],
)
def test_ground_truth_that_is_not_finite_numbers_raises_value_error(kind, gt, match):
    with pytest.raises(ValueError, match=match):
        parse_solution(gt)
    with pytest.raises(ValueError):
        score(kind, "<think>t</think><answer>[]</answer>", gt)
