"""Tests of ``segzero segment`` and ``segzero tiny-models`` (in-process ``main([...])`` and one real subprocess).

Run: ``OMP_NUM_THREADS=1 pytest tests/test_cli_segment.py -x -q``
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

FAST = ["--frame", "56", "--max-new-tokens", "4", "--device", "cpu"]


@pytest.fixture()
def image_path(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)).save(path)
    return path


def _models(tiny_models) -> list[str]:
    return ["--reasoner", str(tiny_models["reasoner"]), "--segmenter", str(tiny_models["segmenter"])]


def test_segment_writes_mask_overlay_and_json(tiny_models, image_path, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        ["segment", "--image", str(image_path), "--query", "the cat", "--out", str(out)] + _models(tiny_models) + FAST
    )
    assert code == 0
    mask = Image.open(out / "mask.png")
    assert mask.size == (70, 45) and mask.mode == "L"
    assert set(np.unique(np.asarray(mask))) <= {0, 255}
    assert Image.open(out / "overlay.png").size == (70, 45)
    result = json.loads((out / "result.json").read_text())
    assert result["image_size"] == [70, 45] and result["query"] == "the cat"
    assert {"reasoning", "objects", "parse_ok", "completion"} <= set(result)
    printed = capsys.readouterr().out
    assert "reasoning:" in printed and "mask.png" in printed


def test_segment_json_prints_only_json(tiny_models, image_path, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["segment", "--image", str(image_path), "--query", "a dog", "--out", str(out), "--json"]
    assert main(args + _models(tiny_models) + FAST) == 0
    printed = json.loads(capsys.readouterr().out)  # the whole stdout is one JSON document
    assert printed == json.loads((out / "result.json").read_text())


def test_segment_end_to_end_with_answering_reasoner(tiny_answering_models, image_path, tmp_path, capsys):
    # the taught tiny reasoner gives a parseable answer: objects are printed and saved in original pixels
    out = tmp_path / "out"
    args = ["segment", "--image", str(image_path), "--query", "the cat", "--out", str(out)]
    args += _models(tiny_answering_models) + ["--frame", "56", "--max-new-tokens", "80", "--device", "cpu"]
    assert main(args) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["parse_ok"] and len(result["objects"]) == 1
    # answer box [8,12,40,45] in the 56 x 56 frame -> 70 x 45 pixels: (10, 9.64, 50, 36.16) rounded half up
    assert result["objects"][0]["box"] == [10.0, 10.0, 50.0, 36.0]
    assert "object 0: box [10, 10, 50, 36]" in capsys.readouterr().out
    assert int((np.asarray(Image.open(out / "mask.png")) > 0).sum()) == result["mask_area"]


def test_save_outputs_draws_known_answer(tiny_models, image_path, tmp_path):
    # the overlay shows the mask tint, the box and the points of a parsed answer
    from segzero.cli.segment import save_outputs
    from segzero.images import load_image
    from segzero.pipeline import SegZeroPipeline

    pipe = SegZeroPipeline.from_pretrained(tiny_models["reasoner"], tiny_models["segmenter"], frame=56)
    image = load_image(image_path)
    res = pipe.segment(image, '<answer>{"bbox": [5,5,50,50], "points_1": [20,20], "points_2": [30,30]}</answer>')
    paths = save_outputs(res, image, tmp_path / "o")
    mask = np.asarray(Image.open(paths["mask"])) > 0
    np.testing.assert_array_equal(mask, res.mask)
    overlay = np.asarray(Image.open(paths["overlay"]))
    assert (overlay != np.asarray(image)).any()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--image", "{missing}", "--query", "x"], "not found"),  # image file does not exist
        (["--image", "{corrupt}", "--query", "x"], "image"),  # a text file named .png
        (["--image", "{image}", "--query", "  "], "query is empty"),  # empty query
        (["--image", "{image}", "--query", "x", "--reasoner", "{missing_dir}"], "folder not found"),  # no model
        (
            ["--image", "{image}", "--query", "x", "--segmenter", "{missing_dir}"],
            "segmenter folder not found",
        ),  # no SAM
    ],
)
def test_user_errors_exit_2_with_one_line(tiny_models, image_path, tmp_path, capsys, args, message):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_text("this is not an image")
    fill = {
        "missing": str(tmp_path / "nope.jpg"),
        "corrupt": str(corrupt),
        "image": str(image_path),
        "missing_dir": str(tmp_path / "no_model_here"),
    }
    args = [a.format(**fill) for a in args]
    models = [] if any(a in ("--reasoner", "--segmenter") for a in args) else _models(tiny_models)
    if "--reasoner" in args:
        models = ["--segmenter", str(tiny_models["segmenter"])]
    if "--segmenter" in args:
        models = ["--reasoner", str(tiny_models["reasoner"])]
    code = main(["segment", *args, "--out", str(tmp_path / "out"), *models, *FAST])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


def test_tiny_models_writes_both_folders(tmp_path, capsys):
    assert main(["tiny-models", "--out", str(tmp_path / "tiny")]) == 0
    for name in ("reasoner", "segmenter"):
        assert (tmp_path / "tiny" / name / "config.json").is_file()
        assert (tmp_path / "tiny" / name / "model.safetensors").stat().st_size < 5_000_000  # "a few MB" at most
    assert "reasoner:" in capsys.readouterr().out


def test_subprocess_offline_hub_id(tmp_path, image_path):
    # the real entry point, default hub ids, no network (HF_HUB_OFFLINE must be set before import)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}
    offline = subprocess.run(
        [sys.executable, "-m", "segzero.cli.main", "segment", "--image", str(image_path), "--query", "x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert offline.returncode == 2
    lines = offline.stderr.strip().splitlines()
    assert len(lines) == 1 and "Ricky06662/Seg-Zero-7B" in lines[0] and "Traceback" not in offline.stderr
