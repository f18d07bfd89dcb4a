"""Tests for segzero.parsing: tolerant and strict reading of model completions, and ground-truth parsing.

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_parsing.py``
"""

from __future__ import annotations

import random
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segzero.answer import Answer, SegObject
from segzero.parsing import (
    answer_block,
    completion_text,
    first_flat_object,
    parse_answer,
    parse_solution,
    think_format_ok,
)

S = '{"bbox": [10, 100, 200, 210], "points_1": [30, 110], "points_2": [35, 180]}'  # the canonical single answer
M = '[{"bbox_2d": [10, 100, 200, 210], "point_2d": [30, 110]}, {"bbox_2d": [225, 296, 706, 786], "point_2d": [302, 410]}]'
ONE = SegObject((10, 100, 200, 210), ((30, 110), (35, 180)))
TWO = (SegObject((10, 100, 200, 210), ((30, 110),)), SegObject((225, 296, 706, 786), ((302, 410),)))
_rng = random.Random(0)
GARBAGE = "".join(_rng.choice("{}[]\"':,0123456789abc <>/\n") for _ in range(100_000))


def ok(*objs, layout="single"):
    return ("ok", layout, tuple(objs))


def fail(reason_part):
    return ("fail", reason_part)


CASES = [
    # the canonical well-formed single-object answer
    (f"<think>the red cup on the left</think><answer>{S}</answer>", {}, ok(ONE)),
    # the prompt's own example style: single quotes (Python literal), must still be read at inference
    (
        "<think>x</think><answer>{'bbox': [10,100,200,210], 'points_1': [30,110], 'points_2': [35,180]}</answer>",
        {},
        ok(ONE),
    ),
    # the multi-object layout with two objects
    (f"<think>two dogs</think><answer>{M}</answer>", {}, ok(*TWO, layout="multi")),
    # an empty list is a valid "nothing here" answer
    ("<think>no such object</think><answer>[]</answer>", {}, ok(layout="multi")),
    # a json code fence inside the answer tags
    (f"<think>t</think><answer>```json\n{S}\n```</answer>", {}, ok(ONE)),
    # a code fence with no tags at all
    (f"Here is the result:\n```json\n{S}\n```", {}, ok(ONE)),
    # the opening <think> was in the prompt (Qwen templates): only </think> present
    (f"looking at the image</think><answer>{S}</answer>", {}, ok(ONE)),
    # bare JSON, no tags
    (S, {}, ok(ONE)),
    # prose around the JSON inside the answer
    (f"<answer>The object is at {S}. Done.</answer>", {}, ok(ONE)),
    # unclosed </answer> (generation cut off after the JSON)
    (f"<think>t</think><answer>{S}", {}, ok(ONE)),
    # unclosed </think>
    (f"<think>reasoning goes on <answer>{S}</answer>", {}, ok(ONE)),
    # numbers as numeric strings
    (
        '<answer>{"bbox": ["10", "100", "200", "210"], "points_1": ["30", "110"], "points_2": ["35", "180"]}</answer>',
        {},
        ok(ONE),
    ),
    # float coordinates are kept as floats
    (
        '<answer>{"bbox": [10.5, 100, 200.25, 210], "points_1": [30, 110], "points_2": [35, 180.5]}</answer>',
        {},
        ok(SegObject((10.5, 100, 200.25, 210), ((30, 110), (35, 180.5)))),
    ),
    # trailing commas: invalid JSON, read through the Python-literal fallback
    ('<answer>{"bbox": [10, 100, 200, 210,], "points_1": [30, 110], "points_2": [35, 180],}</answer>', {}, ok(ONE)),
    # nested braces: the answer wrapped in another object
    (f'<answer>{{"result": {S}}}</answer>', {}, ok(ONE)),
    # two JSON objects in the answer: the first is taken
    ('<answer>{"bbox": [1, 2, 3, 4]} {"bbox": [5, 6, 7, 8]}</answer>', {}, ok(SegObject((1, 2, 3, 4)))),
    # a JSON-like example in the thinking must not beat the real answer
    (
        '<think>format is {"bbox": [0, 0, 1, 1]}</think><answer>{"bbox": [5, 6, 7, 8]}</answer>',
        {},
        ok(SegObject((5, 6, 7, 8))),
    ),
    # NaN is not a coordinate
    ('<answer>{"bbox": [NaN, 100, 200, 210]}</answer>', {}, fail("non-finite")),
    # Infinity neither
    ('<answer>{"bbox": [10, 100, Infinity, 210]}</answer>', {}, fail("non-finite")),
    # negative numbers are kept as given (mapping to the image clips them)
    ('<answer>{"bbox": [-5, -10, 20, 30]}</answer>', {}, ok(SegObject((-5, -10, 20, 30)))),
    # huge but finite numbers are kept (mapping clips them)
    ('<answer>{"bbox": [0, 0, 1e9, 5e8]}</answer>', {}, ok(SegObject((0, 0, 1e9, 5e8)))),
    # an integer too large for a float is a failure, not an OverflowError
    ('<answer>{"bbox": [0, 0, 1' + "0" * 400 + ", 5]}</answer>", {}, fail("non-finite")),
    # x2 < x1: corners reordered in tolerant mode (and noted)
    ('<answer>{"bbox": [200, 100, 10, 210]}</answer>', {}, ok(SegObject((10, 100, 200, 210)))),
    # unicode reasoning and unicode around the JSON
    (f"<think>左边的红色杯子 — café ☕</think><answer>答案 {S} ✓</answer>", {}, ok(ONE)),
    # empty string
    ("", {}, fail("no JSON")),
    # 100 kB of bracket/quote garbage fails cleanly (and fast, see below)
    (GARBAGE, {}, fail("")),
    # a box with three numbers is malformed
    ('<answer>{"bbox": [1, 2, 3], "points_1": [1, 2]}</answer>', {}, fail("bbox")),
    # points without a box: still usable as SAM point prompts
    (
        '<answer>{"points_1": [30, 110], "points_2": [35, 180]}</answer>',
        {},
        ok(SegObject(None, ((30, 110), (35, 180)))),
    ),
    # JSON without any answer key
    ('<answer>{"answer": "the cup"}</answer>', {}, fail("no bbox/points")),
    # a multi list with one malformed item fails, naming the item
    ('<answer>[{"bbox_2d": [1, 2, 3, 4, 5], "point_2d": [1, 2]}]</answer>', {}, fail("object 0 bbox_2d")),
    # a multi item without point_2d is still usable (box prompt only)
    ('<answer>[{"bbox_2d": [1, 2, 3, 4]}]</answer>', {}, ok(SegObject((1, 2, 3, 4)), layout="multi")),
    # a multi list written with "bbox" keys
    (
        '<answer>[{"bbox": [1, 2, 3, 4], "point_2d": [2, 3]}]</answer>',
        {},
        ok(SegObject((1, 2, 3, 4), ((2, 3),)), layout="multi"),
    ),
    # layout="single" rejects a two-object list
    (f"<answer>{M}</answer>", {"layout": "single"}, fail("expected one object")),
    # layout="single" accepts a one-item list
    (
        '<answer>[{"bbox_2d": [1, 2, 3, 4], "point_2d": [2, 3]}]</answer>',
        {"layout": "single"},
        ok(SegObject((1, 2, 3, 4), ((2, 3),)), layout="multi"),
    ),
    # JSON booleans are not numbers
    ('<answer>{"bbox": [true, 0, 1, 1]}</answer>', {}, fail("bbox")),
    # null box
    ('<answer>{"bbox": null}</answer>', {}, fail("bbox")),
    # 10k nested brackets: no RecursionError
    ("<answer>" + "[" * 10_000 + "]" * 10_000 + "</answer>", {}, fail("")),
    # an empty object
    ("<answer>{}</answer>", {}, fail("")),
    # a bare [] inside prose is not taken as "nothing here" when a real answer follows
    ('I checked [] and found {"bbox": [1, 2, 3, 4]}', {}, ok(SegObject((1, 2, 3, 4)))),
    # multi numbers as strings with floats
    (
        '<answer>[{"bbox_2d": ["1.5", "2", "3", "4"], "point_2d": ["2", "3.25"]}]</answer>',
        {},
        ok(SegObject((1.5, 2, 3, 4), ((2, 3.25),)), layout="multi"),
    ),
    # a chat message list: the assistant content is read
    ([{"role": "assistant", "content": f"<answer>{S}</answer>"}], {}, ok(ONE)),
    # content given as text parts
    (
        [
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "<answer>"}, {"type": "text", "text": S + "</answer>"}],
            }
        ],
        {},
        ok(ONE),
    ),
    # a conversation: the last assistant message wins, not the user's
    ([{"role": "user", "content": "{'bbox': [0, 0, 1, 1]}"}, {"role": "assistant", "content": S}], {}, ok(ONE)),
    # not a completion at all
    (None, {}, fail("unsupported")),
    # a list of non-messages
    ([1, 2, 3], {}, fail("non-message")),
    # ---- strict mode (the reference rewards' reading) ----
    # canonical answer passes strictly
    (f"<think>t</think><answer>{S}</answer>", {"strict": True}, ok(ONE)),
    # single quotes are not JSON: strict fails
    (
        "<answer>{'bbox': [10,100,200,210], 'points_1': [30,110], 'points_2': [35,180]}</answer>",
        {"strict": True},
        fail("not valid JSON"),
    ),
    # trailing commas are not JSON
    (
        '<answer>{"bbox": [10, 100, 200, 210,], "points_1": [30, 110], "points_2": [35, 180]}</answer>',
        {"strict": True},
        fail("not valid JSON"),
    ),
    # strict reads the FIRST flat {...} anywhere, even inside the thinking (as the reference does)
    (f'<think>try {{"note": 1}}</think><answer>{S}</answer>', {"strict": True}, fail("needs bbox")),
    # nested braces: the first flat {...} is cut at the inner closing brace and is not JSON
    (f'<answer>{{"result": {S}}}</answer>', {"strict": True}, fail("not valid JSON")),
    # tags are not needed for the strict single reading
    (S, {"strict": True}, ok(ONE)),
    # strict multi: canonical list
    (f"<think>t</think><answer>{M}</answer>", {"strict": True}, ok(*TWO, layout="multi")),
    # strict multi: an empty list is valid
    ("<answer>[]</answer>", {"strict": True, "layout": "multi"}, ok(layout="multi")),
    # strict multi: an item without point_2d fails
    ('<answer>[{"bbox_2d": [1, 2, 3, 4]}]</answer>', {"strict": True}, fail("item 0")),
    # strict: NaN is accepted by json.loads but is not a number here
    (
        '{"bbox": [NaN, 100, 200, 210], "points_1": [30, 110], "points_2": [35, 180]}',
        {"strict": True},
        fail("needs bbox"),
    ),
    # strict: numeric strings are not numbers
    (
        '{"bbox": ["10", 100, 200, 210], "points_1": [30, 110], "points_2": [35, 180]}',
        {"strict": True},
        fail("needs bbox"),
    ),
    # strict: x2 < x1 is kept as written (the rewards judge it)
    (
        '{"bbox": [200, 100, 10, 210], "points_1": [30, 110], "points_2": [35, 180]}',
        {"strict": True},
        ok(SegObject((200, 100, 10, 210), ((30, 110), (35, 180)))),
    ),
    # strict multi with no closing tag: no answer block
    (f"<answer>{M}", {"strict": True, "layout": "multi"}, fail("no <answer>")),
]


@pytest.mark.parametrize(("completion", "kwargs", "expected"), CASES, ids=[f"case{i:02d}" for i in range(len(CASES))])
def test_parse_table(completion, kwargs, expected):
    a = parse_answer(completion, **kwargs)
    assert isinstance(a, Answer)
    if expected[0] == "ok":
        assert a.ok, a.reason
        assert a.layout == expected[1]
        assert a.objects == expected[2]
    else:
        assert not a.ok and a.objects == ()
        assert a.reason and expected[1] in a.reason


def test_think_and_notes():
    # think text is extracted; a reordered box is reported in notes
    a = parse_answer('<think> why </think><answer>{"bbox": [200, 100, 10, 210]}</answer>')
    assert a.think == "why" and a.notes == ("object 0: box corners reordered",)
    assert parse_answer(S).think is None


def test_garbage_is_fast():
    # linear-time scanning: 100 kB of garbage and pathological inputs parse in well under a second each
    for text in (GARBAGE, "{" * 100_000, "[" * 100_000, "</think><answer>" * 6000, "<answer>" + " " * 100_000):
        for strict in (False, True):
            t = time.perf_counter()
            assert not parse_answer(text, strict=strict).ok
            assert time.perf_counter() - t < 1.0


def test_completion_text_forms():
    # str, single message dict, and message lists without an assistant turn
    assert completion_text("x") == ("x", "")
    assert completion_text({"role": "assistant", "content": "y"}) == ("y", "")
    assert completion_text([{"role": "user", "content": "z"}]) == ("z", "")
    assert completion_text([{"role": "assistant", "content": None}])[0] is None


# --- linear-time readers are equivalent to the reference regexes -------------------------------------------
TOKENS = ["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "a", "{", "}", '"', "x}", "{}", "\t"]
token_text = st.lists(st.sampled_from(TOKENS), max_size=14).map("".join)


@settings(max_examples=800, deadline=None)
@given(token_text)
def test_think_format_equals_reference_regex(text):
    ref = re.fullmatch(r"<think>.*?</think>\s*<answer>.*?</answer>", text, re.DOTALL) is not None
    assert think_format_ok(text) == ref


@settings(max_examples=800, deadline=None)
@given(token_text)
def test_readers_equal_reference_regexes(text):
    m = re.search(r"{[^}]+}", text)
    assert first_flat_object(text) == (m.group(0) if m else None)
    m = re.search(r"<answer>\s*(.*?)\s*</answer>", text, re.DOTALL)
    assert answer_block(text) == (m.group(1) if m else None)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.booleans(), st.sampled_from([None, "single", "multi"]))
def test_parse_never_raises_on_text(text, strict, layout):
    a = parse_answer(text, strict=strict, layout=layout)
    assert isinstance(a, Answer) and (a.ok or a.reason)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(TOKENS + ["[", "]", ",", "1", "-2.5", "'bbox':", '"bbox_2d":', '"points_1":']), max_size=30
    ).map("".join),
    st.booleans(),
)
def test_parse_never_raises_on_near_json(text, strict):
    a = parse_answer(text, strict=strict)
    assert a.ok or a.reason


# --- ground truth ---------------------------------------------------------------------------------------------
SOLUTIONS = [
    # the released Seg-Zero string form
    ("<box>(10,100),(200,210)</box><points>(30,110),(35,180)</points>", (ONE,)),
    # spaces and surrounding whitespace are tolerated
    ("  <box>( 10, 100 ), (200,210)</box> <points>(30, 110),(35,180)</points>\n", (ONE,)),
    # the released VisionReasoner JSON string
    (M, TWO),
    # already-decoded list
    ([{"bbox_2d": [1, 2, 3, 4], "point_2d": [2, 3]}], (SegObject((1, 2, 3, 4), ((2, 3),)),)),
    # an empty gt list ("nothing here")
    ("[]", ()),
    # typed objects pass through
    (ONE, (ONE,)),
    ([ONE, ONE], (ONE, ONE)),
    # a Seg-Zero style dict
    ({"bbox": [10, 100, 200, 210], "points_1": [30, 110], "points_2": [35, 180]}, (ONE,)),
]


@pytest.mark.parametrize(("solution", "expected"), SOLUTIONS)
def test_parse_solution_table(solution, expected):
    assert parse_solution(solution) == expected


BAD_SOLUTIONS = [
    # no box tag
    ("<points>(1,2),(3,4)</points>", "no <box>"),
    # box without points
    ("<box>(1,2),(3,4)</box>", "no <points>"),
    # broken JSON
    ('[{"bbox_2d": [1,2,3,4]', "not valid JSON"),
    # item missing point_2d
    ('[{"bbox_2d": [1,2,3,4]}]', "missing point_2d"),
    # bbox with 3 numbers
    ('[{"bbox_2d": [1,2,3], "point_2d": [1,2]}]', "bbox_2d"),
    # not a dict item
    ("[1, 2]", "gt item 0"),
    # unsupported type
    (3.5, "unsupported"),
]


@pytest.mark.parametrize(("solution", "match"), BAD_SOLUTIONS)
def test_parse_solution_rejects(solution, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        parse_solution(solution)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.sampled_from(["role", "content", "type", "text"]), kids)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(json_like, st.booleans())
def test_parse_never_raises_on_arbitrary_objects(completion, strict):
    # TRL hands over strings or message lists; anything else must still come back as a failure value
    a = parse_answer(completion, strict=strict)
    assert isinstance(a, Answer) and (a.ok or a.reason)


# ------------------------------------------------------------------------------------------------- gt formatting
@pytest.mark.parametrize(
    ("objects", "layout", "expected"),
    [
        # Seg-Zero's gt of one object, integers as given
        (
            [SegObject((1, 2, 30, 40), ((10, 20), (15, 25)))],
            "single",
            "<box>(1,2),(30,40)</box><points>(10,20),(15,25)</points>",
        ),
        # floats round half to even (Python's round), as every writer of gt did before
        (
            [SegObject((0.5, 1.5, 2.5, 3.4), ((4.6, 5.5), (6, 7)))],
            "single",
            "<box>(0,2),(2,3)</box><points>(5,6),(6,7)</points>",
        ),
        # VisionReasoner's list: each object's first point only
        (
            [SegObject((1, 2, 3, 4), ((5, 6), (7, 8))), SegObject((9, 9, 10, 10), ((9, 10),))],
            "multi",
            '[{"bbox_2d": [1, 2, 3, 4], "point_2d": [5, 6]}, {"bbox_2d": [9, 9, 10, 10], "point_2d": [9, 10]}]',
        ),
        ([], "multi", "[]"),  # a "nothing here" gt is an empty list
    ],
)
def test_format_solution(objects, layout, expected):
    from segzero.parsing import format_solution

    assert format_solution(objects, layout) == expected


_coord = st.integers(min_value=0, max_value=4000)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_coord, _coord, _coord, _coord, _coord, _coord, _coord, _coord), min_size=1, max_size=4))
def test_format_solution_round_trips(rows):
    from segzero.parsing import format_solution

    objects = [SegObject((a, b, c, d), ((e, f), (g, h))) for a, b, c, d, e, f, g, h in rows]
    assert parse_solution(format_solution(objects[:1], "single")) == tuple(objects[:1])  # every point kept
    multi = parse_solution(format_solution(objects, "multi"))
    assert multi == tuple(SegObject(o.box, o.points[:1]) for o in objects)  # the first point of each


def test_format_solution_refuses_an_unknown_layout():
    from segzero.parsing import format_solution

    with pytest.raises(ValueError, match="layout"):
        format_solution([SegObject((1, 2, 3, 4), ((1, 2),))], "list")
