"""The demo page says what turns the answer into a mask: the served pipeline's segmenter, in words.

Run: ``python -m pytest -q tests/test_serve_page.py``
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
import pytest

from segzero.models.segmenter import Segmenter
from segzero.models.weightfree import ColorRegionSegmenter, GrabCutSegmenter
from segzero.serve import ServeConfig, create_app


def _page(segmenter) -> str:
    pipeline = SimpleNamespace(segmenter=segmenter, batch=lambda images, queries, **kw: [])
    app = create_app(pipeline, ServeConfig(title="segzero-test"))

    async def get():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve.test") as client:
            return await client.get("/")

    response = asyncio.run(get())
    assert response.status_code == 200
    return response.text


@pytest.mark.parametrize(
    "segmenter, words",
    [
        (ColorRegionSegmenter(), "the colour segmenter (the flat-colour region"),  # the shipped shapes model's pair
        (GrabCutSegmenter(), "OpenCV GrabCut turns them"),  # the other weight-free segmenter
        (object.__new__(Segmenter), "SAM2 turns them"),  # a SAM2 checkpoint (no weights needed to name it)
    ],
)
def test_page_names_the_served_segmenter(segmenter, words):
    text = _page(segmenter)
    assert words in text
    assert ("SAM2 turns" in text) == isinstance(segmenter, Segmenter)  # never claims SAM2 for another segmenter
