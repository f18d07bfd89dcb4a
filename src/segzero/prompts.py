"""The prompt families (Seg-Zero, VisionReasoner, compact, Qwen3-VL) and the chat messages built from them.

The Seg-Zero and VisionReasoner strings are an interface to the released checkpoints (``Ricky06662/Seg-Zero-7B``,
``Ricky06662/VisionReasoner-7B``): they were trained on exactly these bytes, so do not "fix" them (the
sentences are concatenated with no space, the example answer of Seg-Zero uses single quotes). The ``qwen3vl``
family is segzero's own for Qwen3-VL reasoners (no released checkpoint was trained on it): VisionReasoner's
multi-object answer, items in Qwen3-VL's own grounding keys (``bbox_2d``, ``point_2d``, ``label``) and in the
coordinates Qwen3-VL is trained on, relative ``0..1000`` of the image (``ANSWER_FRAMES``). Usage::

    from segzero.prompts import build_messages, format_prompt

    text = format_prompt("The cup on the left.", kind="segzero")     # query -> "the cup on the left"
    messages = build_messages(image_840, "The cup on the left.")     # HF chat messages, image first
    processor.apply_chat_template(messages, add_generation_prompt=True)

Query normalisation (``normalize_query``) is byte-for-byte what each checkpoint family's own scripts do, for any
query: Seg-Zero (and ``compact``) ``query.lower().strip(".")``, VisionReasoner (and ``qwen3vl``)
``query.lower().strip('."?!')`` (its template quotes the query in double quotes; its scripts strip quotes, '?' and
'!' too, from both ends). Nothing else is touched: surrounding whitespace and inner punctuation stay as written.

Input: ``check_query`` is the one validator of a query, at the entry it arrives through (the CLI and the HTTP
server: stripped of surrounding whitespace, at most ``MAX_QUERY_CHARS`` characters; ``SegZeroPipeline``: as
written, any length): a str, valid UTF-8, not empty. It returns a ``Query``, which the layers after the entry take
as it is (a query the CLI checked is not checked again by the pipeline it calls).

Answer frames: ``ANSWER_FRAMES[kind]`` is the frame a family's answers are in when it is not the pixel frame the
image was resized to (``segzero.geometry``): ``qwen3vl`` answers in relative coordinates, ``RELATIVE_FRAME`` (1000)
whatever the image's size; the other families answer in the pixels of the resized image.

System prompt: ``build_messages`` adds no system message unless ``system`` is given. The Qwen2-VL /
Qwen2.5-VL chat templates then insert their default ``You are a helpful assistant.`` themselves, which is
what the checkpoints saw; passing ``system="You are a helpful assistant."`` renders the same text.
"""

from __future__ import annotations

from typing import Literal

from segzero.errors import UserError
from segzero.geometry import RELATIVE_FRAME

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "PROMPT_KINDS",
    "SEGZERO_ANSWER_EXAMPLE",
    "SEGZERO_TEMPLATE",
    "VISIONREASONER_ANSWER_EXAMPLE",
    "VISIONREASONER_TEMPLATE",
    "COMPACT_TEMPLATE",
    "QWEN3VL_TEMPLATE",
    "QWEN3VL_ANSWER_EXAMPLE",
    "ANSWER_FRAMES",
    "build_messages",
    "format_prompt",
    "normalize_query",
    "QUERY_STRIP_CHARS",
    "MAX_QUERY_CHARS",
    "Query",
    "QueryError",
    "check_query",
]

PromptKind = Literal["segzero", "visionreasoner", "compact", "qwen3vl"]

# Seg-Zero (single object): one bbox and two points; ``{Question}`` and ``{Answer}`` are str.format fields.
SEGZERO_TEMPLATE = (
    "Please find '{Question}' with bbox and points."
    "Compare the difference between objects and find the most closely matched one."
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
    "Output the one bbox and points of two largest inscribed circles inside the interested object in JSON format."
    "i.e., <think> thinking process here </think>"
    "<answer>{Answer}</answer>"
)
SEGZERO_ANSWER_EXAMPLE = "{'bbox': [10,100,200,210], 'points_1': [30,110], 'points_2': [35,180]}"

# VisionReasoner (multi object): a JSON list of bbox_2d / point_2d items.
VISIONREASONER_TEMPLATE = (
    'Please find "{Question}" with bboxs and points.'
    "Compare the difference between object(s) and find the most closely matched object(s)."
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
    "Output the bbox(es) and point(s) inside the interested object(s) in JSON format."
    "i.e., <think> thinking process here </think>"
    "<answer>{Answer}</answer>"
)
VISIONREASONER_ANSWER_EXAMPLE = (
    '[{"bbox_2d": [10,100,200,210], "point_2d": [30,110]}, {"bbox_2d": [225,296,706,786], "point_2d": [302,410]}]'
)

# Compact (single object, Seg-Zero's answer format): the first sentence of Seg-Zero's prompt only. For models trained
# from scratch in this repository (the shapes model): ~10 prompt tokens instead of ~100 make a CPU training step
# about twice as fast. No released checkpoint was trained on it.
COMPACT_TEMPLATE = "Please find '{Question}' with bbox and points."

# Qwen3-VL (multi object, relative coordinates): VisionReasoner's answer layout in Qwen3-VL's own grounding keys, with
# a label per object (what a concept segmenter prompts with), coordinates relative 0..1000 as Qwen3-VL is trained to
# answer. segzero's own wording, sentences separated by spaces; no released checkpoint was trained on it.
QWEN3VL_TEMPLATE = (
    'Please find "{Question}" with bboxes and points. '
    "Compare the difference between object(s) and find the most closely matched object(s). "
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags. "
    "Output a JSON list with one item per object: its bbox_2d, a point_2d inside it and a short label, "
    "in relative coordinates from 0 to 1000. "
    "i.e., <think> thinking process here </think>"
    "<answer>{Answer}</answer>"
)
QWEN3VL_ANSWER_EXAMPLE = (
    '[{"bbox_2d": [10,100,200,210], "point_2d": [30,110], "label": "cup"}, '
    '{"bbox_2d": [225,296,706,786], "point_2d": [302,410], "label": "plate"}]'
)

PROMPT_KINDS: dict[str, tuple[str, str]] = {
    "segzero": (SEGZERO_TEMPLATE, SEGZERO_ANSWER_EXAMPLE),
    "visionreasoner": (VISIONREASONER_TEMPLATE, VISIONREASONER_ANSWER_EXAMPLE),
    "compact": (COMPACT_TEMPLATE, SEGZERO_ANSWER_EXAMPLE),
    "qwen3vl": (QWEN3VL_TEMPLATE, QWEN3VL_ANSWER_EXAMPLE),
}
"""prompt kind -> (template, example answer); a template without ``{Answer}`` shows no example."""

ANSWER_FRAMES: dict[str, int] = {"qwen3vl": RELATIVE_FRAME}
"""prompt kind -> the frame its answers are in, where that is not the pixel frame the image was resized to:
``qwen3vl`` answers relative ``0..1000`` whatever the image size. A kind not listed answers in the pixel frame."""

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
"""The Qwen chat templates' own default system prompt (inserted by the template, not by ``build_messages``)."""


QUERY_STRIP_CHARS: dict[str, str] = {"segzero": ".", "visionreasoner": '."?!', "compact": ".", "qwen3vl": '."?!'}
"""prompt kind -> the characters its reference scripts strip from both ends of the lower-cased query (``qwen3vl``
quotes the query in double quotes as VisionReasoner does, and strips as it does)."""


def normalize_query(query: str, kind: PromptKind = "segzero") -> str:
    """The query as the reference scripts of ``kind`` put it in the prompt: lower-cased, then the characters of
    ``QUERY_STRIP_CHARS[kind]`` stripped from both ends.

    >>> normalize_query("Where could I sit?", "visionreasoner"), normalize_query("Where could I sit?")
    ('where could i sit', 'where could i sit?')

    Raises ``TypeError`` for a non-string and ``UserError`` when nothing but whitespace is left (empty query).
    """
    if not isinstance(query, str):
        raise TypeError(f"query must be a str, got {type(query).__name__}")
    if kind not in QUERY_STRIP_CHARS:
        raise UserError(f"unknown prompt kind {kind!r}; expected one of {sorted(QUERY_STRIP_CHARS)}")
    q = query.lower().strip(QUERY_STRIP_CHARS[kind])
    if not q.strip(" \t\r\n\f\v" + QUERY_STRIP_CHARS[kind]):
        raise UserError(f"empty query: {query!r}")
    return q


MAX_QUERY_CHARS = 1000
"""Longest query a user may send, in characters after stripping surrounding whitespace (the CLI's limit and the
server's default ``max_query_chars``)."""


class Query(str):
    """A query ``check_query`` accepted (a ``str``): the text that goes into the prompt, checked once."""

    __slots__ = ()


class QueryError(UserError):
    """A query ``check_query`` refuses; ``code`` names the problem: ``invalid_query`` (not a string, or not valid
    UTF-8), ``empty_query`` or ``max_query_chars``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_query(text, *, max_chars: int | None = MAX_QUERY_CHARS, strip: bool = True) -> Query:
    """The query as a ``Query`` (stripped of surrounding whitespace unless ``strip=False``), or ``QueryError`` (one
    line) saying what is wrong.

    Refused, in this order: not a string; not valid UTF-8 (a lone surrogate: an undecodable byte of a command-line
    argument, which Python keeps as ``\\udc80``-``\\udcff``, or a ``\\ud800``-style JSON escape); empty (nothing
    left after ``normalize_query``: ``"..."`` is empty too); longer than ``max_chars`` characters (None: no limit).

    >>> check_query("  the red circle ")
    'the red circle'
    """
    if not isinstance(text, str):
        raise QueryError("invalid_query", f"the query must be a string, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        char = text[err.start]
        what = f"lone surrogate {char!r}"
        if 0xDC80 <= ord(char) <= 0xDCFF:  # how Python keeps an undecodable byte of a command-line argument
            what = f"undecodable byte 0x{ord(char) - 0xDC00:02x} ({what})"
        raise QueryError("invalid_query", f"the query is not valid UTF-8 at character {err.start}: {what}") from None
    query = text.strip() if strip else text
    try:
        normalize_query(query)
    except UserError:
        raise QueryError("empty_query", "the query is empty") from None
    if max_chars is not None and len(query) > max_chars:
        raise QueryError("max_query_chars", f"the query is {len(query)} characters, the limit is {max_chars}")
    return Query(query)


def format_prompt(query: str, kind: PromptKind = "segzero") -> str:
    """The user prompt text for ``query``: the template of ``kind`` with the normalised query and the example.

    ``kind``: ``"segzero"`` (single object, Seg-Zero checkpoints), ``"visionreasoner"`` (multi object),
    ``"compact"`` (single object, one sentence: models trained from scratch here) or ``"qwen3vl"`` (multi object
    with labels, relative 0..1000 coordinates: Qwen3-VL reasoners).
    Braces or quotes in the query are inserted verbatim (no escaping, as in the reference).
    """
    if kind not in PROMPT_KINDS:
        raise UserError(f"unknown prompt kind {kind!r}; expected one of {sorted(PROMPT_KINDS)}")
    template, example = PROMPT_KINDS[kind]
    return template.format(Question=normalize_query(query, kind), Answer=example)


def build_messages(image, query: str, *, kind: PromptKind = "segzero", system: str | None = None) -> list[dict]:
    """HF chat messages for one image and one query: ``[system?, user[image, text]]``.

    ``image`` is put in the content item as given (normally a PIL image already resized to the model
    frame, 840 x 840; a path or URL string also works with HF processors). The user turn holds the image
    item first, then the prompt text (``format_prompt(query, kind)``), as the checkpoints were trained.
    ``system``: an explicit system prompt, sent as ``{"role": "system", "content": [{"type": "text", ...}]}``;
    None adds no system message and lets the chat template insert its default.
    """
    messages: list[dict] = []
    if system is not None:
        messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "image", "image": image},
                {"type": "text", "text": format_prompt(query, kind)},
            ],
        }
    )
    return messages
