"""Tests of ``segzero demo``: offline, with the shapes model shipped in the package and the ``color`` segmenter.

Run: ``OMP_NUM_THREADS=1 pytest tests/test_demo.py -x -q``
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from segzero.cli.main import main

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No hub access in these tests: the demo must not need any."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def test_demo_draws_a_scene_and_writes_overlay_and_result(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    overlay = Image.open(out / "overlay.png")
    assert overlay.size == (336, 336) and overlay.mode == "RGB"
    result = json.loads((out / "result.json").read_text())
    assert result["query"] and result["parse_ok"] is True  # the shipped model writes a readable answer
    assert result["reasoning"] and len(result["objects"]) == 1
    assert 0.0 <= result["iou"] <= 1.0 and result["image_size"] == [336, 336]
    # the scene's ground truth is typed objects in image pixels (not a JSON string inside the JSON)
    (gt,) = result["gt"]
    assert len(gt["box"]) == 4 and all(0 <= v < 336 for v in gt["box"]) and len(gt["points"]) >= 1
    assert (out / "image.png").is_file() and (out / "mask.png").is_file()
    printed = capsys.readouterr().out
    assert "reasoning:" in printed and "overlay.png" in printed and f"query: {result['query']}" in printed


def test_demo_is_deterministic_per_seed(tmp_path):
    # the same seed draws the same scene and greedy decoding gives the same answer
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["demo", "--out", str(a), "--seed", "3"]) == 0
    assert main(["demo", "--out", str(b), "--seed", "3"]) == 0
    ra, rb = (json.loads((d / "result.json").read_text()) for d in (a, b))
    assert ra["query"] == rb["query"] and ra["completion"] == rb["completion"]


def test_demo_draws_from_the_models_training_world(tmp_path):
    # the default scene comes from the world in the reasoner's segzero.json (the shipped model's training world)
    from segzero.assets import shapes_model_path
    from segzero.cli.demo import draw_scene, model_world

    world = model_world(shapes_model_path())
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--seed", "4"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["query"] == draw_scene(4, 336, world)["problem"]
    assert model_world(tmp_path) is None  # no segzero.json: the default world


def test_demo_own_image_and_query(tmp_path):
    from segzero.shapes import ShapesConfig, make_sample

    sample = make_sample(5, seed=0, config=ShapesConfig(size=200), split="test", layout="eval")
    image = tmp_path / "mine.png"
    sample["image"].save(image)
    out = tmp_path / "out"
    assert main(["demo", "--image", str(image), "--query", "the largest shape", "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["query"] == "the largest shape" and result["image_size"] == [200, 200]
    assert Image.open(out / "overlay.png").size == (200, 200)
    assert "iou" not in result  # no ground truth for a user's image


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image", "{bad}", "--query", "x"], "image"),  # a text file named .png: one-line image error
        (["--image", "{missing}", "--query", "x"], "not found"),  # a missing file
        (["--image", "{good}"], "--image needs --query"),  # an image without a query
        (["--query", "   "], "query"),  # an empty query on the drawn scene
        (["--size", "10"], "--size"),  # too small a scene to draw
    ],
)
def test_demo_user_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((30, 30, 3), dtype=np.uint8)).save(good)
    paths = {"bad": bad, "missing": tmp_path / "nope.png", "good": good}
    argv = ["demo", "--out", str(tmp_path / "o")] + [a.format(**paths) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message.lower() in err.lower() and err.startswith("segzero demo: error:")


def test_demo_runs_as_a_fresh_process_offline(tmp_path):
    # the installed entry point, a fresh interpreter, no network settings beyond HF_HUB_OFFLINE
    out = tmp_path / "proc"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "segzero.cli.main", "demo", "--out", str(out), "--seed", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "overlay.png").is_file() and (out / "result.json").is_file()
    assert "reasoning:" in proc.stdout
