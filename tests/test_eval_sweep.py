"""Tests of ``segzero eval sweep``: checkpoint globs in step order, benchmark names, and a whole sweep of two
checkpoints of the shipped shapes model on two splits of a shapes world (offline, weight-free segmenter), resumed.

Run: ``pytest tests/test_eval_sweep.py -q``
"""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from segzero.errors import UserError
from segzero.eval.sweep import expand_checkpoints, parse_benchmarks


def test_checkpoint_globs_come_in_step_order(tmp_path):
    for step in (1000, 200, 30):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "final").mkdir()
    got = expand_checkpoints([str(tmp_path / "checkpoint-*"), str(tmp_path / "final"), "Ricky06662/Seg-Zero-7B"])
    names = [p.rsplit("/", 1)[-1] for p in got]
    assert names == ["checkpoint-30", "checkpoint-200", "checkpoint-1000", "final", "Seg-Zero-7B"]  # by step
    with pytest.raises(UserError, match="no checkpoint matches"):
        expand_checkpoints([str(tmp_path / "nothing-*")])


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        (["test=Ricky06662/ReasonSeg_test"], {"test": ("Ricky06662/ReasonSeg_test", None)}),  # named
        (
            ["data/world@val", "data/world@test"],
            {"world-val": ("data/world", "val"), "world-test": ("data/world", "test")},
        ),
        (["v=data/world@val"], {"v": ("data/world", "val")}),  # named, with a split
    ],
)
def test_benchmark_specs(specs, expected):
    assert parse_benchmarks(specs) == expected


@pytest.mark.parametrize(
    "specs",
    [
        ["a/x", "b/x"],  # the same name twice
        ["x=data@"],  # an empty split
    ],
)
def test_bad_benchmark_specs(specs):
    with pytest.raises(UserError):
        parse_benchmarks(specs)


def test_sweep_two_checkpoints_on_two_splits_then_resume(tmp_path, capsys):
    from segzero.assets import shapes_model_path
    from segzero.cli.main import main
    from segzero.models.tiny.reasoner import perturb_weights

    data = tmp_path / "world"
    like = ["--like", str(shapes_model_path())]
    assert main(["world", "build", "--out", str(data), "--layout", "eval", "--n", "val=3,test=3", *like]) == 0
    for step in (20, 100):
        shutil.copytree(shapes_model_path(), tmp_path / "ckpt" / f"checkpoint-{step}")
    perturb_weights(tmp_path / "ckpt" / "checkpoint-20", delta=0.5)  # another model: its own identity
    out = tmp_path / "sweep"
    argv = [
        "eval", "sweep", str(tmp_path / "ckpt" / "checkpoint-*"), "--data", f"{data}@val", "--data", f"{data}@test",
        "--protocol", "seg-zero", "--out", str(out), "--no-progress", "--max-new-tokens", "192",
    ]  # fmt: skip
    assert main(argv) == 0
    with open(out / "sweep.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["checkpoint"].rsplit("/", 1)[-1], r["benchmark"]) for r in rows] == [
        ("checkpoint-20", "world-val"),
        ("checkpoint-20", "world-test"),
        ("checkpoint-100", "world-val"),
        ("checkpoint-100", "world-test"),
    ]  # every checkpoint on every benchmark, in step order
    for r in rows:  # each row is its run's summary, both protocols
        run = out / "runs" / r["checkpoint"].rsplit("/", 1)[-1] / r["benchmark"]
        summary = json.loads((run / "summary.json").read_text())
        assert int(r["n"]) == summary["n"] == 3 and float(r["gIoU"]) == pytest.approx(summary["gIoU"])
        assert r["protocol"] == "seg-zero" and float(r["ref_gIoU"]) == pytest.approx(summary["reference"]["gIoU"])
    table = (out / "sweep.md").read_text()
    assert table.count("\n| `") == 4 and "seg-zero gIoU" in table
    assert sum(" *" in line for line in table.splitlines()) >= 2  # each benchmark's best is marked
    capsys.readouterr()
    assert main(argv) == 0  # a rerun resumes: every run is complete, nothing is evaluated again
    for r in rows:
        run = out / "runs" / r["checkpoint"].rsplit("/", 1)[-1] / r["benchmark"]
        assert json.loads((run / "summary.json").read_text())["last_invocation"]["new_samples"] == 0
    assert "wrote" in capsys.readouterr().out


def test_sweep_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from segzero.eval.sweep import write_plot

    rows = [
        {"checkpoint": c, "benchmark": b, "gIoU": g, "ref_gIoU": g - 0.01, "protocol": "seg-zero"}
        for c, g in (("a/checkpoint-1", 0.5), ("a/checkpoint-2", 0.6))
        for b in ("val", "test")
    ]
    path = write_plot(tmp_path, ["a/checkpoint-1", "a/checkpoint-2"], rows)
    assert path is not None and path.stat().st_size > 1000
