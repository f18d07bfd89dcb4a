"""Can the shapes recipe's warm-up (SFT) alone teach the tiny reasoner *where* things are? A grounding probe.

    python benchmarks/shapes_warmup_probe.py run RUNS/e2 --set stages.format_sft.steps=1500 \
        --set dataset_args.samples=8000 --set stages.format_sft.learning_rate=1e-3 \
        --set 'dataset_args.world={families: [attribute]}'                                    # ~13 min, 1 core
    python benchmarks/shapes_warmup_probe.py run RUNS/p1 --kw rope_theta=10 --set 'dataset_args.world={max_shapes: 1}' ...
    python benchmarks/shapes_warmup_probe.py table RUNS/* --out benchmarks/shapes_warmup_probe.md

``run`` builds ``segzero.shapes.model.build_shapes_reasoner`` (``--kw`` overrides its arguments, e.g. the RoPE bases),
runs only a ``format_sft`` stage on the world of ``recipes/shapes_tiny.yaml`` (``--set`` overrides the recipe, as
``segzero train --set``; the real stage, ``segzero.train.warmup.run_format_sft`` with TRL's SFTTrainer), then
measures

- val gIoU / cIoU on ``--n-val`` samples of the run's own world (``segzero.shapes.val``, ``color``
  segmenter, greedy decoding) and the number of distinct answers;
- position sensitivity: the answer to "the red circle" on 4 synthetic images with a red circle (and a blue square
  opposite) in each quadrant. A model that reads where the circle is gives 4 different boxes; 1 means the answer
  does not depend on the image at all.

``table`` collects the ``result.json`` of run folders into a markdown table (machine, date, commands).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUADRANTS = ((20, 20), (80, 20), (20, 80), (80, 80))


def quadrant_images(size: int = 112):
    """4 images: a red circle centred in each quadrant, a blue square in the opposite one, white background."""
    from PIL import Image, ImageDraw

    images = []
    for x, y in QUADRANTS:
        im = Image.new("RGB", (size, size), (255, 255, 255))
        draw = ImageDraw.Draw(im)
        draw.ellipse([x - 15, y - 15, x + 15, y + 15], fill=(220, 30, 30))
        draw.rectangle([size - x - 12, size - y - 12, size - x + 12, size - y + 12], fill=(30, 30, 220))
        images.append(im)
    return images


def position_answers(model_dir: Path, frame: int) -> list[str]:
    """The ``<answer>`` of ``model_dir`` for "the red circle" on each of the ``quadrant_images``."""
    from segzero.models.reasoner import Reasoner

    reasoner = Reasoner.from_pretrained(str(model_dir), frame=frame, device="cpu", dtype="float32")
    outs = reasoner.generate(quadrant_images(frame), ["the red circle"] * len(QUADRANTS))
    return [o.rpartition("<answer>")[2].removesuffix("</answer>") for o in outs]


def _number_or_text(value: str):
    """A ``--kw`` value: int, else float, else the text (e.g. ``arch=qwen3_vl``)."""
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def run(args) -> dict:
    from segzero.eval.records import read_records
    from segzero.shapes.model import build_shapes_reasoner
    from segzero.shapes.val import evaluate, val_dataset
    from segzero.train.config import TrainConfig
    from segzero.train.data import build_train_dataset
    from segzero.train.stages import StageRun
    from segzero.train.warmup import run_format_sft

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_tiny.yaml", overrides=["stages=[format_sft]", *args.set])
    kw = {k: _number_or_text(v) for k, v in (x.split("=", 1) for x in args.kw)}
    model = build_shapes_reasoner(out / "base", frame=cfg.frame, **kw)
    dataset, _ = build_train_dataset(cfg, output_dir=out)
    t0 = time.perf_counter()
    ((_, stage),) = cfg.stage_list()
    warm = run_format_sft(StageRun(cfg, stage, str(model), out, False, lambda: dataset))
    sft_seconds = time.perf_counter() - t0
    val = val_dataset(
        args.n_val, world=dict(cfg.dataset_args.get("world") or {}), size=cfg.frame
    )  # drawn at the model frame
    summary = evaluate(warm, out=out / "val", dataset=val, frame=cfg.frame)
    records, _ = read_records(out / "val" / "samples.jsonl")
    answers = position_answers(warm, cfg.frame)
    result = {
        "gIoU": summary["gIoU"],
        "cIoU": summary["cIoU"],
        "distinct": len({(r.get("completion") or "").rpartition("<answer>")[2] for r in records}),
        "n_val": args.n_val,
        "position_answers": answers,
        "position_distinct": len(set(answers)),
        "sft_seconds": round(sft_seconds, 1),
        "set": args.set,
        "kw": args.kw,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result), flush=True)
    return result


def table(args) -> str:
    import torch

    rows = []
    for d in args.runs:
        f = Path(d) / "result.json"
        if f.is_file():
            rows.append((Path(d).name, json.loads(f.read_text())))
    lines = [
        "# Shapes warm-up grounding probe: does supervised training teach the tiny reasoner where things are?",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, torch {torch.__version__}"
        ", CPU only; runs two at a time, one thread each (OMP_NUM_THREADS=1)",
        "- command per row: `python benchmarks/shapes_warmup_probe.py run RUN --set ... --kw ...` (the row's "
        "settings); this table: `python benchmarks/shapes_warmup_probe.py table RUN...`",
        "- every row: `recipes/shapes_tiny.yaml` with the row's overrides, warm-up only (no GRPO), batch 16; val = "
        "the row's own world (val split, seed 0), greedy, `color` segmenter; 'position' = distinct answers to "
        "'the red circle' over 4 images with the circle in each quadrant (4 = reads the image, 1 = ignores it)",
        "",
        "| run | world (beyond the recipe's) | SFT steps | lr | rows | model (beyond build_shapes_reasoner) "
        "| val gIoU | val cIoU | distinct / n | position | SFT s |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        s = dict(x.split("=", 1) for x in r["set"])
        # results of either config layout: the flat one (sft_steps, ...) or today's (stages.format_sft.steps, ...)
        world = ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in s.items() if k.startswith("synthetic_world."))
        world = world or s.get("dataset_args.world", "")
        steps = s.get("stages.format_sft.steps", s.get("sft_steps", "-"))
        lr = s.get("stages.format_sft.learning_rate", s.get("sft_learning_rate", "-"))
        rows_n = s.get("dataset_args.samples", s.get("synthetic_samples", "-"))
        lines.append(
            f"| {name} | {world or '-'} | {steps} | {lr} "
            f"| {rows_n} | {', '.join(r['kw']) or 'default'} | {100 * r['gIoU']:.1f} "
            f"| {100 * r['cIoU']:.1f} | {r['distinct']} / {r['n_val']} | {r.get('position_distinct', '-')} / 4 "
            f"| {r['sft_seconds']:.0f} |"
        )
    text = "\n".join(lines) + "\n" + (args.notes.read_text() if args.notes else "")
    if args.out:
        Path(args.out).write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="build, warm up and probe one model")
    r.add_argument("out", help="run folder (model, warm-up, val records, result.json)")
    r.add_argument("--set", action="append", default=[], help="recipe override key=value (as segzero train --set)")
    r.add_argument("--kw", action="append", default=[], help="build_shapes_reasoner argument key=value")
    r.add_argument("--n-val", type=int, default=128, help="val samples")
    t = sub.add_parser("table", help="markdown table of run folders")
    t.add_argument("runs", nargs="+")
    t.add_argument("--out", default=None, help="write the table here")
    t.add_argument("--notes", type=Path, default=None, help="markdown appended under the table")
    args = p.parse_args(argv)
    if args.cmd == "run":
        run(args)
    else:
        print(table(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
