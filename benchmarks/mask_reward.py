"""Cost of the mask-aware reward (``reward_variant: mask``) per GRPO step, and what sharing image embeddings saves.

    OMP_NUM_THREADS=1 python benchmarks/mask_reward.py --write      # writes benchmarks/mask_reward.md

One GRPO step's rewards: ``--prompts`` shapes-world scenes x ``--generations`` sampled answers each (each answer
the box and points of a shape of its scene, drawn at random, so about 1 in 2-3 is right), scored by
``segzero.train.mask_reward.MaskIoU`` at the shapes frame with two segmenters: the weight-free ``color`` segmenter
(the shapes recipe's) and a tiny random-weight SAM2 (``segzero.models.tiny``: SAM2's real code path, input 1024 px;
its masks are meaningless, its cost is the architecture's at tiny width). Two ways per segmenter, run interleaved
(``--rounds`` alternations, median per way):

- ``shared``: the reward as shipped: one ``segment_many`` call, one image embedding per prompt for its answers;
- ``per answer``: one segmentation per answer, each embedding its image again (what a reward that calls the
  segmenter per completion does).

The paper's five terms cost about 1 ms per step on these sizes (``benchmarks/train_step.md``: rewards 0.0006 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def step_inputs(prompts: int, generations: int, frame: int, seed: int = 0) -> dict:
    """``{"completions", "solution", "image", "mask_rle"}`` of one step: each prompt's row repeated per answer."""
    import numpy as np

    from segzero.answer import segzero_answer_json
    from segzero.points import mask_to_object
    from segzero.rle import MASK_COLUMN, encode_mask
    from segzero.shapes.scene import ShapesConfig
    from segzero.shapes.world import make_sample

    rng = np.random.default_rng(seed)
    out = {"completions": [], "solution": [], "image": [], MASK_COLUMN: []}
    for i in range(prompts):
        s = make_sample(i, seed=seed, config=ShapesConfig(size=frame, min_shapes=2, max_shapes=3, overlap=False))
        code = encode_mask(s["mask"])
        for _ in range(generations):
            obj = mask_to_object(s["shape_masks"][int(rng.integers(len(s["shape_masks"])))])
            out["completions"].append(f"<think>t</think><answer>{segzero_answer_json(obj.box, obj.points)}</answer>")
            out["solution"].append(s["solution"])
            out["image"].append(s["image"])
            out[MASK_COLUMN].append(code)
    return out


def time_ways(reward, inputs: dict, rounds: int) -> dict[str, float]:
    """Median seconds of the shared call and of one call per answer, interleaved over ``rounds``."""
    n = len(inputs["completions"])
    times = {"shared": [], "per answer": []}
    for _ in range(rounds):
        t0 = time.perf_counter()
        shared = reward(**inputs)
        times["shared"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        single = [reward(**{k: [v[i]] for k, v in inputs.items()})[0] for i in range(n)]
        times["per answer"].append(time.perf_counter() - t0)
        assert shared == single  # the same rewards either way
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=8, help="prompts per step (the shapes recipe's)")
    p.add_argument("--generations", type=int, default=8, help="answers per prompt")
    p.add_argument("--frame", type=int, default=128, help="shapes frame (the shipped model's)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved repetitions")
    p.add_argument("--write", action="store_true", help="write benchmarks/mask_reward.md")
    args = p.parse_args(argv)

    import torch

    from segzero.models.tiny import build_tiny_models
    from segzero.train.mask_reward import MaskIoU

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    inputs = step_inputs(args.prompts, args.generations, args.frame)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sam = build_tiny_models(tmp)["segmenter"]
        for name, segmenter in (("color", "color"), ("tiny SAM2 (random weights)", str(sam))):
            reward = MaskIoU(segmenter, frame=args.frame, device="cpu")
            reward(**inputs)  # warm-up
            t = time_ways(reward, inputs, args.rounds)
            mean = statistics.fmean(reward(**inputs))
            rows.append((name, t["shared"], t["per answer"], mean))
    n = args.prompts * args.generations
    lines = [
        "# Mask-aware reward: cost per GRPO step",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPU only",
        f"- command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} python benchmarks/mask_reward.py "
        f"{shlex.join(sys.argv[1:] if argv is None else argv)}`",
        f"- one step: {args.prompts} prompts x {args.generations} answers = {n} answers, {args.frame} px shapes "
        f"scenes; median of {args.rounds} interleaved rounds",
        "",
        "| segmenter | shared embeddings (s/step) | one segmentation per answer (s/step) | ratio | mean mask_iou |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, shared, single, mean in rows:
        lines.append(f"| {name} | {shared:.3f} | {single:.3f} | {single / shared:.1f}x | {mean:.3f} |")
    lines += [
        "",
        "Both ways return the same rewards (checked every round). The paper's five terms cost about 1 ms per step here.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        (ROOT / "benchmarks/mask_reward.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
