"""End-to-end tests of ``segzero eval`` with the real CLI, the real tiny models and a generated ReasonSeg dataset.

The dataset (``make_reasonseg``) has several queries per image, an "ignore" (255) region and an empty target.
Checked: files and summary written; metrics equal a brute-force computation from the saved records and the gt;
a killed (stopped + truncated mid-line) run resumes to the uninterrupted result without rewriting run.json; a
resume whose identity changed (weights rewritten in place, dtype, max-new-tokens, segmenter, dataset, prompt) is
refused in one line naming the change, a moved reasoner folder is not a change, ``--overwrite`` starts over; two
shards merged equal one run; a hub id fails offline with a one-line error naming it.
Run: ``pytest tests/test_eval.py -x -q``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from segzero.cli.main import main
from segzero.models.tiny.reasoner import perturb_weights

# Fields that must not depend on how a run was cut into invocations / shards.
STABLE = ("id", "index", "status", "stage", "intersection", "union", "iou", "gt_area", "empty_target", "completion")


def make_reasonseg(path: Path, *, n_images: int = 3, seed: int = 0, as_dict: bool = True) -> list[dict]:
    """Write a tiny ReasonSeg-layout save_to_disk folder; returns the rows (masks as uint8 arrays).

    Image 0 has three queries and an ignore region (255) in the first one; image 1's second query has an empty
    target; sizes differ per image so a frame/size mix-up would show.
    """
    import datasets
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_images):
        h, w = 40 + 8 * i, 48 + 4 * i
        img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        for a in range(2 + (i == 0)):
            m = np.zeros((h, w), np.uint8)
            if not (i == 1 and a == 1):
                m[5 + 3 * a : 20 + 3 * a, 6 + a : 30] = 1
            if i == 0 and a == 0:
                m[25:35, 10:20] = 255
            rows.append(
                {
                    "image": img,
                    "text": f"the thing number {a} in picture {i}.",
                    "mask": m,
                    "image_id": f"img{i}",
                    "ann_id": str(a),
                    "img_height": h,
                    "img_width": w,
                }
            )
    from segzero.data.reasonseg import eval_features

    feats = eval_features()
    table = {k: [r[k].tolist() if k == "mask" else r[k] for r in rows] for k in rows[0]}
    ds = datasets.Dataset.from_dict(table, features=feats)
    (datasets.DatasetDict({"test": ds}) if as_dict else ds).save_to_disk(str(path))
    return rows


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def brute_force(records: list[dict]) -> tuple[float, float]:
    """gIoU and cIoU straight from the records' integer counts (union 0 -> IoU 1)."""
    ious = [r["intersection"] / r["union"] if r["union"] else 1.0 for r in records]
    return sum(ious) / len(ious), sum(r["intersection"] for r in records) / sum(r["union"] for r in records)


def eval_cmd(data: Path, out: Path, models: dict, *extra: str) -> list[str]:
    return [
        "eval",
        "--data",
        str(data),
        "--out",
        str(out),
        "--reasoner",
        str(models["reasoner"]),
        "--segmenter",
        str(models["segmenter"]),
        "--frame",
        "56",
        "--max-new-tokens",
        "12",
        "--batch-size",
        "3",
        "--no-progress",
        *extra,
    ]


@pytest.fixture(scope="module")
def reasonseg(tmp_path_factory) -> tuple[Path, list[dict]]:
    path = tmp_path_factory.mktemp("reasonseg") / "ds"
    return path, make_reasonseg(path)


@pytest.fixture(scope="module")
def full_run(reasonseg, tiny_models, tmp_path_factory) -> Path:
    import contextlib
    import io

    out = tmp_path_factory.mktemp("full") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(eval_cmd(reasonseg[0], out, tiny_models)) == 0
    (out.parent / "stdout.txt").write_text(printed.getvalue())
    return out


@pytest.mark.slow
def test_cli_writes_samples_summary_report(full_run, reasonseg):
    rows = reasonseg[1]
    records = read_jsonl(full_run / "samples.jsonl")
    summary = json.loads((full_run / "summary.json").read_text())
    # every sample has exactly one record with integer counts
    assert sorted(r["index"] for r in records) == list(range(len(rows)))
    assert all(isinstance(r["intersection"], int) and isinstance(r["union"], int) for r in records)
    # summary metrics are fractions equal to the brute-force values from the saved records
    g, c = brute_force(records)
    assert summary["n"] == len(rows) and summary["complete"] is True
    assert summary["gIoU"] == pytest.approx(g, abs=1e-12) and summary["cIoU"] == pytest.approx(c, abs=1e-12)
    assert 0.0 <= summary["gIoU"] <= 1.0 and 0.0 <= summary["cIoU"] <= 1.0
    # the protocol and provenance are stated
    assert summary["protocol"]["ignore_label"] == "exclude" and summary["samples_with_ignore"] == 1
    assert summary["n_empty_targets"] == 1 and summary["dataset"]["fingerprint"]
    # GRES's accuracies, by hand from the records: an empty target is right with an empty prediction, a target with
    # a non-empty one
    empty, target = [r for r in records if r["gt_area"] == 0], [r for r in records if r["gt_area"]]
    assert summary["no_target"]["N-acc"] == sum(r["pred_area"] == 0 for r in empty) / len(empty)
    assert summary["no_target"]["T-acc"] == pytest.approx(sum(r["pred_area"] > 0 for r in target) / len(target))
    assert json.dumps(summary["no_target"]) in (full_run.parent / "stdout.txt").read_text()  # printed too
    assert summary["models"]["reasoner_revision"].startswith("local:")
    html = (full_run / "report.html").read_text()
    assert "gIoU" in html and "data:image/png;base64," in html and "ignore" in html
    # the last line names every file written, the report included
    assert (full_run.parent / "stdout.txt").read_text().splitlines()[-1] == (
        f"wrote {full_run}/samples.jsonl, {full_run}/summary.json, {full_run}/report.html"
    )


@pytest.mark.slow
def test_records_match_masks_brute_force(full_run, reasonseg):
    """Per-sample counts recomputed with numpy from the saved predicted mask and the gt (ignore excluded)."""
    from segzero.rle import decode_mask

    rows = reasonseg[1]
    for rec in read_jsonl(full_run / "samples.jsonl"):
        gt = rows[rec["index"]]["mask"]
        valid, target = gt != 255, gt == 1
        pred = decode_mask(rec["pred_rle"]) if rec["status"] == "ok" else np.zeros_like(target)
        assert rec["intersection"] == int((pred & target & valid).sum()), rec["id"]
        assert rec["union"] == int(((pred | target) & valid).sum()), rec["id"]
        assert rec["gt_area"] == int(target.sum())


@pytest.mark.slow
def test_kill_and_resume_equals_one_run(full_run, reasonseg, tiny_models, tmp_path):
    out = tmp_path / "resumed"
    # a run stopped after 4 samples, whose last line was cut mid-write by the "kill"
    assert main(eval_cmd(reasonseg[0], out, tiny_models, "--max-samples", "4")) == 0
    samples = out / "samples.jsonl"
    text = samples.read_text()
    samples.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])
    assert json.loads((out / "summary.json").read_text())["complete"] is False
    run_json = (out / "run.json").read_bytes(), (out / "run.json").stat().st_mtime_ns
    # the same command again resumes and completes, and leaves the run's identity file as the first start wrote it
    assert main(eval_cmd(reasonseg[0], out, tiny_models)) == 0
    assert ((out / "run.json").read_bytes(), (out / "run.json").stat().st_mtime_ns) == run_json
    resumed, once = read_jsonl(samples), read_jsonl(full_run / "samples.jsonl")
    assert len({r["id"] for r in resumed}) == len(resumed) == len(once)
    key = lambda r: r["id"]  # noqa: E731
    assert [{k: r[k] for k in STABLE} for r in sorted(resumed, key=key)] == [
        {k: r[k] for k in STABLE} for r in sorted(once, key=key)
    ]
    s1, s2 = json.loads((full_run / "summary.json").read_text()), json.loads((out / "summary.json").read_text())
    for k in ("gIoU", "cIoU", "n", "n_failed", "n_empty_targets", "parse_failures", "errors", "complete"):
        assert s1[k] == s2[k], k


@pytest.mark.slow
def test_two_shards_merged_equal_one_run(full_run, reasonseg, tiny_models, tmp_path):
    parts = [tmp_path / "p0", tmp_path / "p1"]
    for i, part in enumerate(parts):
        assert main(eval_cmd(reasonseg[0], part, tiny_models, "--shard", f"{i}/2")) == 0
    # shards split by image: no image in both
    images = [{r["image_id"] for r in read_jsonl(p / "samples.jsonl")} for p in parts]
    assert images[0] and images[1] and not images[0] & images[1]
    merged = tmp_path / "merged"
    assert main(["eval", "merge", str(parts[0]), str(parts[1]), "--out", str(merged)]) == 0
    s1, s2 = json.loads((full_run / "summary.json").read_text()), json.loads((merged / "summary.json").read_text())
    for k in ("gIoU", "cIoU", "n", "n_failed", "n_empty_targets", "complete"):
        assert s1[k] == s2[k], k
    assert (merged / "report.html").is_file()
    # merging one shard alone is refused: the other is missing
    assert main(["eval", "merge", str(parts[0]), "--out", str(tmp_path / "bad")]) == 2


@pytest.mark.slow
def test_other_protocol_in_same_dir_is_refused(full_run, reasonseg, tiny_models, capsys):
    # resuming into a folder of a run with another ignore-label protocol would mix two evaluations
    assert main(eval_cmd(reasonseg[0], full_run, tiny_models, "--ignore-label", "target")) == 2
    assert "ignore_label" in capsys.readouterr().err


@pytest.fixture(scope="module")
def partial_run(reasonseg, tiny_models, tmp_path_factory) -> Path:
    """A run stopped after 4 of its samples (``--max-samples 4``), to be resumed by copies in the tests."""
    out = tmp_path_factory.mktemp("partial") / "run"
    assert main(eval_cmd(reasonseg[0], out, tiny_models, "--max-samples", "4")) == 0
    return out


def _other_dataset(tmp_path: Path) -> Path:
    path = tmp_path / "other_ds"
    make_reasonseg(path, n_images=2)
    return path


# (what changes on resume, the identity key the refusal must name); each builds its command from the run's own
CHANGED_RESUMES = [
    ("weights", "reasoner_weights"),  # new weights written into the same folder, config.json untouched
    ("dtype", "dtype"),  # auto (float32 on this CPU) -> bfloat16
    ("max_new_tokens", "max_new_tokens"),  # 12 -> 13 tokens
    ("segmenter", "segmenter"),  # the tiny SAM2 folder -> the weight-free colour segmenter
    ("dataset", "dataset"),  # another dataset (2 images instead of 3) at another path
    ("prompt", "prompt"),  # segzero -> visionreasoner template
]


@pytest.mark.slow
@pytest.mark.parametrize(("change", "key"), CHANGED_RESUMES)
def test_resume_with_changed_identity_is_refused(partial_run, reasonseg, tiny_models, tmp_path, capsys, change, key):
    out, reasoner = tmp_path / "run", tmp_path / "reasoner"
    shutil.copytree(partial_run, out)
    shutil.copytree(tiny_models["reasoner"], reasoner)  # a copy: same content, so still the run's reasoner
    config = (reasoner / "config.json").read_bytes()
    models, data, extra = {**tiny_models, "reasoner": reasoner}, reasonseg[0], []
    if change == "weights":
        perturb_weights(reasoner)
        assert (reasoner / "config.json").read_bytes() == config
    elif change == "dtype":
        extra = ["--dtype", "bfloat16"]
    elif change == "max_new_tokens":
        extra = ["--max-new-tokens", "13"]
    elif change == "segmenter":
        models["segmenter"] = "color"
    elif change == "dataset":
        data = _other_dataset(tmp_path)
    elif change == "prompt":
        extra = ["--prompt", "visionreasoner"]
    before = {name: (out / name).read_bytes() for name in ("run.json", "samples.jsonl")}
    capsys.readouterr()
    assert main(eval_cmd(data, out, models, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    named = err.split(" with different ", 1)[1].split(";", 1)[0].split(", ")
    assert key in named, err
    assert "--overwrite" in err
    # nothing of the old run was touched
    assert {name: (out / name).read_bytes() for name in before} == before


@pytest.mark.slow
def test_unchanged_resume_from_a_moved_reasoner_is_accepted(partial_run, reasonseg, tiny_models, tmp_path):
    # the identity is the reasoner's content, not its path: a copy elsewhere resumes the same run
    out, reasoner = tmp_path / "run", tmp_path / "elsewhere" / "reasoner"
    shutil.copytree(partial_run, out)
    shutil.copytree(tiny_models["reasoner"], reasoner)
    run_json = (out / "run.json").read_bytes(), (out / "run.json").stat().st_mtime_ns
    assert main(eval_cmd(reasonseg[0], out, {**tiny_models, "reasoner": reasoner}, "--max-samples", "1")) == 0
    assert len(read_jsonl(out / "samples.jsonl")) == 5  # the 4 done + 1 new
    assert ((out / "run.json").read_bytes(), (out / "run.json").stat().st_mtime_ns) == run_json


@pytest.mark.slow
def test_overwrite_starts_over_with_the_new_identity(partial_run, reasonseg, tiny_models, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(partial_run, out)
    extra = ("--max-new-tokens", "13", "--max-samples", "2", "--overwrite")
    assert main(eval_cmd(reasonseg[0], out, tiny_models, *extra)) == 0
    # the 4 old records are gone: only the 2 new ones, and run.json states the new settings
    assert len(read_jsonl(out / "samples.jsonl")) == 2
    assert json.loads((out / "run.json").read_text())["identity"]["max_new_tokens"] == 13
    assert json.loads((out / "summary.json").read_text())["n"] == 2


def test_hub_id_offline_is_a_user_error(monkeypatch, tmp_path, capsys):
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert main(["eval", "--data", "Ricky06662/ReasonSeg_test", "--out", str(tmp_path / "o")]) == 2
    assert "Ricky06662/ReasonSeg_test" in capsys.readouterr().err


@pytest.mark.slow
def test_no_target_queries_of_the_shapes_world_reach_gres_accuracies(tmp_path, capsys):
    from segzero.eval.datasets import load_eval_dataset

    data, out = tmp_path / "world", tmp_path / "run"
    argv = ["world", "build", "--out", str(data), "--like", "shipped", "--layout", "eval", "--split", "val"]
    assert main([*argv, "--n", "24", "--answers", "mix"]) == 0
    eval_argv = ["eval", "--data", str(data), "--split", "val", "--reasoner", "shipped", "--segmenter", "color"]
    assert main([*eval_argv, "--out", str(out), "--no-progress", "--no-report"]) == 0
    ds = load_eval_dataset(str(data), split="val")
    empty = {info.index for info in ds.samples if not ds.mask(info).any()}  # the "nothing here" queries, from the gt
    assert 0 < len(empty) < len(ds)
    summary = json.loads((out / "summary.json").read_text())
    records = {r["index"]: r for r in read_jsonl(out / "samples.jsonl")}
    want_n = sum(records[i]["pred_area"] == 0 for i in empty) / len(empty)
    assert summary["no_target"]["n_no_target"] == len(empty) and summary["no_target"]["N-acc"] == want_n
    assert json.dumps(summary["no_target"]) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("backend", "batch_size", "window", "want"),
    [
        ("hf", 8, 512, 8),  # transformers: one generate call per batch
        ("vllm", 8, 512, 512),  # vLLM: a window of requests it schedules continuously
        ("vllm", 64, 16, 64),  # a window smaller than the batch size never shrinks a call
    ],
)
def test_chunk_queries(backend, batch_size, window, want):
    from segzero.eval.runner import EvalConfig, chunk_queries

    cfg = EvalConfig(data="d", out="o", segmenter="color", backend=backend, batch_size=batch_size, vllm_window=window)
    assert chunk_queries(cfg) == want
