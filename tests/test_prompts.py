"""Tests for segzero.prompts: the prompts are byte-for-byte the strings the released checkpoints saw.

Run: ``pytest tests/test_prompts.py -q``. The expected strings below are copied literally from the released prompts (with
``{Question}`` and ``{Answer}`` filled in by hand), not built from the module's constants.
"""

from __future__ import annotations

import pytest

from segzero.errors import UserError
from segzero.prompts import (
    MAX_QUERY_CHARS,
    SEGZERO_TEMPLATE,
    VISIONREASONER_TEMPLATE,
    QueryError,
    build_messages,
    check_query,
    format_prompt,
    normalize_query,
)

SEGZERO_CUP = (
    "Please find 'the cup on the left' with bbox and points.Compare the difference between objects and find the "
    "most closely matched one.Output the thinking process in <think> </think> and final answer in <answer> "
    "</answer> tags.Output the one bbox and points of two largest inscribed circles inside the interested object "
    "in JSON format.i.e., <think> thinking process here </think><answer>{'bbox': [10,100,200,210], 'points_1': "
    "[30,110], 'points_2': [35,180]}</answer>"
)
VISIONREASONER_CUP = (
    'Please find "the cup on the left" with bboxs and points.Compare the difference between object(s) and find '
    "the most closely matched object(s).Output the thinking process in <think> </think> and final answer in "
    "<answer> </answer> tags.Output the bbox(es) and point(s) inside the interested object(s) in JSON format.i.e., "
    '<think> thinking process here </think><answer>[{"bbox_2d": [10,100,200,210], "point_2d": [30,110]}, '
    '{"bbox_2d": [225,296,706,786], "point_2d": [302,410]}]</answer>'
)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("segzero", SEGZERO_CUP),  # single-object prompt of Seg-Zero-7B
        ("visionreasoner", VISIONREASONER_CUP),  # multi-object prompt of VisionReasoner-7B
    ],
)
def test_format_prompt_is_byte_exact(kind, expected):
    got = format_prompt("The cup on the left.", kind=kind)
    assert got == expected
    assert got.encode("utf-8") == expected.encode("utf-8")


def test_templates_keep_the_placeholders_and_no_space_between_sentences():
    # the templates are the reference's str.format templates; sentences are glued without spaces
    for template in (SEGZERO_TEMPLATE, VISIONREASONER_TEMPLATE):
        assert template.count("{Question}") == 1 and template.count("{Answer}") == 1
        assert "points.Compare" in template and "tags.Output" in template and "format.i.e.," in template
    assert format_prompt("x") == SEGZERO_TEMPLATE.format(
        Question="x", Answer="{'bbox': [10,100,200,210], 'points_1': [30,110], 'points_2': [35,180]}"
    )


# Expected values written out from the reference scripts: Seg-Zero `query.lower().strip(".")`, VisionReasoner
# `query.lower().strip(".\"?!")`.
@pytest.mark.parametrize(
    ("query", "segzero", "visionreasoner"),
    [
        ("The cup.", "the cup", "the cup"),  # lower-cased, trailing '.' stripped
        ("the cup", "the cup", "the cup"),  # already normal
        ("What can I drink...", "what can i drink", "what can i drink"),  # several trailing dots
        ("Where could I sit?", "where could i sit?", "where could i sit"),  # '?' goes for VisionReasoner only
        ("Look out!", "look out!", "look out"),  # '!' likewise
        ('"the red cup"?', '"the red cup"?', "the red cup"),  # quotes at both ends go for VisionReasoner
        ("  The cup. \n", "  the cup. \n", "  the cup. \n"),  # surrounding whitespace is kept, and shields the dot
        ("the cup .", "the cup ", "the cup "),  # the space before a stripped dot stays
        ("a 1.5 l bottle", "a 1.5 l bottle", "a 1.5 l bottle"),  # inner dots are kept
        (".5 litre bottle", "5 litre bottle", "5 litre bottle"),  # a leading dot goes too (strip, not rstrip)
        ("?why", "?why", "why"),  # a leading '?' goes for VisionReasoner
        ("Où est le CAFÉ?", "où est le café?", "où est le café"),  # unicode lower-casing
        ("the {x} 'quoted' one", "the {x} 'quoted' one", "the {x} 'quoted' one"),  # braces/quotes kept verbatim
    ],
)
def test_normalize_query_is_the_reference_scripts(query, segzero, visionreasoner):
    assert normalize_query(query) == normalize_query(query, "segzero") == normalize_query(query, "compact") == segzero
    assert normalize_query(query, "visionreasoner") == visionreasoner
    assert f"'{segzero}' with bbox" in format_prompt(query)  # braces in a query do not break str.format
    assert f'"{visionreasoner}" with bboxs' in format_prompt(query, "visionreasoner")


@pytest.mark.parametrize("query", ["", "   ", "...", " . "])  # nothing left to look for
def test_empty_query_is_a_user_error(query):
    with pytest.raises(UserError, match="empty query"):
        format_prompt(query)


def test_bad_kind_and_type():
    # an unknown prompt kind names the valid ones; a non-string query is a programming error
    with pytest.raises(UserError, match="segzero"):
        format_prompt("cup", kind="sam")
    with pytest.raises(TypeError):
        format_prompt(None)


def test_build_messages_default_has_image_first_and_no_system():
    image = object()  # build_messages passes the image through untouched
    msgs = build_messages(image, "The cup on the left.")
    assert msgs == [
        {
            "role": "user",
            "content": [{"type": "image", "image": image}, {"type": "text", "text": SEGZERO_CUP}],
        }
    ]
    assert msgs[0]["content"][0]["image"] is image


def test_build_messages_with_system_and_kind():
    # an explicit system prompt comes first, as a text content list; the kind selects the template
    msgs = build_messages(
        "img.png", "The cup on the left.", kind="visionreasoner", system="You are a helpful assistant."
    )
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[0]["content"] == [{"type": "text", "text": "You are a helpful assistant."}]
    assert msgs[1]["content"][1]["text"] == VISIONREASONER_CUP


def _render(messages) -> str:
    """Render with the Qwen2.5-VL chat template the way transformers does (sandboxed jinja2, trim/lstrip)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from segzero.models.tiny.reasoner import QWEN_VL_CHAT_TEMPLATE

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(QWEN_VL_CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=True)


def test_chat_template_supplies_the_default_system_prompt():
    # no system message: the Qwen template inserts "You are a helpful assistant." itself, the image comes
    # before the prompt text in the user turn; an explicit default system prompt renders the same bytes
    rendered = _render(build_messages("img", "The cup on the left."))
    assert rendered == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        f"<|vision_start|><|image_pad|><|vision_end|>{SEGZERO_CUP}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert _render(build_messages("img", "The cup on the left.", system="You are a helpful assistant.")) == rendered


# a command-line argument with the byte 0xff, as Python receives it under a UTF-8 locale (surrogateescape)
ARGV_XFF = b"the \xff red".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    ("text", "max_chars", "expected", "words"),
    [
        ("  the red circle \n", 20, "the red circle", None),  # surrounding whitespace stripped
        ("x" * 20, 20, "x" * 20, None),  # exactly at the limit
        ("  " + "x" * 20 + "  ", 20, "x" * 20, None),  # the limit counts the stripped text
        ("où est le café ?", 16, "où est le café ?", None),  # the limit counts characters (16), not bytes (18)
        ("x" * 21, 20, "max_query_chars", "21 characters, the limit is 20"),  # one over the limit
        ("x" * 100_000, MAX_QUERY_CHARS, "max_query_chars", "the limit is 1000"),  # the default limit
        ("", 20, "empty_query", "empty"),  # nothing at all
        (" \t\n ", 20, "empty_query", "empty"),  # whitespace only
        ("...", 20, "empty_query", "empty"),  # nothing left after the prompt's normalisation
        (ARGV_XFF, 20, "invalid_query", "at character 4: undecodable byte 0xff"),  # a non-UTF-8 argv byte
        ("a\ud800b", 20, "invalid_query", "at character 1: lone surrogate '\\ud800'"),  # half a surrogate pair (JSON)
        ("   \udcff", 20, "invalid_query", "not valid UTF-8"),  # checked before stripping and emptiness
        (b"the cup", 20, "invalid_query", "must be a string, got bytes"),  # not a str
        (None, 20, "invalid_query", "got NoneType"),  # missing
    ],
)
def test_check_query(text, max_chars, expected, words):
    if words is None:
        assert check_query(text, max_chars=max_chars) == expected
        return
    with pytest.raises(QueryError) as info:
        check_query(text, max_chars=max_chars)
    message = str(info.value)
    assert info.value.code == expected and isinstance(info.value, UserError)  # the CLI turns it into exit 2
    assert words in message and "\n" not in message and len(message) < 200  # one short line, never the query
    message.encode("utf-8")  # printable: the bad character is escaped, not echoed
