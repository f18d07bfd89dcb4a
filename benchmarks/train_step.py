"""Benchmark of one GRPO step (TRL ``GRPOTrainer`` through ``segzero.train``): seconds per step and peak memory.

Run (CPU, tiny random-weight models built on the fly; prints a markdown table and, with --write, writes
benchmarks/train_step.md)::

    OMP_NUM_THREADS=1 python benchmarks/train_step.py --write

Each variant runs in its own subprocess (so the peak resident memory, ``ru_maxrss``, is that variant's alone):
``recipes/tiny_cpu.yaml`` with ``--steps`` optimizer steps on the synthetic shapes world, ``--prompts`` prompts x
``--generations`` completions of exactly ``--tokens`` new tokens each (``min_new_tokens`` pins the length, so
random-weight models cost the same every step), at a ``--frame`` x ``--frame`` model frame. A step is rollout
generation + reward scoring + reference and policy log-probs + backward + AdamW; the first step (warm-up) is
left out of the mean; times are wall clock from ``on_step_begin`` to ``on_step_end``. Variants: ``full`` (all weights, KL to a reference copy, beta 5e-3) and ``lora`` (peft
adapters r=8 on the language model, reference = adapters disabled). Checkpoint saving is off. A second table says
where a step's time goes (``time_parts``: HF generation, reward functions, every log-prob pass, the vision
towers' forwards and how many images they encode) and what the repeated image encoding would cost at 7B.
GPU rows (3B/7B sizes, vLLM vs HF generation) need a lent GPU; none was available when the table was written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

VARIANTS = {
    "full": [],
    "lora": ["lora=true", "lora_r=8", "lora_alpha=16"],
}


def time_parts(trainer) -> dict:
    """Wrap the parts of a GRPO step with timers: TRL's rollout (generation, rewards, old and reference
    log-probs), HF ``generate``, the reward functions, every log-prob pass (``_get_per_token_logps_and_entropies``:
    reference, old policy and the loss's own forward), and the vision towers' forwards (policy and reference copy:
    how often, and how many images, are encoded). Returns ``{part: {"s", "calls"}}``, filled while the trainer runs."""
    import functools
    import time

    parts = {k: {"s": 0.0, "calls": 0} for k in ("rollout", "generate", "rewards", "logp_passes", "vision_encoder")}
    parts["vision_encoder"]["images"] = 0

    def timed(name, fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                parts[name]["s"] += time.perf_counter() - t
                parts[name]["calls"] += 1

        return wrapper

    trainer._generate_and_score_completions = timed("rollout", trainer._generate_and_score_completions)
    trainer._get_per_token_logps_and_entropies = timed("logp_passes", trainer._get_per_token_logps_and_entropies)
    trainer.reward_funcs = [timed("rewards", f) for f in trainer.reward_funcs]
    model = trainer.model
    model.generate = timed("generate", model.generate)
    models = [model] + ([trainer.ref_model] if getattr(trainer, "ref_model", None) is not None else [])
    visuals = [next(m for name, m in mod.named_modules() if name.endswith("visual")) for mod in models]
    clock = {}

    def before(_module, args, kwargs):
        grid = kwargs.get("grid_thw", args[1] if len(args) > 1 else None)
        parts["vision_encoder"]["images"] += 0 if grid is None else int(grid.shape[0])
        clock["t"] = time.perf_counter()

    def after(*_):
        parts["vision_encoder"]["s"] += time.perf_counter() - clock["t"]
        parts["vision_encoder"]["calls"] += 1

    for visual in visuals:  # the policy's and, for full fine-tuning, the reference copy's
        visual.register_forward_pre_hook(before, with_kwargs=True)
        visual.register_forward_hook(after)

    return parts


def child(args: argparse.Namespace) -> dict:
    """Train one variant in this process; returns its timings and peak RSS."""
    import time

    import torch
    from transformers import TrainerCallback

    from segzero.train.config import TrainConfig
    from segzero.train.trainer import build_trainer

    class StepTimer(TrainerCallback):
        """Wall time from on_step_begin to on_step_end: rollouts, rewards, log-probs, backward, optimizer."""

        def __init__(self):
            self.times: list[float] = []
            self._t0 = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self._t0)
            if len(self.times) == 1:  # the parts of the warm-up step, left out like its time
                self.first = {k: dict(v) for k, v in self.parts.items()}

    torch.set_num_threads(max(1, args.threads))
    overrides = [
        f"max_steps={args.steps}",
        f"frame={args.frame}",
        f"num_generations={args.generations}",
        f"prompts_per_step={args.prompts}",
        f"per_device_batch_size={args.prompts * args.generations}",
        f"max_completion_length={args.tokens}",
        f"dataset_args.samples={max(32, args.prompts * (args.steps + 1))}",
        f"grpo_args.generation_kwargs={{min_new_tokens: {args.tokens}}}",
        "save_steps=100000",
        "sample_every=0",
        "report_to=[none]",
        *VARIANTS[args.child],
    ]
    cfg = TrainConfig.from_yaml(Path(__file__).resolve().parents[1] / "recipes" / "tiny_cpu.yaml", overrides=overrides)
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        trainer, _ = build_trainer(cfg, tmp)
        trainer.add_callback(timer)
        timer.parts = time_parts(trainer)
        trainer.train()
    times = timer.times
    n = max(1, len(times) - 1)
    per_step = {
        k: {f: (v[f] - timer.first[k][f]) / n for f in v} for k, v in timer.parts.items()
    }  # after the warm-up step
    return {
        "parts": per_step,
        "variant": args.child,
        "steps": len(times),
        "first_s": times[0],
        "mean_s": statistics.mean(times[1:]) if len(times) > 1 else times[0],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="full,lora", help="comma-separated: " + ", ".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per variant (first is warm-up)")
    parser.add_argument("--prompts", type=int, default=2, help="prompts per step")
    parser.add_argument("--generations", type=int, default=4, help="completions per prompt")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per completion (fixed)")
    parser.add_argument("--frame", type=int, default=112, help="model frame side in pixels")
    parser.add_argument(
        "--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")), help="torch threads"
    )
    parser.add_argument("--write", action="store_true", help="write benchmarks/train_step.md")
    parser.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args)))
        return 0

    rows = []
    for variant in args.variants.split(","):
        cmd = [sys.executable, __file__, "--child", variant] + [
            f"--{k}={getattr(args, k)}" for k in ("steps", "prompts", "generations", "tokens", "frame", "threads")
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"variant {variant} failed (exit {proc.returncode})")
        rows.append(json.loads(lines[-1][len("RESULT ") :]))

    import torch
    import transformers
    import trl

    cpu = (
        next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    completions = args.prompts * args.generations
    table = [
        "| variant | steps timed | first step (s) | mean s/step (after the first) | completions/s | peak RSS (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        table.append(
            f"| {r['variant']} | {r['steps'] - 1} | {r['first_s']:.2f} | {r['mean_s']:.3f} | "
            f"{completions / r['mean_s']:.1f} | {r['peak_rss_mb']:.0f} |"
        )
    table += [
        "",
        "Where a step's time goes (per step, after the first; the parts overlap as noted):",
        "",
        "| variant | step (s) | generate (s) | rewards (s) | log-prob passes: calls, s | vision encoder: calls, "
        "images, s (inside generate and the log-prob passes) | rest: backward, optimizer, TRL (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r["parts"]
        rest = r["mean_s"] - p["generate"]["s"] - p["rewards"]["s"] - p["logp_passes"]["s"]
        table.append(
            f"| {r['variant']} | {r['mean_s']:.3f} | {p['generate']['s']:.3f} | {p['rewards']['s']:.4f} | "
            f"{p['logp_passes']['calls']:.0f}, {p['logp_passes']['s']:.3f} | {p['vision_encoder']['calls']:.0f}, "
            f"{p['vision_encoder']['images']:.0f}, {p['vision_encoder']['s']:.3f} | {rest:.3f} |"
        )
    images = rows[0]["parts"]["vision_encoder"]["images"]
    table += [
        "",
        f"Image encodings: {images:.0f} per step for {args.prompts} distinct images ({completions} completions): "
        "generation encodes the image once per completion (each of the G sequences carries it), and every log-prob "
        "pass encodes it again per completion. At 7B (Qwen2.5-VL-7B's ~0.67B-parameter vision tower, 840 x 840 = "
        "3600 patches of 14 px, about 2 x 0.67e9 x 3600 = 4.8 TFLOP per forward before attention) a prompt with "
        f"G = 8 completions and the same passes costs {images / args.prompts * 8 / args.generations:.0f} encodings "
        f"= {images / args.prompts * 8 / args.generations * 4.8:.0f} TFLOP where 1 encoding (4.8 TFLOP) would do, "
        f"about {images / args.prompts * 8 / args.generations * 4.8 / 400:.2f} s per prompt at 400 TFLOP/s of bf16 "
        "(more with a trainable vision tower, whose policy pass also runs backward). Caching the vision embeddings "
        "per prompt across its completions and passes would remove all but one.",
    ]
    argv = " ".join(shlex.quote(a) for a in sys.argv[1:])
    text = "\n".join(
        [
            "# GRPO step benchmark (CPU, tiny models)",
            "",
            f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- machine: {platform.machine()} {cpu}, {os.cpu_count()} CPUs visible (shared with other jobs), "
            f"torch threads {args.threads}; Python {platform.python_version()}, torch {torch.__version__}, "
            f"transformers {transformers.__version__}, trl {trl.__version__}",
            f"- command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} python benchmarks/train_step.py {argv}`",
            f"- per step: {args.prompts} prompts x {args.generations} generations = {completions} completions of "
            f"{args.tokens} tokens, {args.frame}x{args.frame} frame, tiny Qwen2.5-VL (random weights), fp32",
            "- GPU rows (3B/7B architecture sizes, vLLM vs HF generation, full vs LoRA): not measured, no GPU was lent.",
            "",
            *table,
            "",
        ]
    )
    print(text)
    if args.write:
        (Path(__file__).resolve().parent / "train_step.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
