"""Does a shapes reasoner read the numbers it lists? Teacher-forced pick accuracy on superlative queries.

    python benchmarks/shapes_decision_probe.py src/segzero/assets/shapes_model runs/E/answer_sft_run/checkpoint-* \
        --out benchmarks/shapes_decision_probe.md

For each checkpoint, the gt listing of a scene is fed (teacher-forced) and the model's greedy next tokens from
"The query means" on are compared with the gt decision ("The query means the red circle, 3.</think>"); a row is
right when every one of those tokens is. Two sets, the same for every checkpoint:

- drills: ``--n`` superlative queries over made-up listings of 2-5 shapes on a blank image
  (``segzero.train.drills``): only the listed numbers can decide; chance is about 1 in 3;
- scenes: the first ``--n`` superlative queries of the val split of the shipped model's world, gt listing.

Unlike ``benchmarks/shapes_grounding.py`` this isolates the decision from perception (the listing is the gt one)
and costs seconds per checkpoint.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DECISION_TOKENS = 12  # " The query means the red circle, 3.</think>" in the shapes tokenizer


def probe_sets(n: int, world: dict, frame: int, *, listing: str = "left_to_right") -> dict[str, list[dict]]:
    """The two row sets (``{"image", "query", "completion"}`` each), fixed seeds; ``listing``: how the target
    lists the shapes (``segzero.train.perception.LISTINGS``, as the checkpoints were trained)."""
    import numpy as np

    from segzero.train.drills import drill_row
    from segzero.train.perception import perception_completion
    from segzero.worlds.shapes import make_sample, world_from_spec

    config, _ = world_from_spec(world, size=frame)
    rng = np.random.default_rng(123)
    drills = [drill_row(rng, config=config, listing=listing) for _ in range(n)]
    scenes = []
    for i in range(n):
        s = make_sample(i, seed=0, config=config, split="val", families=("superlative",))
        scenes.append(
            {
                "image": s["image"],
                "query": s["problem"],
                "completion": perception_completion(s, choice="gt", listing=listing),
            }
        )
    return {"drills": drills, "scenes": scenes}


def pick_accuracy(folder: str, rows: list[dict], *, prompt: str, batch_size: int = 32) -> float:
    """Share of ``rows`` whose first ``DECISION_TOKENS`` supervised tokens the model predicts exactly."""
    import torch
    from transformers import AutoModelForImageTextToText

    from segzero.train.perception import DECISION
    from segzero.train.perception_warmup import CompletionCollator
    from segzero.train.processing import load_training_processor

    processor = load_training_processor(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype="float32").eval()
    collate = CompletionCollator(processor, prompt_kind=prompt, supervise_from=DECISION)
    right = 0
    for start in range(0, len(rows), batch_size):
        batch = collate(rows[start : start + batch_size])
        labels = batch.pop("labels")[:, 1:]
        batch.pop("loss_weights")
        with torch.no_grad():
            pred = model(**batch).logits[:, :-1].argmax(-1)
        for k in range(labels.shape[0]):
            idx = (labels[k] != -100).nonzero().flatten()[:DECISION_TOKENS]
            right += bool((pred[k, idx] == labels[k, idx]).all())
    return right / len(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", help="reasoner folders (model, processor files)")
    p.add_argument("--n", type=int, default=128, help="rows per set")
    p.add_argument("--out", default=None, help="markdown table (default: print only)")
    p.add_argument(
        "--listing",
        default="left_to_right",
        choices=("left_to_right", "area_first"),
        help="how the checkpoints list a scene (their sft_listing)",
    )
    p.add_argument("--notes", default=None, help="markdown appended under the table")
    args = p.parse_args(argv)
    missing = [c for c in args.checkpoints if not (Path(c) / "config.json").is_file()]
    if missing:
        print(f"error: not a model folder (no config.json): {', '.join(missing)}", file=sys.stderr)
        return 2

    import torch

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    shipped = json.loads((ROOT / "src/segzero/assets/shapes_model/segzero.json").read_text())
    sets = probe_sets(args.n, shipped["world"], shipped["frame"], listing=args.listing)
    lines = [
        "# Shapes reasoner decisions: does the model read the numbers it lists?",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}, CPU only",
        f"- command: `python benchmarks/shapes_decision_probe.py {shlex.join(sys.argv[1:] if argv is None else argv)}`",
        f"- right = the greedy decision tokens after the gt listing equal the gt decision; {args.n} rows per set; "
        "drills = made-up listings on a blank image (chance about 1 in 3); scenes = val superlatives, gt listing",
        "",
        "| checkpoint | drills right % | scenes right % |",
        "|---|---:|---:|",
    ]
    for folder in args.checkpoints:
        got = {name: pick_accuracy(folder, rows, prompt=shipped["prompt"]) for name, rows in sets.items()}
        line = f"| `{folder}` | {100 * got['drills']:.1f} | {100 * got['scenes']:.1f} |"
        print(line, flush=True)
        lines.append(line)
    if args.notes:
        lines += ["", Path(args.notes).read_text()]
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
