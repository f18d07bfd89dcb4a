"""The tolerant reading behind ``segzero.parsing.parse_answer(text)`` (stdlib only). Never raises on any input.

    from segzero.parsing.tolerant import parse_tolerant
    parse_tolerant(text, think=None, layout=None)   # -> Answer, in the model frame (a failure is a value)

Where it looks, best first (``_regions``): each ``<answer>...</answer>`` block, an unclosed ``<answer>`` tail, the
text after ``</think>``, then everything. In each region the matched bracket spans (``_spans``, one linear pass,
outer spans first) are decoded as strict JSON or, failing that, as a Python literal through a size- and
depth-guarded ``ast.literal_eval`` (``_decode``), within ``MAX_DECODE_ATTEMPTS`` spans per region and
``DECODE_BUDGET_CHARS`` characters per parse; the first value that is an answer (``_recognise``: a dict with a box
key and/or point keys, or a list of such dicts; ``[]`` alone in its region is "nothing here") wins. Numbers may be
ints, floats or numeric strings; a box with ``x2 < x1`` (or ``y2 < y1``) is reordered and the repair noted. An
object's string ``"label"`` (stripped; an empty one is none) becomes its ``SegObject.label``.
"""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from typing import Any

from segzero.answer import Answer, Layout, SegObject

LITERAL_EVAL_MAX_CHARS = 20_000  # longer spans skip the Python-literal fallback (ast is slow and deep on big input)
LITERAL_EVAL_MAX_DEPTH = 32  # deeper bracket nesting skips the Python-literal fallback
MAX_DECODE_ATTEMPTS = 256  # bracket spans tried per region in tolerant mode
DECODE_BUDGET_CHARS = 2_000_000  # total characters handed to decoders per parse (bounds time on adversarial text)

_BRACKETS = re.compile(r"[\[\]{}]")
_PAIR = {"]": "[", "}": "{"}
_BOX_KEYS = ("bbox", "bbox_2d", "box")
_FENCE = re.compile(r"```[A-Za-z]*")


def _to_float(v: Any) -> float | None:
    """Tolerant number: int/float/numeric string -> finite float, else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            return None
    if isinstance(v, int | float):
        try:
            f = float(v)
        except OverflowError:
            return None
        return f if math.isfinite(f) else None
    return None


def _coords(v: Any, n: int, what: str) -> tuple[tuple[float, ...] | None, str]:
    if not isinstance(v, list | tuple) or len(v) != n:
        return None, f"{what} is not a list of {n} numbers"
    out = [_to_float(x) for x in v]
    if any(x is None for x in out):
        return None, f"{what} has a non-finite or non-numeric value"
    return tuple(out), ""  # type: ignore[arg-type]


def _object_from_dict(d: dict, idx: int, notes: list[str]) -> tuple[SegObject | None, str]:
    """One object from a dict with a box key and/or point keys; (None, reason) when malformed."""
    box = None
    for key in _BOX_KEYS:
        if key in d:
            box, why = _coords(d[key], 4, f"object {idx} {key}")
            if box is None:
                return None, why
            if box[2] < box[0] or box[3] < box[1]:
                box = (min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3]))
                notes.append(f"object {idx}: box corners reordered")
            break
    raw_points: list[tuple[str, Any]] = [(k, d[k]) for k in ("points_1", "points_2", "point_2d", "point") if k in d]
    if not raw_points and "points" in d:
        pts = d["points"]
        is_pair = isinstance(pts, list | tuple) and len(pts) == 2 and not isinstance(pts[0], list | tuple)
        raw_points = [("points", pts)] if is_pair else [("points", p) for p in (pts if isinstance(pts, list) else [])]
    points = []
    for key, p in raw_points:
        pt, why = _coords(p, 2, f"object {idx} {key}")
        if pt is None:
            return None, why
        points.append(pt)
    if box is None and not points:
        return None, f"object {idx} has neither a box nor points"
    label = d.get("label")  # a phrase naming the object (Qwen3-VL's grounding items carry one); kept when a string
    label = (label.strip() or None) if isinstance(label, str) else None
    return SegObject(box=box, points=tuple(points), label=label), ""  # type: ignore[arg-type]


def _recognise(value: Any, notes: list[str]) -> tuple[list[SegObject] | None, Layout | None, str]:
    """Objects from a decoded JSON value: ``(objects, layout, "")``, ``(None, None, reason)`` for a malformed
    answer, or ``(None, None, "")`` when the value is not an answer at all (keep looking)."""
    keys = (*_BOX_KEYS, "points_1", "points_2", "point_2d", "point", "points")
    if isinstance(value, dict):
        if not any(k in value for k in keys):
            return None, None, ""
        obj, why = _object_from_dict(value, 0, notes)
        return ([obj], "single", "") if obj else (None, None, why)
    if isinstance(value, list) and (not value or all(isinstance(v, dict) for v in value)):
        if value and not any(k in v for v in value for k in keys):
            return None, None, ""
        objs = []
        for i, item in enumerate(value):
            obj, why = _object_from_dict(item, i, notes)
            if obj is None:
                return None, None, why
            objs.append(obj)
        return objs, "multi", ""
    return None, None, ""


def _spans(text: str) -> list[tuple[int, int, int]]:
    """Matched bracket spans ``(start, end_exclusive, depth)`` in start order, outer spans first (one pass)."""
    stack: list[tuple[str, int]] = []
    spans = []
    for m in _BRACKETS.finditer(text):
        ch, i = m.group(), m.start()
        if ch in "[{":
            stack.append((ch, i))
            continue
        want = _PAIR[ch]
        while stack and stack[-1][0] != want and len(stack) > 1 and any(c == want for c, _ in stack[-4:]):
            stack.pop()  # drop a few unmatched openers (e.g. "[1, 2}" typos) to re-synchronise
        if stack and stack[-1][0] == want:
            _, start = stack.pop()
            spans.append((start, i + 1, len(stack)))
    spans.sort(key=lambda s: (s[0], -s[1]))
    return spans


def _decode(span: str) -> tuple[Any, bool]:
    """``(value, True)`` from strict JSON or a guarded Python literal; ``(None, False)`` when neither reads it."""
    try:
        return json.loads(span), True
    except (ValueError, RecursionError):
        pass
    if len(span) > LITERAL_EVAL_MAX_CHARS:
        return None, False
    depth = 0
    for m in _BRACKETS.finditer(span):
        depth += 1 if m.group() in "[{" else -1
        if depth > LITERAL_EVAL_MAX_DEPTH:
            return None, False
    try:
        with warnings.catch_warnings():  # "[1or 2]" would print a SyntaxWarning to stderr from the compiler
            warnings.simplefilter("ignore", SyntaxWarning)
            return ast.literal_eval(span), True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None, False


def _regions(text: str) -> list[str]:
    """Where to look, best first: each <answer> block, an unclosed <answer> tail, after </think>, everything."""
    regions = []
    pos = 0
    while True:
        i = text.find("<answer>", pos)
        if i < 0:
            break
        j = text.find("</answer>", i + 8)
        if j < 0:
            regions.append(text[i + 8 :])
            break
        regions.append(text[i + 8 : j])
        pos = j + 9
    k = text.rfind("</think>")
    if k >= 0:
        regions.append(text[k + 8 :])
    regions.append(text)
    return regions


def parse_tolerant(text: str, think: str | None, layout: Layout | None) -> Answer:
    """The tolerant reading of ``text`` (see the module docstring); ``think``: its think text, kept in the answer;
    ``layout="single"`` requires exactly one object. Never raises."""
    seen_json = False
    budget = DECODE_BUDGET_CHARS
    for region in _regions(text):
        first_reason = ""
        attempts = 0
        taken_until = -1
        for start, end, _depth in _spans(region):
            if start < taken_until:
                continue  # inside a value that decoded but was no answer; inner spans are tried only then
            if attempts >= MAX_DECODE_ATTEMPTS or budget < end - start:
                break
            attempts += 1
            budget -= end - start
            value, decoded = _decode(region[start:end])
            if not decoded:
                continue
            seen_json = True
            notes: list[str] = []
            objs, found_layout, why = _recognise(value, notes)
            if objs is None:
                if why:
                    first_reason = first_reason or why
                    taken_until = end
                continue
            if not objs and _FENCE.sub("", region[:start] + region[end:]).strip():
                continue  # a bare "[]" inside prose is not a "nothing here" answer; only a region that is just []
            if layout == "single" and len(objs) != 1:
                first_reason = first_reason or f"expected one object, found {len(objs)}"
                taken_until = end
                continue
            return Answer(objects=tuple(objs), think=think, layout=found_layout, raw=text, notes=tuple(notes))
        if first_reason:
            return Answer.failure(first_reason, raw=text, think=think)
    reason = "JSON found but no bbox/points answer in it" if seen_json else "no JSON answer found"
    return Answer.failure(reason, raw=text, think=think)
