"""``segzero serve`` as users run it: a real uvicorn child process on loopback, and its argument errors.

Run: ``python -m pytest -q tests/test_serve_cli.py``
"""

from __future__ import annotations

import io
import socket

import httpx
import numpy as np
import pytest
from PIL import Image

from segzero.cli.main import main
from segzero.serve.encoding import rle_to_mask
from segzero.serve.process import free_port, serve_subprocess


@pytest.mark.slow
def test_serve_answers_on_loopback(tiny_answering_models):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    args = [
        "--reasoner",
        str(tiny_answering_models["reasoner"]),
        "--segmenter",
        str(tiny_answering_models["segmenter"]),
    ]
    args += ["--frame", "56", "--max-new-tokens", "80"]
    with serve_subprocess(args, startup_timeout=120) as url:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, timeout=60) as client:
            assert client.get("/healthz").status_code == 200
            r = client.post(
                "/v1/segment", files={"image": ("x.png", buf.getvalue(), "image/png")}, data={"query": "it"}
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["reasoning"] == "The object is in the middle."  # what the tiny model was taught
            assert len(body["objects"]) == 1 and body["mask_rle"]["size"] == [45, 70]
            assert rle_to_mask(body["mask_rle"]).shape == (45, 70)
            assert 'id="overlay"' in client.get("/").text


def _port_in_use():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


@pytest.mark.parametrize(
    "argv, message",
    [
        (["serve", "--port", "BUSY"], "cannot listen"),  # no model named: the shipped shapes model, port checked first
        (["serve", "--segmenter", "x"], "--segmenter needs --reasoner"),  # a segmenter alone is ambiguous
        (["serve", "--reasoner", "x", "--segmenter", "y", "--max-batch-size", "0"], "--max-batch-size"),  # not > 0
        (["serve", "--reasoner", "x", "--segmenter", "y", "--port", "70000"], "--port"),  # not a port number
        (
            ["serve", "--reasoner", "/nonexistent/r", "--segmenter", "/nonexistent/s", "--port", "PORT"],
            "/nonexistent/r",
        ),
        (["serve", "--reasoner", "x", "--segmenter", "y", "--port", "BUSY"], "cannot listen"),  # port taken
    ],
)
def test_serve_user_errors_exit_2_with_one_line(argv, message, capsys):
    busy = _port_in_use()
    try:
        argv = [{"PORT": str(free_port()), "BUSY": str(busy.getsockname()[1])}.get(a, a) for a in argv]
        assert main(argv) == 2
    finally:
        busy.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("segzero serve: error:") and message in err[-1]
    assert not any("Traceback" in line for line in err)
