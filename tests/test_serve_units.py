"""Unit tests of the serving helpers that need no model: type sniffing, image/query limits, RLE, the batch queue.

Run: ``python -m pytest -q tests/test_serve_units.py``
"""

from __future__ import annotations

import asyncio
import io
import threading

import numpy as np
import pytest
from PIL import Image

from segzero.serve.batching import BatchQueue, ModelFailure, QueueClosed, QueueFull
from segzero.serve.encoding import mask_to_png_base64, mask_to_rle, rle_to_mask
from segzero.serve.limits import ApiError, ServeLimits, check_query, decode_image, sniff_image_type


def _encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def _noise(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


FLAT = Image.new("RGB", (40, 30), (200, 30, 30))


@pytest.mark.parametrize(
    "data, expected",
    [
        (_encode(FLAT, "PNG"), "png"),  # PNG signature
        (_encode(FLAT, "JPEG"), "jpeg"),  # JPEG SOI marker
        (_encode(FLAT, "GIF"), "gif"),  # GIF89a header
        (_encode(FLAT, "BMP"), "bmp"),  # BM + header
        (_encode(FLAT, "TIFF"), "tiff"),  # little-endian TIFF
        (_encode(FLAT, "WEBP"), "webp"),  # RIFF....WEBP
        (b"hello, I am a text file named cat.png\n", None),  # text: no magic number matches
        (b"", None),  # nothing at all
        (b"BM", None),  # too short to be a BMP header
    ],
)
def test_sniff_image_type(data, expected):
    assert sniff_image_type(data) == expected


LIMITS = ServeLimits(max_upload_bytes=50_000, max_pixels=200 * 200, max_query_chars=20)
_png_noise = _encode(_noise(150, 150), "PNG")  # ~67 KB of incompressible pixels, 22500 px


@pytest.mark.parametrize(
    "data, status, code",
    [
        (_png_noise, 413, "max_upload_bytes"),  # more bytes than allowed, checked before anything is decoded
        (_encode(Image.new("RGB", (201, 200)), "PNG"), 413, "max_pixels"),  # small file, too many pixels
        (_encode(FLAT, "TIFF"), 415, "allowed_image_types"),  # a real image of a type not allowed by default
        (b"just text, named photo.png by its sender", 415, "allowed_image_types"),  # the name is not trusted
        (b"", 400, "invalid_image"),  # empty upload
        (_encode(FLAT, "PNG")[:8] + b"\x00" * 64, 400, "invalid_image"),  # PNG signature, corrupt header
        (_encode(_noise(60, 60), "PNG")[:2000], 400, "invalid_image"),  # truncated pixel data: fails at decode
    ],
)
def test_decode_image_rejects(data, status, code):
    with pytest.raises(ApiError) as info:
        decode_image(data, LIMITS)
    err = info.value
    assert (err.status, err.code) == (status, code)
    body = err.body()["error"]
    # a limit violation names the limit and its value; other errors have no limit
    assert (body.get("limit") == code) == code.startswith(("max_", "allowed_"))


@pytest.mark.parametrize(
    "image, fmt",
    [
        (FLAT, "PNG"),  # plain RGB
        (FLAT.convert("L"), "PNG"),  # grayscale comes back as RGB
        (Image.new("RGBA", (30, 20), (0, 0, 255, 128)), "PNG"),  # alpha is composited
        (FLAT, "JPEG"),  # lossy format
        (Image.new("RGB", (200, 200)), "PNG"),  # exactly at max_pixels is allowed
    ],
)
def test_decode_image_accepts(image, fmt):
    out = decode_image(_encode(image, fmt), LIMITS)
    assert out.mode == "RGB" and out.size == image.size


@pytest.mark.parametrize(
    "query, expected",
    [
        ("  the red circle  ", "the red circle"),  # surrounding whitespace stripped
        ("x" * 20, "x" * 20),  # exactly the limit
        ("", ApiError),  # empty
        ("   \n", ApiError),  # only whitespace
        ("...", ApiError),  # empty after the prompt's normalisation (trailing dots dropped)
        ("x" * 21, ApiError),  # one over max_query_chars
        (42, ApiError),  # not a string
        ("the \udcff red", ApiError),  # a lone surrogate (a JSON escape): not valid UTF-8
    ],
)
def test_check_query(query, expected):
    if expected is ApiError:
        with pytest.raises(ApiError) as info:
            check_query(query, LIMITS)
        assert info.value.status == 422
        assert info.value.code in {"empty_query", "max_query_chars", "invalid_query"}
    else:
        assert check_query(query, LIMITS) == expected


@pytest.mark.parametrize(
    "mask",
    [
        np.zeros((7, 5), dtype=bool),  # empty mask
        np.ones((3, 9), dtype=bool),  # full mask, wide
        np.random.default_rng(1).random((31, 17)) > 0.5,  # noise, odd sizes (column-major order matters)
    ],
)
def test_rle_and_png_round_trip(mask):
    rle = mask_to_rle(mask)
    assert rle["size"] == list(mask.shape) and isinstance(rle["counts"], str)
    assert np.array_equal(rle_to_mask(rle), mask)
    import base64

    png = Image.open(io.BytesIO(base64.b64decode(mask_to_png_base64(mask))))
    assert png.size == (mask.shape[1], mask.shape[0]) and np.array_equal(np.asarray(png) > 127, mask)


def test_batch_queue_groups_requests_and_returns_each_answer_to_its_caller():
    calls: list[list[str]] = []

    def run(images, queries):
        calls.append(list(queries))
        return [f"{im}:{q}" for im, q in zip(images, queries, strict=True)]

    async def main():
        queue = BatchQueue(run, max_batch_size=4, max_wait_ms=200)
        out = await asyncio.gather(*(queue.submit(i, f"q{i}") for i in range(10)))
        await queue.close()
        return out, queue.stats

    out, stats = asyncio.run(main())
    assert out == [f"{i}:q{i}" for i in range(10)]
    assert [len(c) for c in calls] == [4, 4, 2]  # full batches, then the rest after max_wait
    assert stats.requests == 10 and stats.batches == 3 and stats.largest_batch == 4


def test_batch_queue_model_failure_and_queue_full():
    started, release = threading.Event(), threading.Event()

    def run(images, queries):
        started.set()
        release.wait(5)
        if "boom" in queries:
            raise RuntimeError("secret detail")
        return list(queries)

    async def main():
        queue = BatchQueue(run, max_batch_size=1, max_wait_ms=0, max_queue=1)
        first = asyncio.ensure_future(queue.submit(None, "boom"))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        second = asyncio.ensure_future(queue.submit(None, "ok"))  # waits in the queue (1 of max_queue 1)
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await queue.submit(None, "third")  # one too many waiting
        release.set()
        with pytest.raises(ModelFailure) as info:
            await first
        assert "secret" not in str(info.value) and "RuntimeError" in str(info.value)
        assert await second == "ok"  # the queue keeps serving after a failed batch
        await queue.close()
        return queue.stats

    stats = asyncio.run(main())
    assert stats.failed_batches == 1 and stats.batches == 2


def test_batch_queue_close_fails_waiting_and_running_requests():
    started, release = threading.Event(), threading.Event()

    def run(images, queries):
        started.set()
        release.wait(5)
        return list(queries)

    async def main():
        queue = BatchQueue(run, max_batch_size=1, max_wait_ms=0)
        running = asyncio.ensure_future(queue.submit(None, "running"))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        waiting = asyncio.ensure_future(queue.submit(None, "waiting"))
        await asyncio.sleep(0)
        await queue.close()
        release.set()
        outcomes = await asyncio.gather(running, waiting, return_exceptions=True)
        with pytest.raises(QueueClosed):  # no new requests after close
            await queue.submit(None, "late")
        return outcomes

    # both the request in the model and the one in the queue get an answer (an error), none hangs
    assert [type(o) for o in asyncio.run(main())] == [QueueClosed, QueueClosed]
