"""End-to-end browser test of the web demo: headless Chromium (Debian's package) driven by Playwright's Python API.

Starts ``segzero serve`` with the tiny taught models on 127.0.0.1 (a free port), opens ``/``, uploads an image,
types a query, submits, and waits for the overlay and the reasoning; then runs a shapes example and an invalid
upload. No browser is downloaded: Playwright launches ``/usr/bin/chromium`` (override with ``SEGZERO_CHROMIUM``).
Skipped, with the reason, when Chromium or the ``playwright`` package is missing. Setup::

    apt-get install -y chromium && pip install playwright
    python -m pytest -q tests/test_serve_browser.py
"""

from __future__ import annotations

import io
import os
import shutil

import pytest
from PIL import Image

from segzero.serve.process import serve_subprocess

CHROMIUM = os.environ.get("SEGZERO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 60_000

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install playwright)"
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)),
        reason=f"Chromium not found at {CHROMIUM} (apt-get install -y chromium, or set SEGZERO_CHROMIUM)",
    ),
]


@pytest.fixture(scope="module")
def server(tiny_answering_models):
    args = [
        "--reasoner",
        str(tiny_answering_models["reasoner"]),
        "--segmenter",
        str(tiny_answering_models["segmenter"]),
    ]
    with serve_subprocess([*args, "--frame", "56", "--max-new-tokens", "80"], startup_timeout=120) as url:
        yield url


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS)
        try:
            context = browser.new_context()
            context.route("**/*", _loopback_only)
            pg = context.new_page()
            pg.set_default_timeout(TIMEOUT_MS)
            pg.goto(server + "/")
            yield pg
        finally:
            browser.close()


def _loopback_only(route):
    """Any request that is not to the loopback server fails: the page must work offline."""
    url = route.request.url
    if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
        route.continue_()
    else:
        route.abort()


def _png_bytes(w: int, h: int) -> bytes:
    """A flat grey image: any red pixel on the canvas afterwards comes from the mask overlay."""
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (128, 128, 128)).save(buf, format="PNG")
    return buf.getvalue()


def _canvas_size(page) -> tuple[int, int]:
    return tuple(
        page.evaluate("() => [document.getElementById('overlay').width, document.getElementById('overlay').height]")
    )


def test_upload_query_submit_shows_overlay_and_reasoning(page):
    page.set_input_files(
        "#image-input", files=[{"name": "photo.png", "mimeType": "image/png", "buffer": _png_bytes(150, 100)}]
    )
    page.fill("#query", "the object in the middle")
    page.click("#submit")
    page.wait_for_selector('#overlay[data-state="done"]')
    assert page.text_content("#reasoning").startswith("The object is in the middle.")
    assert page.locator("#objects tbody tr").count() == 1
    assert _canvas_size(page) == (150, 100)  # the overlay is drawn at the original image size
    # outside the mask the grey image is dimmed; inside it stays grey, with a cyan edge (boxes and points overdraw a
    # few pixels): the untouched and edge pixels number about mask_area
    mask_area = page.evaluate("() => JSON.parse(document.getElementById('raw').textContent).mask_area")
    inside, dimmed = page.evaluate(
        """() => { const c = document.getElementById('overlay').getContext('2d');
                   const d = c.getImageData(0, 0, 150, 100).data; let inside = 0, dimmed = 0;
                   for (let i = 0; i < d.length; i += 4) {
                     const grey = d[i] === d[i + 1] && d[i + 1] === d[i + 2];
                     if ((grey && d[i] === 128) || (d[i] === 0 && d[i + 1] === 229 && d[i + 2] === 255)) inside++;
                     else if (grey && d[i] < 60) dimmed++;
                   }
                   return [inside, dimmed]; }"""
    )
    assert mask_area > 0 and 0.5 * mask_area < inside <= mask_area and dimmed > 0
    assert page.get_attribute("#overlay", "data-mask") == "drawn"
    assert page.text_content("#error") == ""


def test_example_from_the_shapes_world(page):
    page.wait_for_selector("#examples button.example")
    page.click("#examples button.example >> nth=0")
    page.wait_for_function("() => document.getElementById('query').value.length > 0")
    page.click("#submit")
    page.wait_for_selector('#overlay[data-state="done"]')
    assert _canvas_size(page) == (320, 320)
    assert "The object is in the middle." in page.text_content("#reasoning")


def test_text_file_upload_shows_the_server_error(page):
    page.set_input_files(
        "#image-input", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"just text"}]
    )
    page.fill("#query", "anything")
    page.click("#submit")
    page.wait_for_selector('#overlay[data-state="error"]')
    assert "allowed_image_types" in page.text_content("#error")
    # the previous example's result is gone: no reasoning, no objects, no overlay of it on the canvas
    assert page.text_content("#reasoning") == "" and page.locator("#objects tbody tr").count() == 0
    assert _canvas_size(page) == (480, 320)
