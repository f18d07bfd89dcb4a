"""Summaries of evaluation runs: metrics from per-sample records, the protocol statement, shard merging.

``summarize(records, header)`` is the only place metrics are computed: records are sorted by dataset index and
fed to ``segzero.metrics.IoUAccumulator`` in that order, so a single run, a resumed run and merged shards give
bit-identical numbers. ``merge_runs(dirs, out)`` implements ``segzero eval merge``.

Usage::

    from segzero.eval.summary import merge_runs
    summary = merge_runs(["out/shard0", "out/shard1"], "out/merged")
    print(summary["gIoU"], summary["cIoU"], summary["n"])
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

from segzero.errors import UserError
from segzero.eval.identity import SHARD_KEYS, identity_changes
from segzero.eval.protocols import SEGZERO, reference_summary
from segzero.eval.records import RecordWriter, read_records
from segzero.metrics import IoUAccumulator, presence_accuracy

RUN_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"


def protocol(ignore_label: str) -> dict:
    """The scoring rules of a run, stated in every summary and report."""
    if ignore_label not in ("exclude", "target"):
        raise UserError(f"--ignore-label must be 'exclude' or 'target', not {ignore_label!r}")
    return {
        "ignore_label": ignore_label,
        "ignore_value": 255,
        "ignore_rule": (
            "gt pixels == 255 ('ignore' polygons) are excluded from intersection and union (LISA)"
            if ignore_label == "exclude"
            else "gt pixels == 255 count as target pixels (as in the hub copies Ricky06662/ReasonSeg_*)"
        ),
        "empty_rule": "empty gt and empty prediction: IoU 1 (LISA's convention)",
        "failure_rule": (
            "unparseable answer or a model/scoring error: intersection 0, union = gt area (an empty prediction; "
            "on an empty target this scores IoU 1); unreadable gt: intersection 0, union 1 (IoU 0); no sample skipped"
        ),
        "resolution": "original image pixels",
        "gIoU": "mean over samples of intersection / union",
        "cIoU": "sum of intersections / sum of unions",
    }


def write_json(path: Path, obj: dict) -> None:
    """Write ``obj`` as indented JSON atomically (temp file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_header(run_dir: Path) -> dict:
    path = Path(run_dir) / RUN_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise UserError(f"{run_dir} is not an evaluation folder: {path.name} missing") from err
    except json.JSONDecodeError as err:
        raise UserError(f"cannot read {path}: {err}") from err


def summarize(records: list[dict], header: dict, *, expected: int | None = None) -> dict:
    """Summary dict: metrics (``gIoU``, ``cIoU``, ``n`` ...), counts by status/stage, completeness, provenance.

    ``expected`` is the number of samples the run (or merged shards) should hold; ``complete`` says whether all
    are there. Records are accumulated in dataset-index order (``index`` field).
    """
    ordered = sorted(records, key=lambda r: (r["index"], r["id"]))
    acc = IoUAccumulator.from_records(ordered)
    summary = acc.summary()
    statuses = Counter(r["status"] for r in ordered)
    expected = len(ordered) if expected is None else expected
    summary.update(
        {
            "n_expected": expected,
            "complete": len(ordered) == expected,
            "parse_failures": statuses.get("parse_failed", 0),
            "errors": statuses.get("error", 0),
            "errors_by_stage": dict(Counter(r["stage"] for r in ordered if r["status"] == "error")),
            "samples_with_ignore": sum(1 for r in ordered if r.get("ignored_pixels", 0) > 0),
            "model_seconds": round(sum(float(r.get("seconds", 0.0)) for r in ordered), 3),
            "protocol": protocol(header["ignore_label"]),
            "models": header.get("models", {}),
            "dataset": header.get("dataset", {}),
            "shard": header.get("shard", "0/1"),
            "backend": header.get("backend"),
            "prompt": header.get("prompt"),
            "frame": header.get("frame"),
            "package_version": header.get("package_version"),
            "identity": header.get("identity"),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )
    if summary.get("n_empty_targets"):  # a set with "nothing here" queries (gRefCOCO): GRES's N-acc and T-acc too
        summary["no_target"] = presence_accuracy(
            [r.get("gt_area") for r in ordered], [r["pred_area"] for r in ordered]
        )
    reference = (header.get("identity") or {}).get("protocol", SEGZERO)
    if reference != SEGZERO:
        summary["reference"] = reference_summary(ordered, reference)
    return summary


def merge_runs(dirs: list[str | Path], out: str | Path, *, allow_incomplete: bool = False) -> dict:
    """Combine shard folders into ``out`` (samples.jsonl sorted by index, summary.json, run.json; the report is
    ``segzero.eval.report.write_report(out)``'s, which ``segzero eval merge`` calls).

    All shards must share their identity (``segzero.eval.identity``) but for the shard itself and together cover
    every shard ``i/n`` completely; otherwise ``UserError`` names what differs or is missing (``allow_incomplete``
    writes the partial summary with ``complete: false`` instead).
    """
    if not dirs:
        raise UserError("eval merge needs at least one run folder")
    out = Path(out)
    headers = [read_header(Path(d)) for d in dirs]
    base = headers[0]
    for d, h in zip(dirs, headers, strict=True):
        if not isinstance(h.get("identity"), dict):
            raise UserError(f"{d}/{RUN_FILE} has no run identity (written by an older segzero); rerun that shard")
        diff = identity_changes(base["identity"], h["identity"], ignore=SHARD_KEYS)
        if diff:
            raise UserError(f"{d} differs from {dirs[0]} in {', '.join(diff)}; these runs cannot be merged")
    shards = {h["shard"] for h in headers}
    counts = {s.split("/")[-1] for s in shards}
    if len(counts) != 1 or any(s.startswith("merged") for s in shards):
        raise UserError(f"runs must be shards i/n of one split, got {', '.join(sorted(shards))}")
    n = int(counts.pop())
    missing = [f"{i}/{n}" for i in range(n) if f"{i}/{n}" not in shards]
    by_id: dict[str, dict] = {}
    problems = [f"missing shard(s) {', '.join(missing)}"] if missing else []
    for d, h in zip(dirs, headers, strict=True):
        recs, _ = read_records(Path(d) / SAMPLES_FILE)
        if len(recs) != int(h.get("shard_size", len(recs))):
            problems.append(f"{d} has {len(recs)} of {h['shard_size']} samples (rerun its command to resume it)")
        for rec in recs:
            by_id.setdefault(rec["id"], rec)
    records = sorted(by_id.values(), key=lambda r: (r["index"], r["id"]))
    expected = int(base["dataset"]["size"])
    if problems and not allow_incomplete:
        raise UserError("cannot merge: " + "; ".join(problems) + " (--allow-incomplete writes a partial summary)")
    out.mkdir(parents=True, exist_ok=True)
    merged = f"merged {len(shards)}/{n}"
    header = dict(
        base, shard=merged, identity=dict(base["identity"], shard=merged), merged_from=[str(d) for d in dirs]
    )
    write_json(out / RUN_FILE, header)
    (out / SAMPLES_FILE).unlink(missing_ok=True)
    with RecordWriter(out / SAMPLES_FILE) as writer:
        writer.write_many(records)
    summary = summarize(records, header, expected=expected)
    write_json(out / SUMMARY_FILE, summary)
    return summary
