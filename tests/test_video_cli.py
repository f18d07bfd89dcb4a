"""`segzero segment --video` and `segzero eval --format revos` on a moving-shapes set, offline: the shipped shapes
reasoner answers on keyframes, the colour segmenter and colour tracking (exact in this world) or a tiny random SAM2
video model carry its masks through the clip. Oracles: the world's own masks, and J / F recomputed from the
records' masks and the reader's gt.

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_video_cli.py``
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from segzero.cli.main import main
from segzero.eval.revos import load_revos
from segzero.eval.video_metrics import contour_accuracy
from segzero.rle import decode_mask
from segzero.shapes.scene import ShapesConfig
from segzero.shapes.video import make_video_sample

SIZE, FRAMES = 72, 4


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("video_world") / "shapes_video"
    argv = ["world", "build", "--layout", "video", "--out", str(out), "--split", "val", "--n", "2"]
    assert main([*argv, "--size", str(SIZE), "--frames", str(FRAMES)]) == 0
    return out


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    from segzero.models.tiny.video import build_tiny_video_segmenter

    return build_tiny_video_segmenter(tmp_path_factory.mktemp("tiny_video") / "sam2_video")


def _masks(out) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) > 0 for p in sorted((out / "masks").glob("*.png"))]


def test_segment_video_writes_a_mask_per_frame_named_after_it(world, tmp_path):
    clip = next((world / "JPEGImages").iterdir())
    out = tmp_path / "seg"
    argv = ["segment", "--video", str(clip), "--query", "the largest shape", "--out", str(out)]
    assert main([*argv, "--reasoner", "shipped", "--segmenter", "color"]) == 0
    result = json.loads((out / "result.json").read_text())
    names = ["00000", "00001", "00002", "00003"]
    assert sorted(p.stem for p in (out / "masks").glob("*.png")) == result["frames"] == names
    assert (out / "strip.png").is_file() and result["propagator"] == "color" and result["query"] == "the largest shape"
    assert [int(m.sum()) for m in _masks(out)] == result["mask_areas"]


def test_the_video_pipeline_follows_the_shape_each_keyframe_answer_picks(world):
    # the colour segmenter gives exactly one shape's visible mask on the keyframe (or nothing, for an answer off
    # every shape); colour tracking must then give that shape's mask on every frame. Oracle: the world's masks.
    from segzero.video import VideoSegPipeline

    pipe = VideoSegPipeline.from_pretrained("shipped", "color")
    followed = 0
    for index in range(2):
        sample = make_video_sample(index, config=ShapesConfig(size=SIZE), split="val", frames=FRAMES)
        results = pipe.segment_queries(sample["frames"], [q.text for q in sample["queries"]])
        for res in results:
            (key,) = res.keyframes
            picked = [i for i, m in enumerate(sample["masks"][:, key]) if (m == res.masks[key]).all()]
            if not res.masks[key].any():
                assert not res.masks.any()  # nothing on the keyframe: nothing anywhere
                continue
            assert len(picked) == 1
            assert (res.masks == sample["masks"][picked[0]]).all()
            followed += 1
    assert followed >= 1  # the shipped model lands on a shape for some of these queries


def test_segment_video_with_sam2s_video_model(world, tiny_video, tmp_path):
    # one sam2_video checkpoint: its image part segments the keyframe, its video model propagates
    clip = next((world / "JPEGImages").iterdir())
    out = tmp_path / "seg"
    argv = ["segment", "--video", str(clip), "--query", "the largest shape", "--out", str(out), "--json"]
    assert main([*argv, "--reasoner", "shipped", "--segmenter", str(tiny_video)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["propagator"] == str(tiny_video) and len(result["mask_areas"]) == FRAMES
    masks = _masks(out)
    assert [int(m.sum()) for m in masks] == result["mask_areas"]
    key = result["keyframes"][0]["frame"]
    assert masks[key].any() and any(masks[t].any() for t in range(FRAMES) if t != key)  # propagation ran


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--query", "x"], "--image FILE or --video"),  # neither input
        (["--image", "{clip}/00000.png", "--video", "{clip}", "--query", "x"], "--image FILE or --video"),  # both
        (["--video", "{missing}", "--query", "x"], "video not found"),  # no such clip
        (["--video", "{clip}", "--query", "x", "--keyframes", "0"], "--keyframes"),  # no keyframe
        (["--video", "{clip}", "--query", "x", "--segmenter", "grabcut"], "--propagator"),  # no video counterpart
    ],
)
def test_segment_video_refuses_bad_input_in_one_line(world, tmp_path, capsys, argv, message):
    clip = next((world / "JPEGImages").iterdir())
    filled = [a.format(clip=clip, missing=tmp_path / "nope") for a in argv]
    assert main(["segment", *filled, "--reasoner", "shipped", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def _eval(world, out, *extra) -> int:
    argv = ["eval", "--data", str(world), "--reasoner", "shipped", "--segmenter", "color", "--out", str(out)]
    return main([*argv, "--no-progress", *extra])


def _records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


def test_eval_revos_scores_j_and_f_per_type_and_overall(world, tmp_path):
    out = tmp_path / "ev"
    assert _eval(world, out, "--format", "revos") == 0
    summary = json.loads((out / "summary.json").read_text())
    records = _records(out)
    ds = load_revos(world)
    assert summary["n"] == summary["n_expected"] == len(ds) == len(records) and summary["complete"]
    by_id = {e.id: e for e in ds.samples}
    for rec in records:  # J and F again, from the stored masks and the reader's gt
        gt = ds.gt(by_id[rec["id"]], size=(SIZE, SIZE))
        pred = [decode_mask(code) for code in rec["pred_rle"]]
        j = [1.0 if not (p | g).any() else (p & g).sum() / (p | g).sum() for p, g in zip(pred, gt, strict=True)]
        f = [contour_accuracy(p, g) for p, g in zip(pred, gt, strict=True)]
        assert rec["J"] == pytest.approx(np.mean(j)) and rec["F"] == pytest.approx(np.mean(f))
    types = {r["type"] for r in records}
    assert set(summary["splits"]) == types
    for name in types:  # per type: the mean over its expressions
        mine = [r for r in records if r["type"] == name]
        assert summary["splits"][name]["J"] == pytest.approx(np.mean([r["J"] for r in mine]))
    # overall: the mean of the types' scores (ReVOS's), J&F the mean of J and F
    assert summary["J"] == pytest.approx(np.mean([s["J"] for s in summary["splits"].values()]))
    assert summary["J&F"] == pytest.approx((summary["J"] + summary["F"]) / 2)


def test_eval_revos_resumes_to_the_same_summary_and_refuses_other_settings(world, tmp_path, capsys):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert _eval(world, whole) == 0  # the folder is recognised without --format
    assert _eval(world, parts, "--max-samples", "1") == 0  # stopped after one expression
    assert len(_records(parts)) == 1 and not json.loads((parts / "summary.json").read_text())["complete"]
    assert _eval(world, parts) == 0  # the same command again continues
    ids = [r["id"] for r in _records(parts)]
    assert len(ids) == len(set(ids)) == len(load_revos(world))
    a, b = (json.loads((d / "summary.json").read_text()) for d in (whole, parts))
    assert (a["J"], a["F"], a["J&F"]) == (b["J"], b["F"], b["J&F"])
    capsys.readouterr()
    assert _eval(world, parts, "--keyframes", "2") == 2  # another keyframe plan is another run
    err = capsys.readouterr().err
    assert "keyframes" in err and len(err.strip().splitlines()) == 1


def test_eval_revos_with_sam2s_video_model(world, tiny_video, tmp_path):
    out = tmp_path / "ev"
    argv = ["eval", "--data", str(world), "--format", "revos", "--reasoner", "shipped", "--segmenter", str(tiny_video)]
    assert main([*argv, "--out", str(out), "--no-progress", "--max-samples", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {"J", "F", "J&F"} <= set(summary) and summary["n"] == 2
    assert summary["video"]["propagator"] == str(tiny_video)
    assert all(r["status"] in ("ok", "parse_failed") for r in _records(out))
