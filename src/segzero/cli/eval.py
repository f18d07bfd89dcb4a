"""``segzero eval``: evaluate a reasoner + segmenter on ReasonSeg / RefCOCO-family; merge shards; rebuild reports.

Usage::

    segzero eval --data Ricky06662/ReasonSeg_test --reasoner Ricky06662/Seg-Zero-7B \\
        --segmenter facebook/sam2-hiera-large --out runs/segzero7b_test          # rerun the same line to resume
    segzero eval --data ... --out runs/part3 --shard 3/8                       # one of 8 parts (one GPU each)
    segzero eval merge runs/part0 ... runs/part7 --out runs/segzero7b_test     # summary equal to a single run
    segzero eval report runs/segzero7b_test                                    # rewrite report.html
    segzero eval --data ... --out runs/x --protocol seg-zero     # also Seg-Zero's own scoring, side by side
    segzero eval sweep 'runs/sz7b/checkpoint-*' --data test=Ricky06662/ReasonSeg_test --out runs/sweep  # table
    segzero eval --data data/ReVOS --format revos --reasoner ... --segmenter facebook/sam2-hiera-large --out runs/v

Writes ``DIR/samples.jsonl`` (one record per sample), ``DIR/summary.json`` (gIoU, cIoU as fractions, n, protocol,
provenance), ``DIR/report.html`` and ``DIR/run.json`` (the run's identity, written once at its first start). A rerun
whose data, models (weights hashed by content), prompt, frame, generation settings, dtype, device, segmenter, shard
or protocol (``--ignore-label``, ``--protocol``) differ is refused with exit code 2 naming what changed
(``segzero.eval.identity``); ``--overwrite`` starts over. A ReVOS-layout video set (``--format revos``, or a folder
that is one) is scored with J, F and J&F instead (``segzero.eval.video``: ``summary.json`` with ``J``, ``F``, ``J&F``
and per expression type). Heavy modules are imported inside ``run``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from segzero.cli.fields import add_fields, values
from segzero.models.base import DEFAULT_REASONER


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate on ReasonSeg / RefCOCO (gIoU, cIoU); 'eval merge' combines shards",
        description="Evaluate reasoning segmentation; resumable (rerun the same command), shardable (--shard i/n).",
    )
    p.add_argument("--data", help="hub id, save_to_disk folder, parquet file/folder, LISA folder or refer folder")
    p.add_argument("--out", help="output folder")
    p.add_argument(
        "--reasoner",
        default=DEFAULT_REASONER,
        help="reasoning VLM id or folder ('shipped': the shapes model inside the package; default: %(default)s)",
    )
    p.add_argument("--shard", default="0/1", help="run part i of n (by image), e.g. 3/8 (default 0/1)")
    _add_run_flags(p)
    from segzero.eval.video import VideoEvalOptions

    add_fields(p.add_argument_group("video sets (--format revos)"), VideoEvalOptions)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (also the default); refused when its identity in run.json differs",
    )
    mode.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the run in --out (records, summary, report, run.json), start over",
    )
    p.set_defaults(func=run)

    sub = p.add_subparsers(dest="eval_command", metavar="{merge,report,sweep}")
    m = sub.add_parser("merge", help="combine shard folders into one summary", description="Combine eval shards.")
    m.add_argument("dirs", nargs="+", help="shard output folders")
    m.add_argument("--out", required=True, help="merged output folder")
    m.add_argument("--allow-incomplete", action="store_true", help="write a partial summary for missing samples")
    m.add_argument("--no-report", dest="report", action="store_false", help="skip report.html")
    m.set_defaults(func=run_merge)
    r = sub.add_parser("report", help="rewrite DIR/report.html", description="Rewrite an eval folder's report.")
    r.add_argument("dir", help="eval output folder")
    r.add_argument("--gallery", type=int, default=6, help="best and worst samples shown (default 6 each)")
    r.set_defaults(func=run_report)
    w = sub.add_parser(
        "sweep",
        help="evaluate checkpoints on benchmarks into one table (Markdown, CSV) and plot; resumable",
        description="Evaluate every checkpoint on every --data (each an ordinary, resumable eval run under "
        "OUT/runs), then write OUT/sweep.md, OUT/sweep.csv and OUT/sweep.png.",
    )
    w.add_argument("checkpoints", nargs="+", help="checkpoint folders, globs ('runs/x/checkpoint-*') or hub ids")
    w.add_argument("--out", required=True, help="sweep folder")
    w.add_argument(
        "--data",
        action="append",
        required=True,
        help="a benchmark: NAME=DATA or DATA, either with @SPLIT (repeat for several; DATA as for eval --data)",
    )
    _add_run_flags(w)
    w.set_defaults(func=run_sweep_cmd)


# The settings of an evaluation run shared by ``segzero eval`` and ``segzero eval sweep``: ``EvalConfig`` fields
RUN_FIELDS = (
    "split", "fmt", "segmenter", "prompt", "frame", "batch_size", "max_new_tokens", "backend",
    "gpu_memory_utilization", "vllm_window", "device", "dtype", "ignore_label", "protocol", "sentences",
    "refer_dataset", "split_by", "images_dir", "max_samples", "report", "save_masks", "progress",
)  # fmt: skip
FLAGS = {"fmt": "format", "images_dir": "images", "save_masks": "masks"}  # field -> flag, where they differ


def _add_run_flags(p) -> None:
    """The flags of ``RUN_FIELDS`` (``segzero.cli.fields``: name, type, default, choices and help from the field)."""
    from segzero.eval.runner import EvalConfig

    add_fields(p, EvalConfig, names=list(RUN_FIELDS), flags=FLAGS)


def _print_summary(summary: dict, out, *, report: bool) -> None:
    keys = ("gIoU", "cIoU", "n", "n_expected", "complete", "parse_failures", "errors")
    print(json.dumps({k: summary.get(k) for k in keys}))
    if summary.get("no_target"):  # GRES's accuracies where the set has "nothing here" queries
        print(json.dumps(summary["no_target"]))
    ref = summary.get("reference")
    if ref:  # the reference protocol's scores on the same predictions, next to segzero's
        print(json.dumps({k: ref[k] for k in ("protocol", "gIoU", "cIoU", "n", "skipped", "differs")}))
    from segzero.eval.summary import REPORT_FILE, SAMPLES_FILE, SUMMARY_FILE

    written = [SAMPLES_FILE, SUMMARY_FILE] + ([REPORT_FILE] if report else [])
    print("wrote " + ", ".join(f"{out}/{name}" for name in written))
    if summary.get("errors"):
        stages = ", ".join(f"{k}: {v}" for k, v in summary.get("errors_by_stage", {}).items())
        print(
            f"note: {summary['errors']} sample(s) failed with an error ({stages}); counted as failures, "
            "reasons in samples.jsonl",
            file=sys.stderr,
        )


def _settings(args: argparse.Namespace) -> dict:
    """``EvalConfig`` fields from the flags ``_add_run_flags`` defines."""
    return values(args, list(RUN_FIELDS))


def run(args: argparse.Namespace) -> int:
    from segzero.errors import UserError
    from segzero.eval.runner import EvalConfig, run_eval

    if not args.data or not args.out:
        raise UserError("--data and --out are required (or use 'segzero eval merge' / 'segzero eval report')")
    cfg = EvalConfig(
        data=args.data,
        out=args.out,
        reasoner=args.reasoner,
        shard=args.shard,
        overwrite=args.overwrite,
        **_settings(args),
    )
    from segzero.eval.revos import is_revos_folder

    if cfg.fmt == "revos" or (cfg.fmt == "auto" and is_revos_folder(cfg.data)):
        return _run_video(args, cfg)
    _print_summary(run_eval(cfg), args.out, report=cfg.report)
    return 0


def _run_video(args: argparse.Namespace, cfg) -> int:
    """``segzero eval`` on a ReVOS-layout video set: J, F and J&F (``segzero.eval.video``)."""
    from dataclasses import fields

    from segzero.eval.summary import SAMPLES_FILE, SUMMARY_FILE
    from segzero.eval.video import VideoEvalOptions, run_video_eval

    options = VideoEvalOptions(**values(args, [f.name for f in fields(VideoEvalOptions)]))
    summary = run_video_eval(cfg, options)
    keys = ("J", "F", "J&F", "n", "n_expected", "complete", "parse_failures", "errors")
    print(json.dumps({k: summary.get(k) for k in keys}))
    print(json.dumps({name: {k: s[k] for k in ("J", "F", "J&F", "n")} for name, s in summary["splits"].items()}))
    print(f"wrote {args.out}/{SAMPLES_FILE}, {args.out}/{SUMMARY_FILE}")
    return 0


def run_sweep_cmd(args: argparse.Namespace) -> int:
    from segzero.eval.sweep import PLOT_PNG, TABLE_CSV, TABLE_MD, expand_checkpoints, parse_benchmarks, run_sweep

    rows = run_sweep(_settings(args), expand_checkpoints(args.checkpoints), parse_benchmarks(args.data), args.out)
    for r in rows:
        print(json.dumps({k: r[k] for k in ("checkpoint", "benchmark", "n", "gIoU", "cIoU", "protocol", "ref_gIoU")}))
    written = [TABLE_MD, TABLE_CSV] + ([PLOT_PNG] if (Path(args.out) / PLOT_PNG).is_file() else [])
    print("wrote " + ", ".join(f"{args.out}/{name}" for name in written))
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from segzero.eval.summary import merge_runs

    summary = merge_runs(args.dirs, args.out, allow_incomplete=args.allow_incomplete)
    if args.report:
        from segzero.eval.report import write_report

        write_report(args.out)
    _print_summary(summary, args.out, report=args.report)
    return 0


def run_report(args: argparse.Namespace) -> int:
    from segzero.eval.report import write_report

    print(f"wrote {write_report(args.dir, gallery=args.gallery)}")
    return 0
