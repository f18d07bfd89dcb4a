"""Does a shapes model say "nothing here"? GRES's N-acc / T-acc of shapes reasoners on queries that may mean nothing.

    python benchmarks/shapes_no_target.py --reasoner before=shipped --reasoner after=runs/nt/answer_sft \
        --out benchmarks/shapes_no_target.md --notes notes.md

Builds one val set of the world the shipped model was trained on with every query count the world draws
(``segzero world build --like shipped --layout eval --answers mix``: about 15% of the queries mean no shape, 40%
one, 45% several) and runs ``segzero eval`` (``color`` segmenter, greedy) for each reasoner on it. The table gives
GRES's N-acc (an empty target answered with an empty mask; also split into queries the scene decides, "the red
circle" where there is none, and queries about kinds the world never draws, "a shape that twinkles at night" with
no stars in the world, which mean nothing whatever the image) and T-acc (a target answered with a non-empty mask),
the gIoU of all samples, and the share of one-shape queries whose mask IoU is above 0.5 (a model answering in
Seg-Zero's single-object format cannot cover the several-shape queries; their mean IoU is given to show what that
costs). The commands run are written under the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RIGHT_IOU = 0.5  # a one-shape query is right when its mask IoU is above this


def sh(cmd: list[str]) -> None:
    print("+", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def build(args, data: Path) -> list[str]:
    cmd = ["segzero", "world", "build", "--like", "shipped", "--layout", "eval", "--answers", "mix"]
    cmd += [
        "--split",
        "val",
        "--n",
        str(args.n),
        "--size",
        str(args.frame),
        "--seed",
        str(args.seed),
        "--out",
        str(data),
    ]
    if not (data / "dataset_dict.json").exists():
        sh(cmd)
    return cmd


def evaluate(name: str, reasoner: str, data: Path, work: Path) -> tuple[dict, list[str]]:
    out = work / name
    cmd = ["segzero", "eval", "--data", str(data), "--split", "val", "--reasoner", reasoner, "--segmenter", "color"]
    cmd += ["--batch-size", "32", "--no-progress", "--no-report", "--out", str(out)]
    sh([*cmd, "--resume"])
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines() if line.strip()]
    return {"summary": summary, "records": records}, cmd


def meta(data: Path) -> dict[str, tuple[int, bool]]:
    """sample id -> (answer count, whether its template can mean a shape in the set's world)."""
    import datasets

    from segzero.shapes.queries import BY_NAME, answerable
    from segzero.shapes.scene import ShapesConfig

    spec = json.loads((data / "world.json").read_text())["config"]
    config = ShapesConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
    rows = datasets.load_from_disk(str(data))["val"].select_columns(["image_id", "ann_id", "n_answers", "template"])
    return {
        f"{r['image_id']}:{r['ann_id']}": (int(r["n_answers"]), answerable(BY_NAME[r["template"]], config))
        for r in rows
    }


def rate(hits: list[bool]) -> str:
    return f"{100 * sum(hits) / len(hits):.1f} ({sum(hits)}/{len(hits)})" if hits else "-"


def row(name: str, result: dict, facts: dict[str, tuple[int, bool]]) -> str:
    summary, records = result["summary"], result["records"]
    nt = summary["no_target"]
    empty = [r for r in records if facts[r["id"]][0] == 0]
    scene = rate([r["pred_area"] == 0 for r in empty if facts[r["id"]][1]])
    words = rate([r["pred_area"] == 0 for r in empty if not facts[r["id"]][1]])
    one = [r for r in records if facts[r["id"]][0] == 1]
    several = [r for r in records if facts[r["id"]][0] >= 2]
    several_iou = sum(r["iou"] for r in several) / max(1, len(several))
    return (
        f"| {name} | {100 * nt['N-acc']:.1f} ({nt['n_no_target']}) | {scene} | {words} | "
        f"{100 * nt['T-acc']:.1f} ({nt['n_target']}) | {summary['gIoU']:.3f} | "
        f"{rate([r['iou'] > RIGHT_IOU for r in one])} | {several_iou:.3f} ({len(several)}) |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reasoner", action="append", required=True, help="NAME=PATH ('shipped' = the packaged model)")
    p.add_argument("--n", type=int, default=512, help="val queries")
    p.add_argument("--frame", type=int, default=128, help="scene size (the shapes model's frame)")
    p.add_argument("--seed", type=int, default=0, help="world seed of the val set")
    p.add_argument("--work", default="runs/no_target", help="dataset and eval folders")
    p.add_argument("--out", default=None, help="markdown file (default: print)")
    p.add_argument("--notes", default=None, help="markdown appended under the table")
    args = p.parse_args(argv)
    work = Path(args.work)
    data = work / "data"
    commands = [build(args, data)]
    facts = meta(data)
    lines = []
    for spec in args.reasoner:
        name, _, path = spec.partition("=")
        result, cmd = evaluate(name, path, data, work)
        commands.append(cmd)
        lines.append(row(name, result, facts))
    import torch

    text = "\n".join(
        [
            '# "Nothing here" answers of the shapes model (GRES N-acc / T-acc)',
            "",
            f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
            f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
            f"torch {torch.__version__}, CPU only",
            f"- command: `python benchmarks/shapes_no_target.py {shlex.join(sys.argv[1:] if argv is None else argv)}`",
            f"- set: {args.n} val queries of the shipped model's world, every query count the world draws "
            "(none / one / several); greedy decoding, `color` segmenter; right = mask IoU > 0.5",
            "",
            "| reasoner | N-acc % (n) | the scene decides | never answerable in the world | T-acc % (n) | "
            "gIoU, all | one-shape queries right | several-shape queries mean IoU (n) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *lines,
            "",
            "Commands run:",
            "",
            *[f"    {shlex.join(c)}" for c in commands],
            "",
        ]
    ) + (Path(args.notes).read_text() if args.notes else "")
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
