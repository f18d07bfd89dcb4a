"""API tests of ``segzero.serve`` on the tiny offline models, through httpx's ASGI transport (no network).

Covers valid multipart and JSON requests, every request limit, corrupt and mislabelled images, empty queries,
a model failure (5xx, no traceback), nothing written to disk, 20 concurrent requests batched and matched to their
ids, health, examples, the page and the OpenAPI schema. Run: ``python -m pytest -q tests/test_serve_api.py``
"""

from __future__ import annotations

import asyncio
import base64
import io
import tempfile
import threading

import httpx
import numpy as np
import pytest
from PIL import Image

from segzero.pipeline import SegZeroPipeline
from segzero.serve import ServeConfig, ServeLimits, create_app
from segzero.serve.encoding import rle_to_mask

pytestmark = pytest.mark.slow

FRAME = 56  # the taught tiny reasoner answers in a 56 x 56 frame


def _png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def _noise(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def pipe(tiny_answering_models) -> SegZeroPipeline:
    return SegZeroPipeline.from_pretrained(
        reasoner=tiny_answering_models["reasoner"],
        segmenter=tiny_answering_models["segmenter"],
        frame=FRAME,
        max_new_tokens=80,
    )


def _run(app, *requests: dict) -> list[httpx.Response]:
    """Send ``requests`` (httpx.request keyword dicts) concurrently to ``app`` in memory; responses in order."""

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve.test", timeout=60) as client:
            return await asyncio.gather(*(client.request(**r) for r in requests))

    return asyncio.run(main())


def _multipart(data: bytes, query, *, filename="image.png", ctype="image/png", **fields) -> dict:
    form = {"query": query, **fields} if query is not None else dict(fields)
    return {"method": "POST", "url": "/v1/segment", "files": {"image": (filename, data, ctype)}, "data": form}


def _json(data: bytes, query, **fields) -> dict:
    return {
        "method": "POST",
        "url": "/v1/segment",
        "json": {"image": base64.b64encode(data).decode(), "query": query, **fields},
    }


def _check_matches(body: dict, expected) -> None:
    """The response equals the pipeline's own result for the same input."""
    assert body["reasoning"] == expected.reasoning
    assert body["objects"] == [o.to_dict() for o in expected.objects]
    assert np.array_equal(rle_to_mask(body["mask_rle"]), expected.mask)
    assert body["image_size"] == list(expected.size)


def test_multipart_and_json_requests(pipe):
    app = create_app(pipe)
    image = _noise(90, 60)
    expected = pipe(image, "the thing on the left")
    r_form, r_json, r_png = _run(
        app,
        _multipart(_png(image), "the thing on the left", id="form-1"),
        _json(_png(image), "the thing on the left", id="json-1"),
        {**_multipart(_png(image), "the thing on the left"), "url": "/v1/segment?mask_png=true"},
    )
    for r, rid in ((r_form, "form-1"), (r_json, "json-1"), (r_png, None)):
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["id"] == rid
        assert set(body) >= {"reasoning", "objects", "mask_rle", "scores", "parse_ok", "completion", "timing"}
        assert body["mask_rle"]["size"] == [60, 90] and isinstance(body["mask_rle"]["counts"], str)
        _check_matches(body, expected)
    # the taught model answers a box and two points, mapped from the 56 frame to 90 x 60 pixels
    assert r_form.json()["parse_ok"] and len(r_form.json()["objects"]) == 1
    assert "mask_png" not in r_form.json()
    png = Image.open(io.BytesIO(base64.b64decode(r_png.json()["mask_png"])))
    assert png.size == (90, 60) and np.array_equal(np.asarray(png) > 127, expected.mask)


def test_exif_rotated_jpeg_is_answered_in_its_displayed_frame(pipe):
    image = _noise(80, 50)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif)
    (r,) = _run(create_app(pipe), _multipart(buf.getvalue(), "the top object", filename="p.jpg", ctype="image/jpeg"))
    assert r.status_code == 200 and r.json()["image_size"] == [50, 80]
    assert r.json()["mask_rle"]["size"] == [80, 50]


SMALL = ServeLimits(max_upload_bytes=40_000, max_pixels=150 * 150, max_query_chars=30)
_big_noise = _png(_noise(140, 140, seed=3))  # ~59 KB > 40 KB, but 19600 px < 22500 px


@pytest.mark.parametrize(
    "request_kwargs, status, code",
    [
        (_multipart(_big_noise, "q"), 413, "max_upload_bytes"),  # image file over the byte limit
        (_json(_big_noise, "q"), 413, "max_upload_bytes"),  # the same as base64 JSON
        (_multipart(b"\x89PNG\r\n\x1a\n" + b"0" * 200_000, "q"), 413, "max_upload_bytes"),  # body cut off early
        (_multipart(_png(Image.new("RGB", (151, 150))), "q"), 413, "max_pixels"),  # tiny file, too many pixels
        (_multipart(_png(Image.new("RGB", (10, 10))), "x" * 31), 422, "max_query_chars"),  # query one over
        (_multipart(_png(Image.new("RGB", (10, 10))), ""), 422, "empty_query"),  # empty query
        (_json(_png(Image.new("RGB", (10, 10))), "  .  "), 422, "empty_query"),  # nothing left after normalising
        (_multipart(b"I am a text file\n", "q", filename="cat.png"), 415, "allowed_image_types"),  # name lies
        (_multipart(_png(Image.new("RGB", (9, 9)), "TIFF"), "q", filename="a.tif"), 415, "allowed_image_types"),
        (_multipart(_png(_noise(30, 30))[:300], "q"), 400, "invalid_image"),  # corrupt (truncated) PNG bytes
        (_multipart(b"\xff\xd8\xff" + bytes(100), "q", filename="a.jpg"), 400, "invalid_image"),  # fake JPEG
        (
            {"method": "POST", "url": "/v1/segment", "json": {"image": "not base64!", "query": "q"}},
            400,
            "invalid_image",
        ),
        (
            {
                "method": "POST",
                "url": "/v1/segment",
                "content": b"{oops",
                "headers": {"content-type": "application/json"},
            },
            400,
            "bad_json",
        ),
        (
            {"method": "POST", "url": "/v1/segment", "data": {"query": "q"}, "files": {"other": ("a", b"x")}},
            422,
            "missing_field",
        ),
        (_multipart(_png(Image.new("RGB", (9, 9))), None), 422, "missing_field"),  # no query field at all
        (
            {"method": "POST", "url": "/v1/segment", "content": b"hello", "headers": {"content-type": "text/plain"}},
            415,
            "content_type",
        ),
        ({"method": "GET", "url": "/v1/segment"}, 405, "method_not_allowed"),  # wrong method, still JSON
        ({"method": "GET", "url": "/v1/examples/99.png"}, 404, "not_found"),  # no such example
    ],
)
def test_limits_and_bad_input(pipe, request_kwargs, status, code):
    app = create_app(pipe, ServeConfig(limits=SMALL))
    (r,) = _run(app, request_kwargs)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"]
    if code.startswith(("max_", "allowed_")):  # a limit violation names the limit and its value
        value = getattr(SMALL, code)
        assert err["limit"] == code and err["limit_value"] == (list(value) if isinstance(value, tuple) else value)
    assert app.state.queue.stats.requests == 0  # nothing reached the model


def test_model_failure_is_a_500_without_traceback(pipe, monkeypatch):
    def broken(*args, **kwargs):  # fault injection: the real reasoner crashing mid-request
        raise RuntimeError("CUDA error at /secret/path/model.py line 42")

    monkeypatch.setattr(pipe.reasoner, "generate", broken)
    app = create_app(pipe)
    r, health = _run(app, _multipart(_png(_noise(20, 20)), "q"), {"method": "GET", "url": "/healthz"})
    assert r.status_code == 500
    err = r.json()["error"]
    assert err["code"] == "model_failure" and "RuntimeError" in err["message"]
    assert "secret" not in r.text and "Traceback" not in r.text and "line 42" not in r.text
    assert health.status_code == 200


def test_event_loop_answers_while_the_model_runs(pipe, monkeypatch):
    started, release = threading.Event(), threading.Event()
    real_generate = pipe.reasoner.generate
    released: list[bool] = []

    def gated(*args, **kwargs):  # the real generate, held until the test has seen /healthz answer
        started.set()
        released.append(release.wait(10))  # False: nobody released it, i.e. the event loop was blocked
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(pipe.reasoner, "generate", gated)
    app = create_app(pipe)

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve.test", timeout=60) as client:
            seg = asyncio.ensure_future(
                client.post(**{k: v for k, v in _multipart(_png(_noise(20, 20)), "q").items() if k != "method"})
            )
            try:
                await asyncio.get_running_loop().run_in_executor(None, started.wait, 30)
                # if the model ran on the event loop, this would wait for the release and time out
                health = await asyncio.wait_for(client.get("/healthz"), 10)
            finally:
                release.set()
            return health, await seg

    health, seg = asyncio.run(main())
    assert health.status_code == 200 and seg.status_code == 200
    assert released == [True]


def test_nothing_is_written_to_disk(pipe, monkeypatch):
    def no_disk(*args, **kwargs):
        raise AssertionError("a request tried to create a temporary file")

    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, no_disk)
    # 1.2 MB of noise: Starlette's own form parser would spool a file part this big to disk
    data = _png(_noise(640, 640, seed=5))
    assert len(data) > 1024 * 1024
    app = create_app(pipe, ServeConfig(limits=ServeLimits(max_upload_bytes=4 * 2**20)))
    (r,) = _run(app, _multipart(data, "the middle"))
    assert r.status_code == 200, r.text
    assert r.json()["mask_rle"]["size"] == [640, 640]


def test_twenty_concurrent_requests_are_batched_and_matched_to_their_ids(pipe):
    app = create_app(pipe, ServeConfig(max_batch_size=8, max_wait_ms=100))
    images = [_noise(40 + 3 * i, 30 + 2 * i, seed=i) for i in range(20)]  # every size differs: answers identify
    queries = [f"object number {i}" for i in range(20)]
    expected = pipe.batch(images, queries, batch_size=8)
    requests = [
        _multipart(_png(im), q, id=f"req-{i}") if i % 2 else _json(_png(im), q, id=f"req-{i}")
        for i, (im, q) in enumerate(zip(images, queries, strict=True))
    ]
    *responses, health = _run(app, *requests, {"method": "GET", "url": "/healthz"})
    for i, r in enumerate(responses):
        assert r.status_code == 200, r.text
        assert r.json()["id"] == f"req-{i}"
        _check_matches(r.json(), expected[i])
    stats = app.state.queue.stats
    assert stats.requests == 20 and stats.largest_batch > 1 and stats.batches < 20  # requests were batched
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_health_examples_page_and_openapi(pipe):
    from segzero.shapes.examples import ShapesExamples

    app = create_app(pipe, ServeConfig(title="segzero-test", examples=ShapesExamples()))
    health, examples, example, page, schema, docs = _run(
        app,
        {"method": "GET", "url": "/healthz"},
        {"method": "GET", "url": "/v1/examples"},
        {"method": "GET", "url": "/v1/examples/1.png"},
        {"method": "GET", "url": "/"},
        {"method": "GET", "url": "/openapi.json"},
        {"method": "GET", "url": "/docs"},
    )
    assert health.status_code == 200 and health.json()["max_batch_size"] == 8
    listed = examples.json()
    assert len(listed) == 6 and all(e["query"] for e in listed)
    assert example.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(example.content)).size == tuple(listed[1]["size"])
    assert page.status_code == 200 and 'id="overlay"' in page.text and "segzero-test" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # self-contained, works offline
    body = schema.json()["paths"]["/v1/segment"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert docs.status_code == 200


def test_an_app_without_examples_offers_none(pipe):
    listed, missing = _run(
        create_app(pipe, ServeConfig()),
        {"method": "GET", "url": "/v1/examples"},
        {"method": "GET", "url": "/v1/examples/0.png"},
    )
    assert listed.json() == [] and missing.status_code == 404
