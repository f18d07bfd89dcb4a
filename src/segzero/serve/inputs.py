"""Reading a ``POST /v1/segment`` body, multipart or JSON, in memory and within the body-size limit.

Two request forms:

- ``multipart/form-data``: fields ``image`` (the file), ``query`` (text), optional ``id`` (echoed back) and
  ``mask_png`` (``true`` to get a base64 PNG mask as well);
- ``application/json``: ``{"image": "<base64 or data: URL>", "query": "...", "id": "...", "mask_png": false}``.

``mask_png`` may also be given as a URL query parameter (``/v1/segment?mask_png=true``). A flag is one of
``FLAG_VALUES`` (``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off``, any case; in JSON also
the booleans and the integers 1/0); anything else is a 422 ``invalid_field`` naming the field and the values.

A body that is not JSON, is nested too deeply, or holds an integer literal longer than ``MAX_JSON_INT_DIGITS``
characters is a 400 ``bad_json``; a body of the wrong shape (not an object, a field of the wrong type) is a 422.

The body is read as a stream and refused (413 ``max_upload_bytes``) as soon as it exceeds
``ServeLimits.max_body_bytes``; multipart files are kept in memory (Starlette would spool parts over 1 MB to a
temporary file on disk; here the spool limit is above the body limit, so nothing is ever written to disk).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from segzero.serve.limits import ApiError, ServeLimits, limit_error

FLAG_VALUES: dict[str, bool] = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
    "on": True,
    "off": False,
}
"""the accepted spellings of a boolean flag (compared case-insensitively, surrounding whitespace ignored)"""

MAX_JSON_INT_DIGITS = 100
"""longest integer literal (in characters, sign included) a JSON body may hold; no field needs more, and Python
refuses to convert integers of more than about 4300 digits anyway"""


@dataclass
class SegmentInput:
    """One parsed request: the raw image bytes (not yet checked), the query (not yet checked), options."""

    image: bytes
    query: object
    id: str | None = None
    mask_png: bool = False


def _flag(value, name: str = "mask_png") -> bool:
    """The boolean a flag field holds: a JSON boolean, the integer 1 or 0, or a ``FLAG_VALUES`` spelling."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in FLAG_VALUES:
        return FLAG_VALUES[value.strip().lower()]
    if isinstance(value, str):
        got = repr(value if len(value) <= 20 else value[:20] + "...")
    elif isinstance(value, int | float):
        got = repr(value)
    else:
        got = {list: "a JSON array", dict: "a JSON object", type(None): "null"}.get(type(value), type(value).__name__)
    allowed = ", ".join(FLAG_VALUES)
    raise ApiError(422, "invalid_field", f"{name} must be one of {allowed} (any case), got {got}")


def _parse_json_int(text: str) -> int:
    """``json.loads``'s ``parse_int``: refuses integer literals longer than ``MAX_JSON_INT_DIGITS`` characters."""
    if len(text) > MAX_JSON_INT_DIGITS:
        raise ApiError(
            400,
            "bad_json",
            f"the JSON body holds an integer of {len(text)} characters, the limit is {MAX_JSON_INT_DIGITS}",
        )
    return int(text)


def _too_big(limits: ServeLimits, size: int | None = None) -> ApiError:
    got = f"{size} bytes" if size is not None else "more bytes"
    return limit_error(
        413,
        "max_upload_bytes",
        limits.max_upload_bytes,
        f"request body has {got} than allowed for an image of at most {limits.max_upload_bytes} bytes "
        "(max_upload_bytes)",
    )


async def _bounded(request: Request, limits: ServeLimits) -> AsyncIterator[bytes]:
    """The request body chunks, raising 413 once more than ``max_body_bytes`` arrived."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise _too_big(limits, int(declared))
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limits.max_body_bytes:
            raise _too_big(limits)
        yield chunk


async def read_segment_input(request: Request, limits: ServeLimits) -> SegmentInput:
    """Parse the body by its content type; 415 for other content types, 400/422 for malformed bodies."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        parsed = await _read_multipart(request, limits)
    elif ctype == "application/json":
        parsed = await _read_json(request, limits)
    else:
        raise ApiError(
            415,
            "content_type",
            f"send multipart/form-data (fields image, query) or application/json, not {ctype or 'no content type'}",
        )
    if "mask_png" in request.query_params:
        parsed.mask_png = _flag(request.query_params["mask_png"])
    return parsed


async def _read_multipart(request: Request, limits: ServeLimits) -> SegmentInput:
    parser = MultiPartParser(
        request.headers,
        _bounded(request, limits),
        max_files=1,
        max_fields=8,
        max_part_size=limits.max_body_bytes,
    )
    parser.spool_max_size = limits.max_body_bytes + 1  # keep file parts in memory (the body is bounded above)
    try:
        form = await parser.parse()
    except MultiPartException as err:
        raise ApiError(400, "bad_multipart", f"malformed multipart body: {err}") from None
    try:
        image = form.get("image")
        if image is None:
            raise ApiError(422, "missing_field", "multipart field 'image' (the image file) is missing")
        if isinstance(image, UploadFile):
            await image.seek(0)
            data = await image.read()
        else:  # a plain text field named image: read its text as the bytes (it will fail the type sniffing)
            data = image.encode()
        if "query" not in form:
            raise ApiError(422, "missing_field", "multipart field 'query' is missing")
        query = form["query"]
        if isinstance(query, UploadFile):
            raise ApiError(422, "invalid_query", "field 'query' must be text, not a file")
        req_id = form.get("id")
        if isinstance(req_id, UploadFile):
            raise ApiError(422, "invalid_field", "field 'id' must be text, not a file")
        return SegmentInput(image=data, query=query, id=req_id, mask_png=_flag(form.get("mask_png", "false")))
    finally:
        await form.close()


async def _read_json(request: Request, limits: ServeLimits) -> SegmentInput:
    body = b"".join([chunk async for chunk in _bounded(request, limits)])
    try:
        obj = json.loads(body, parse_int=_parse_json_int)
    except RecursionError:
        raise ApiError(400, "bad_json", "the JSON body is nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError (not UTF-8/16/32)
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {err}") from None
    if not isinstance(obj, dict):
        raise ApiError(422, "bad_json", "the JSON body must be an object with 'image' and 'query'")
    for name in ("image", "query"):
        if name not in obj:
            raise ApiError(422, "missing_field", f"JSON field {name!r} is missing")
    text = obj["image"]
    if not isinstance(text, str):
        raise ApiError(422, "invalid_image", "JSON field 'image' must be a base64 string")
    if text.startswith("data:"):
        text = text.partition(",")[2]
    if (len(text) * 3) // 4 > limits.max_upload_bytes + 3:
        raise _too_big(limits, (len(text) * 3) // 4)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ApiError(400, "invalid_image", f"JSON field 'image' is not valid base64: {err}") from None
    req_id = obj.get("id")
    if req_id is not None and (isinstance(req_id, bool) or not isinstance(req_id, str | int)):
        raise ApiError(422, "invalid_field", "JSON field 'id' must be a string or an integer")
    if isinstance(req_id, str) and not _is_utf8(req_id):  # a lone surrogate escape could not be echoed back
        raise ApiError(422, "invalid_field", "JSON field 'id' is not valid UTF-8 (a lone surrogate escape)")
    return SegmentInput(
        image=data,
        query=obj["query"],
        id=None if req_id is None else str(req_id),
        mask_png=_flag(obj.get("mask_png", False)),
    )


def _is_utf8(text: str) -> bool:
    """False for a str holding a lone surrogate (which JSON's ``\\ud800``-style escapes can produce)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
