"""Read a model completion into a typed ``Answer`` (stdlib only). Never raises on any input.

Two modes:

- ``parse_answer(text)`` (tolerant, for inference): finds the answer JSON inside ``<answer>...</answer>`` (first
  block with a recognisable answer), else in an unclosed ``<answer>`` tail, else after ``</think>``, else
  anywhere; accepts code fences, text around the JSON, a missing ``<think>``, Python literals (single quotes,
  trailing commas, via a size- and depth-guarded ``ast.literal_eval``), numbers as floats or numeric strings,
  both layouts (a dict with ``bbox``/``points_1``/``points_2`` — also ``bbox_2d``/``point_2d`` — or a list of
  ``bbox_2d``/``point_2d`` dicts; ``[]`` is a valid "nothing here"). A box written with ``x2 < x1`` (or
  ``y2 < y1``) is reordered and the repair recorded in ``Answer.notes``. NaN/inf or a malformed box is a failure
  with a reason. The machinery (regions, bracket spans, guarded decoding) is ``segzero.parsing.tolerant``.
- ``parse_answer(text, strict=True)`` reads as the reference rewards do: single layout = the first
  ``{...}`` without a closing brace inside, anywhere in the text, parsed with ``json.loads``; multi layout = the
  JSON between the first ``<answer>`` and the next ``</answer>``. ``ok`` is True only when the answer has the
  exact keys and finite numbers the format reward asks for. ``layout=None`` in strict mode means "multi" when the
  answer block starts with ``[``, else "single".

A chat message list (``[{"role": "assistant", "content": ...}]``; content may be a list of
``{"type": "text", "text": ...}`` parts) means the last assistant message. All scanning is linear-time (no
backtracking regex over model text).

``parse_solution(solution)`` reads ground truth in every released form and raises ``ValueError`` on bad gt.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from segzero.answer import Answer, Layout, SegObject
from segzero.parsing.tolerant import parse_tolerant

_SEP = re.compile(r"</think>\s*<answer>")


# --------------------------------------------------------------------------------------------------- text access
def completion_text(completion: Any) -> tuple[str | None, str]:
    """The text of a completion: a str, a chat message (dict) or list of messages (last assistant one wins).

    Returns ``(text, "")`` or ``(None, reason)``. Message content may be a str or a list of text parts.
    """
    if isinstance(completion, str):
        return completion, ""
    msg: Any = completion
    if isinstance(completion, list | tuple):
        dicts = [m for m in completion if isinstance(m, dict)]
        if not dicts:
            return None, "empty or non-message list"
        assistant = [m for m in dicts if m.get("role") == "assistant"]
        msg = (assistant or dicts)[-1]
    if not isinstance(msg, dict):
        return None, f"unsupported completion type {type(completion).__name__}"
    content = msg.get("content")
    if isinstance(content, str):
        return content, ""
    if isinstance(content, list | tuple):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type", "text") == "text"]
        return "".join(p for p in parts if isinstance(p, str)), ""
    return None, "message without text content"


def text_of(completion: Any) -> str:
    """The text of a completion as ``completion_text`` reads it; ``""`` when it has none."""
    return completion_text(completion)[0] or ""


def think_format_ok(text: str) -> bool:
    """``re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>", text, re.DOTALL)``, in linear time.

    The text must start with ``<think>``, end with ``</answer>``, and hold ``</think>``, whitespace, ``<answer>``
    in between without overlapping those two ends.
    """
    if not (text.startswith("<think>") and text.endswith("</answer>")):
        return False
    m = _SEP.search(text, 7)
    return m is not None and m.end() <= len(text) - len("</answer>")


def extract_think(text: str) -> str | None:
    """Text inside the first ``<think>...</think>`` (stripped); tolerant of one missing tag; None when absent."""
    start = text.find("<think>")
    end = text.find("</think>", start + 7 if start >= 0 else 0)
    if start >= 0 and end >= 0:
        return text[start + 7 : end].strip()
    if start >= 0:  # unclosed: up to <answer> or the end
        stop = text.find("<answer>", start)
        return text[start + 7 : stop if stop >= 0 else len(text)].strip()
    if end >= 0:  # the opening tag was in the prompt
        return text[:end].strip()
    return None


def first_flat_object(text: str) -> str | None:
    """The reference single-object reading ``re.search(r"{[^}]+}", text)``, in linear time."""
    i = text.find("{")
    while i >= 0:
        j = text.find("}", i + 1)
        if j < 0:
            return None
        if j > i + 1:
            return text[i : j + 1]
        i = text.find("{", i + 1)
    return None


def answer_block(text: str) -> str | None:
    """The reference multi-object reading ``re.search(r"<answer>\\s*(.*?)\\s*</answer>", text, re.DOTALL)``.

    Content between the first ``<answer>`` and the next ``</answer>``, stripped; None without such a pair.
    """
    i = text.find("<answer>")
    if i < 0:
        return None
    j = text.find("</answer>", i + 8)
    return None if j < 0 else text[i + 8 : j].strip()


# ------------------------------------------------------------------------------------------------ number checks
def is_number(v: Any) -> bool:
    """A JSON number as the rewards accept it: int or float, not bool, finite as a float (an integer too large for
    a float, e.g. 400 digits, is not a coordinate: the arithmetic of the rewards would overflow on it)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def number_list(v: Any, n: int) -> list | None:
    """``v`` when it is a list of exactly ``n`` finite numbers (strict reading), else None."""
    return v if isinstance(v, list) and len(v) == n and all(is_number(x) for x in v) else None


# -------------------------------------------------------------------------------------------------- strict mode
def _loads(s: str) -> tuple[Any, bool]:
    try:
        return json.loads(s), True
    except (ValueError, RecursionError):
        return None, False


def _parse_strict(text: str, think: str | None, layout: Layout | None) -> Answer:
    block = answer_block(text)
    if layout is None:
        layout = "multi" if block is not None and block.startswith("[") else "single"
    if layout == "single":
        span = first_flat_object(text)
        if span is None:
            return Answer.failure("no {...} object in the completion", raw=text, think=think)
        data, ok = _loads(span)
        if not ok or not isinstance(data, dict):
            return Answer.failure("first {...} object is not valid JSON", raw=text, think=think)
        box = number_list(data.get("bbox"), 4)
        p1, p2 = number_list(data.get("points_1"), 2), number_list(data.get("points_2"), 2)
        if box is None or p1 is None or p2 is None:
            return Answer.failure("needs bbox (4 numbers), points_1 and points_2 (2 numbers)", raw=text, think=think)
        obj = SegObject(box=tuple(box), points=(tuple(p1), tuple(p2)))  # type: ignore[arg-type]
        return Answer(objects=(obj,), think=think, layout="single", raw=text)
    if block is None:
        return Answer.failure("no <answer>...</answer> block", raw=text, think=think)
    data, ok = _loads(block)
    if not ok or not isinstance(data, list):
        return Answer.failure("answer block is not a JSON list", raw=text, think=think)
    objs = []
    for i, item in enumerate(data):
        box = number_list(item.get("bbox_2d"), 4) if isinstance(item, dict) else None
        pt = number_list(item.get("point_2d"), 2) if isinstance(item, dict) else None
        if box is None or pt is None:
            return Answer.failure(f"item {i} needs bbox_2d (4 numbers) and point_2d (2)", raw=text, think=think)
        objs.append(SegObject(box=tuple(box), points=(tuple(pt),)))  # type: ignore[arg-type]
    return Answer(objects=tuple(objs), think=think, layout="multi", raw=text)


def parse_answer(completion: str | list[dict], *, strict: bool = False, layout: Layout | None = None) -> Answer:
    """Parse a completion (str or chat message list) into an ``Answer`` in the model frame. Never raises.

    ``strict=False`` (default): tolerant inference reading (see the module docstring); ``layout="single"``
    then requires exactly one object, ``"multi"``/None accept any count. ``strict=True``: the reference rewards'
    reading. Failure is ``Answer(ok=False, reason=...)``.
    """
    text, why = completion_text(completion)
    if text is None:
        return Answer.failure(why)
    if layout not in (None, "single", "multi"):
        return Answer.failure(f"unknown layout {layout!r}", raw=text)
    think = extract_think(text)
    if strict:
        return _parse_strict(text, think, layout)
    return parse_tolerant(text, think, layout)


# ------------------------------------------------------------------------------------------------- ground truth
_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_GT_BOX = re.compile(rf"<box>\s*\({_NUM},{_NUM}\)\s*,\s*\({_NUM},{_NUM}\)\s*</box>")
_GT_POINTS = re.compile(r"<points>(.*?)</points>", re.DOTALL)
_GT_POINT = re.compile(rf"\({_NUM},{_NUM}\)")


def _num(s: str) -> int | float:
    """A gt coordinate; ``ValueError`` unless it is a finite number (a 400-digit integer is not)."""
    try:
        v = int(s) if re.fullmatch(r"-?\d+", s) else float(s)
    except ValueError:  # more digits than Python converts
        v = math.inf
    if not is_number(v):
        raise ValueError(f"gt coordinate {s[:24]!r} is not a finite number")
    return v


def _gt_item(item: Any, i: int) -> SegObject:
    if isinstance(item, SegObject):
        return item
    if not isinstance(item, dict):
        raise ValueError(f"gt item {i} is {type(item).__name__}, expected a dict with bbox_2d and point_2d")
    box = number_list(item.get("bbox_2d", item.get("bbox")), 4)
    if box is None:
        raise ValueError(f"gt item {i}: bbox_2d must be a list of 4 finite numbers")
    keys = [k for k in ("point_2d", "points_1", "points_2") if k in item]
    if not keys:
        raise ValueError(f"gt item {i}: missing point_2d")
    points = []
    for k in keys:
        p = number_list(item[k], 2)
        if p is None:
            raise ValueError(f"gt item {i}: {k} must be a list of 2 finite numbers")
        points.append(tuple(p))
    return SegObject(box=tuple(box), points=tuple(points))  # type: ignore[arg-type]


def format_solution(objects: Sequence[SegObject], layout: Layout = "single") -> str:
    """gt objects -> the released gt text, integer pixels (Python's ``round``: half to even); ``parse_solution``
    reads it back. ``"single"``: Seg-Zero's ``<box>(x1,y1),(x2,y2)</box><points>(x,y),(x,y)</points>`` (exactly one
    object, all its points); ``"multi"``: VisionReasoner's JSON list of ``bbox_2d`` and ``point_2d`` (each
    object's first point).

    >>> obj = SegObject(box=(1.4, 2, 30, 40.5), points=((10, 20), (15.5, 25)))
    >>> format_solution([obj])
    '<box>(1,2),(30,40)</box><points>(10,20),(16,25)</points>'
    >>> format_solution([obj], "multi")
    '[{"bbox_2d": [1, 2, 30, 40], "point_2d": [10, 20]}]'
    >>> parse_solution(format_solution([obj]))[0].box
    (1, 2, 30, 40)
    """

    def ints(values) -> list[int]:
        return [int(round(float(v))) for v in values]

    if layout == "single":
        (obj,) = objects
        x1, y1, x2, y2 = ints(obj.box)
        points = "),(".join(",".join(map(str, ints(p))) for p in obj.points)
        return f"<box>({x1},{y1}),({x2},{y2})</box><points>({points})</points>"
    if layout == "multi":
        return json.dumps([{"bbox_2d": ints(o.box), "point_2d": ints(o.points[0])} for o in objects])
    raise ValueError(f"layout must be 'single' or 'multi', got {layout!r}")


def parse_solution(solution: Any) -> tuple[SegObject, ...]:
    """Ground truth in any released form -> objects (model frame, numbers as given).

    Accepted: ``"<box>(x1,y1),(x2,y2)</box><points>(x,y),(x,y)</points>"`` (Seg-Zero; one object, its points);
    a JSON list of ``{"bbox_2d": [4], "point_2d": [2]}`` as a str or a list (VisionReasoner; may be empty);
    a dict of either key style; a ``SegObject``, a sequence of them, or an ``Answer``. Raises ``ValueError``
    naming the problem on malformed gt.
    """
    if isinstance(solution, Answer):
        return solution.objects
    if isinstance(solution, SegObject | dict):
        return (_gt_item(solution, 0),)
    if isinstance(solution, str):
        s = solution.strip()
        if s.startswith("[") or s.startswith("{"):
            try:
                data = json.loads(s)
            except (ValueError, RecursionError) as err:
                raise ValueError(f"gt is not valid JSON: {err}") from None
            return parse_solution(data)
        m = _GT_BOX.search(s)
        if m is None:
            raise ValueError(f"gt has no <box>(x1,y1),(x2,y2)</box> and is not a JSON list: {s[:80]!r}")
        box = tuple(_num(g) for g in m.groups())
        pm = _GT_POINTS.search(s)
        points = tuple((_num(a), _num(b)) for a, b in _GT_POINT.findall(pm.group(1))) if pm else ()
        if not points:
            raise ValueError(f"gt has no <points>(x,y),...</points>: {s[:80]!r}")
        return (SegObject(box=box, points=points),)  # type: ignore[arg-type]
    if isinstance(solution, Sequence):
        return tuple(_gt_item(item, i) for i, item in enumerate(solution))
    raise ValueError(f"unsupported gt type {type(solution).__name__}")
