"""Inputs are checked once, at the entry: one ``segzero segment`` run (or one served request) loads its image once,
checks its query once and probes a hub id at most once; the layers after the entry take the checked values as they
are.

The counters wrap the real functions (each call goes through to them); the runs use the tiny models, the reasoner
once as a local folder and once as a hub id held in a temporary hub cache (loaded offline from it, as a downloaded
checkpoint is). Run: ``OMP_NUM_THREADS=1 pytest tests/test_entry_checks.py -q``
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from collections import Counter

import httpx
import numpy as np
import pytest
from PIL import Image

import segzero.images
import segzero.models.reasoner
import segzero.prompts
import segzero.serve.limits
from segzero.cli.main import main

pytestmark = pytest.mark.slow

HUB_ID = "someone/tiny-reasoner"
FAST = ["--frame", "56", "--max-new-tokens", "4", "--device", "cpu"]


def _count(monkeypatch, counts: Counter, key: str, module, name: str) -> None:
    """Replace ``module.name`` by a wrapper that counts its calls under ``key`` and calls the real function."""
    real = getattr(module, name)

    def counted(*args, **kwargs):
        counts[key] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)


@pytest.fixture()
def counts(monkeypatch) -> Counter:
    """Calls of ``load_image``, ``check_query`` and the hub probe ``check_hub_reachable`` during a test."""
    counts: Counter = Counter()
    _count(monkeypatch, counts, "load_image", segzero.images, "load_image")
    _count(monkeypatch, counts, "check_query", segzero.prompts, "check_query")
    _count(monkeypatch, counts, "check_query", segzero.serve.limits, "check_query_text")  # the server's binding
    _count(monkeypatch, counts, "hub_probe", segzero.models.reasoner, "check_hub_reachable")
    return counts


@pytest.fixture()
def hub_reasoner(tiny_models, tmp_path, monkeypatch) -> str:
    """``HUB_ID``: the tiny reasoner as a snapshot in a temporary hub cache, read offline."""
    import huggingface_hub.constants

    commit = "0" * 40
    repo = tmp_path / "hub" / f"models--{HUB_ID.replace('/', '--')}"
    shutil.copytree(tiny_models["reasoner"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return HUB_ID


@pytest.mark.parametrize(
    "reasoner, segmenter, probes",
    [
        ("folder", "folder", 0),  # local folders: nothing to probe
        ("hub", "folder", 1),  # a hub id: probed once, though checked before loading and loaded after
        ("hub", "color", 1),  # a weight-free segmenter needs no source at all
    ],
)
def test_one_segment_run_loads_checks_and_probes_once(
    reasoner, segmenter, probes, tiny_models, hub_reasoner, counts, tmp_path, capsys
):
    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 44, 3), dtype=np.uint8)).save(image)
    args = ["segment", "--image", str(image), "--query", "the cat", "--out", str(tmp_path / "out"), "--json"]
    args += ["--reasoner", hub_reasoner if reasoner == "hub" else str(tiny_models["reasoner"])]
    args += ["--segmenter", "color" if segmenter == "color" else str(tiny_models["segmenter"])]
    assert main(args + FAST) == 0
    assert json.loads(capsys.readouterr().out)["image_size"] == [44, 30]  # the run went through
    assert counts == Counter({"load_image": 1, "check_query": 1, "hub_probe": probes})  # missing keys count 0


def test_one_served_request_loads_and_checks_once(tiny_models, counts):
    from segzero.pipeline import SegZeroPipeline
    from segzero.serve import create_app

    pipe = SegZeroPipeline.from_pretrained(tiny_models["reasoner"], tiny_models["segmenter"], frame=56)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(buf, format="PNG")

    async def post():
        transport = httpx.ASGITransport(app=create_app(pipe))
        async with httpx.AsyncClient(transport=transport, base_url="http://serve.test", timeout=60) as client:
            files = {"image": ("a.png", buf.getvalue(), "image/png")}
            return await client.post("/v1/segment", files=files, data={"query": " the cat "})

    response = asyncio.run(post())
    assert response.status_code == 200 and response.json()["image_size"] == [24, 20]
    assert counts == Counter({"load_image": 1, "check_query": 1})
