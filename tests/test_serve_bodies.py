"""Malformed ``POST /v1/segment`` bodies get a 4xx JSON error naming the problem, never a 5xx; flags take only
their documented spellings.

The app runs on a recording fake pipeline (no model): a refused request must never reach it, an accepted one gets
an empty answer, which is enough to see whether ``mask_png`` was honoured. Run:
``python -m pytest -q tests/test_serve_bodies.py``
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from segzero.answer import Answer
from segzero.pipeline import SegResult
from segzero.serve import ServeConfig, ServeLimits, create_app
from segzero.serve.limits import ApiError, check_query


class RecordingPipeline:
    """Answers every query with an empty mask of the image's size and records the queries it was given."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def batch(self, images, queries, *, batch_size=None):
        self.queries.extend(queries)
        return [
            SegResult(
                reasoning=None,
                objects=[],
                mask=np.zeros((im.height, im.width), dtype=bool),
                object_masks=[],
                scores=[],
                completion="",
                answer=Answer.failure("fake"),
                parse_ok=False,
            )
            for im in images
        ]


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (12, 8), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


PNG_B64 = base64.b64encode(_png()).decode()
JSON = {"content-type": "application/json"}


def _post(body: bytes | None = None, *, url: str = "/v1/segment", **kwargs):
    """Send one request to a fresh app; returns (response, the queries that reached the fake model)."""
    pipe = RecordingPipeline()
    with TestClient(create_app(pipe), raise_server_exceptions=False) as client:
        if body is not None:
            kwargs = {"content": body, "headers": JSON, **kwargs}
        response = client.post(url, **kwargs)
    return response, pipe.queries


def _json_body(**fields) -> bytes:
    return json.dumps({"image": PNG_B64, "query": "the red square", **fields}).encode()


def _raw_json(fragment: bytes) -> bytes:
    """A JSON body with ``fragment`` spliced in verbatim as the value of ``id`` (for what json.dumps cannot write)."""
    return b'{"image": "' + PNG_B64.encode() + b'", "query": "the red square", "id": ' + fragment + b"}"


DEEP = 100_000  # far beyond any parser's nesting limit


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        (b"[" * DEEP + b"]" * DEEP, 400, "bad_json", "nested too deeply"),  # a bare nested array
        (_raw_json(b"[" * DEEP + b"]" * DEEP), 400, "bad_json", "nested too deeply"),  # nested inside a field
        (_raw_json(b"7" * 5000), 400, "bad_json", "integer of 5000 characters"),  # past Python's int-string limit
        (_raw_json(b"-" + b"7" * 101), 400, "bad_json", "integer of 102 characters"),  # past ours, sign counted
        (b"{oops", 400, "bad_json", "not valid JSON"),  # not JSON at all
        (b'{"image": "", "query": "\xff"}', 400, "bad_json", "not valid JSON"),  # bytes that are not UTF-8
        (b"[]", 422, "bad_json", "must be an object"),  # JSON, but not an object
        (_raw_json(b"true"), 422, "invalid_field", "'id' must be a string or an integer"),  # a boolean id
        (_raw_json(b'"\\udcff"'), 422, "invalid_field", "'id' is not valid UTF-8"),  # could not be echoed back
        (_json_body(query=["the", "cup"]), 422, "invalid_query", "must be a string, got list"),  # not text
        (_json_body().replace(b"the red square", b"the \\udcff red"), 422, "invalid_query", "byte 0xff"),  # escape
        (_json_body(query="x" * 1001), 422, "max_query_chars", "1001 characters, the limit is 1000"),  # too long
    ],
)
def test_malformed_json_bodies_are_4xx(body, status, code, words):
    response, reached = _post(body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"] and "\n" not in error["message"]
    assert reached == []  # refused before the model


@pytest.mark.parametrize(
    ("fragment", "status", "outcome"),
    [
        (b"7" * 100, 200, "7" * 100),  # an integer literal exactly at the limit is read and echoed
        (b"-" + b"7" * 99, 200, "-" + "7" * 99),  # the sign counts: 100 characters
        (b"[" * 50 + b"]" * 50, 422, "invalid_field"),  # moderate nesting parses; the id is refused for its type
    ],
)
def test_json_limits_admit_what_they_should(fragment, status, outcome):
    response, reached = _post(_raw_json(fragment))
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["id"] == outcome and reached == ["the red square"]
    else:
        assert response.json()["error"]["code"] == outcome and reached == []


# each spelling of FLAG_VALUES, in odd case and spacing, and what it means
SPELLINGS = [
    ("true", True),  # the canonical pair
    ("FALSE", False),  # any case
    ("1", True),  # digits
    ("0", False),
    (" Yes ", True),  # surrounding whitespace ignored
    ("no", False),
    ("ON", True),  # what an HTML checkbox sends
    ("off", False),
]


@pytest.mark.parametrize(("value", "meaning"), SPELLINGS)
@pytest.mark.parametrize("where", ["query-string", "form", "json"])
def test_flag_spellings_are_honoured(where, value, meaning):
    if where == "query-string":
        response, _ = _post(_json_body(), url=f"/v1/segment?mask_png={value.strip()}")
    elif where == "form":
        files = {"image": ("a.png", _png(), "image/png")}
        response, _ = _post(files=files, data={"query": "the red square", "mask_png": value})
    else:
        response, _ = _post(_json_body(mask_png=value))
    assert response.status_code == 200, response.text
    assert ("mask_png" in response.json()) is meaning


@pytest.mark.parametrize(
    ("json_value", "meaning"),
    [
        (True, True),  # a JSON boolean
        (False, False),
        (1, True),  # the integers 1 and 0
        (0, False),
    ],
)
def test_json_flag_booleans_and_bits(json_value, meaning):
    response, _ = _post(_json_body(mask_png=json_value))
    assert response.status_code == 200 and ("mask_png" in response.json()) is meaning


@pytest.mark.parametrize(
    ("where", "value", "shown"),
    [
        ("query-string", "maybe", "'maybe'"),  # the reported case: once silently false
        ("query-string", "%ff", "'\ufffd'"),  # a percent-escape that is not UTF-8 (decoded as U+FFFD)
        ("form", "maybe", "'maybe'"),  # the same in a multipart field
        ("form", "", "''"),  # an empty field is not false either
        ("json", "tru", "'tru'"),  # a near miss
        ("json", 2, "2"),  # an integer other than 1 and 0
        ("json", 1.0, "1.0"),  # a float
        ("json", None, "null"),  # JSON null
        ("json", ["true"], "a JSON array"),  # a list
        ("json", "y" * 50, "'" + "y" * 20 + "...'"),  # long values are shortened in the message
    ],
)
def test_unknown_flag_values_are_refused_naming_field_and_values(where, value, shown):
    if where == "query-string":
        response, reached = _post(_json_body(), url=f"/v1/segment?mask_png={value}")
    elif where == "form":
        files = {"image": ("a.png", _png(), "image/png")}
        response, reached = _post(files=files, data={"query": "the red square", "mask_png": value})
    else:
        response, reached = _post(_json_body(mask_png=value))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_field" and reached == []
    allowed = "true, false, 1, 0, yes, no, on, off"
    assert error["message"] == f"mask_png must be one of {allowed} (any case), got {shown}"


def test_query_limit_default_and_override_come_from_the_one_constant():
    # the server's default is the CLI's limit; a configured limit replaces it in the shared validator
    from segzero.prompts import MAX_QUERY_CHARS

    assert MAX_QUERY_CHARS == 1000 and ServeLimits().max_query_chars == 1000
    assert check_query("x" * 1000, ServeLimits()) == "x" * 1000
    with pytest.raises(ApiError) as info:
        check_query("x" * 11, ServeLimits(max_query_chars=10))
    body = info.value.body()["error"]
    assert (info.value.status, body["limit"], body["limit_value"]) == (422, "max_query_chars", 10)
    assert body["message"] == "the query is 11 characters, the limit is 10 (max_query_chars)"
    response, reached = _post(_json_body(query="x" * 11))
    assert response.status_code == 200 and reached == ["x" * 11]  # the default app allows 1000


def test_configured_limit_reaches_the_app():
    pipe = RecordingPipeline()
    app = create_app(pipe, ServeConfig(limits=ServeLimits(max_query_chars=10)))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/segment", content=_json_body(query="x" * 11), headers=JSON)
    assert response.status_code == 422 and response.json()["error"]["code"] == "max_query_chars"
    assert pipe.queries == []
