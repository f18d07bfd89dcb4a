"""Seg-Zero's central claim at small scale: from the same start, does RL (GRPO on format + accuracy rewards)
generalise out of domain better than supervised fine-tuning on the same data? Writes a table and curves.

    python benchmarks/shapes_rl_vs_sft.py --warmup runs/shapes_warm/warmup --run-dir runs/rl_vs_sft \
        --arms grpo grpo_soft sft --out benchmarks/shapes_rl_vs_sft.md          # about 1 hour on 2 CPU cores
    # two cores: train arms in two processes first (--train-only), then the same command evaluates and reports
    # --start-note says what the start is when it is not a warm-up of shapes_tiny.yaml (it goes into the report)
    # the Seg-Zero-way comparison: every arm from a perception-only warm-up of shapes_grpo.yaml; a long run of the
    # same recipe stands in for its arm (--arm-dir), and --eval-only reports the checkpoints written so far
    python benchmarks/shapes_rl_vs_sft.py --recipe recipes/shapes_grpo.yaml --warmup runs/shapes_grpo/warmup \
        --run-dir runs/rl_vs_sft_grpo --arms grpo grpo_consistency sft --arm-dir grpo_consistency=runs/shapes_grpo

Every arm starts from the same perception warm-up (the recipe's first stage: the model lists the
shapes and copies a *randomly* picked one; no query was ever supervised) and sees the same training scenes
(the first rows of the train split):

- ``grpo``: ``segzero train --config RECIPE --set model=WARMUP --set stages=[grpo] --set reward_plugins=[]``
  (the paper's five 0/1 rewards, ``max_steps`` x ``prompts_per_step`` prompts, 8 samples
  each); ``grpo_consistency`` adds the reasoning-answer consistency term (``segzero.shapes.consistency``: the
  answer must be the listed shape the reasoning decides on); ``grpo_<variant>`` arms use another reward set
  (``reward_variant``): ``grpo_soft`` (continuous IoU / L1), ``grpo_mask`` (format terms + the IoU of the mask the
  model's own segmenter makes, ``segzero.train.mask_reward``);
- ``sft``: the same recipe with one ``answer_sft`` stage and no GRPO (supervised gt answers): the same
  think format with the gt shape picked, teacher-forced, on as many prompts as the GRPO arm saw.

Every saved checkpoint (and step 0) is evaluated greedily with the ``color`` segmenter
(``segzero.shapes.grounding``) on: in domain = val split of the training world (trained families and wordings);
out of domain = held-out wordings of the trained families (test split) and a family never trained on
(``--ood-family``). right = mask IoU > 0.5.
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes/shapes_tiny.yaml"
CONSISTENCY = "segzero.shapes.consistency:decision_consistency"
# GRPO arms -> their reward overrides; any other grpo_<variant> arm sets reward_variant=<variant>
ARM_REWARDS: dict[str, list[str]] = {
    "grpo": ["reward_plugins=[]"],  # the paper's five terms exactly
    "grpo_consistency": [f"reward_plugins=[{CONSISTENCY}]"],  # plus the reasoning-answer consistency term
}


def arm_overrides(arm: str) -> list[str]:
    """The reward overrides of GRPO arm ``arm`` (``ARM_REWARDS``, else ``reward_variant=<variant>``)."""
    if arm in ARM_REWARDS:
        return ARM_REWARDS[arm]
    return ["reward_plugins=[]", f"reward_variant={arm.split('_', 1)[1]}"]


def train_arm(run: Path, overrides: list[str], recipe: Path = RECIPE) -> float:
    """``segzero train`` of one arm (skipped when its result exists); returns wall seconds (0 when skipped)."""
    done = run / "final" / "config.json"
    if done.is_file() or (run / "answer_sft" / "segzero.json").is_file():
        return json.loads((run / "wall.json").read_text())["seconds"] if (run / "wall.json").is_file() else 0.0
    cmd = [sys.executable, "-m", "segzero.cli.main", "train", "--config", str(recipe), "--output-dir", str(run)]
    for o in overrides:
        cmd += ["--set", o]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - t0
    (run / "wall.json").write_text(json.dumps({"seconds": seconds, "command": cmd[1:]}))
    return seconds


def checkpoints(run: Path, sub: str) -> list[tuple[int, Path]]:
    """``(step, folder)`` of the arm's saved checkpoints, by step."""
    base = run / sub
    found = [(int(p.name.split("-")[1]), p) for p in base.glob("checkpoint-*") if (p / "config.json").is_file()]
    return sorted(found)


def evaluate(folder: Path, *, frame: int, prompt: str, world: dict, n: int, ood_family: str) -> dict:
    from segzero.assets import SHAPES_MAX_NEW_TOKENS
    from segzero.pipeline import SegZeroPipeline
    from segzero.shapes.grounding import draw, scene_checks, summarise

    pipe = SegZeroPipeline.from_pretrained(
        reasoner=str(folder),
        segmenter="color",
        device="cpu",
        frame=frame,
        prompt=prompt,
        max_new_tokens=SHAPES_MAX_NEW_TOKENS,
        batch_size=32,
    )
    sets = {
        "in_domain": draw(n, world=world, size=frame, split="val"),
        "heldout_wordings": draw(n, world=world, size=frame, split="test"),
        "heldout_family": draw(n, world={**world, "families": [ood_family]}, size=frame, split="val"),
    }
    return {name: summarise(scene_checks(pipe, samples)) for name, samples in sets.items()}


def plot(results: dict, path: Path) -> bool:
    """The curves as a PNG (with matplotlib; False, and no file, without it)."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no curves plot (pip install matplotlib)", flush=True)
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("in_domain", "heldout_wordings", "heldout_family")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for ax, name in zip(axes, names, strict=True):
        for arm, points in results.items():
            xs = [p["prompts"] for p in points]
            ax.plot(xs, [100 * p[name]["right"] for p in points], marker="o", label=arm)
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("training prompts seen after the warm-up")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("right (mask IoU > 0.5), %")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warmup", required=True, help="the shared starting checkpoint (a perception warm-up)")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--out", default="benchmarks/shapes_rl_vs_sft.md")
    p.add_argument("--grpo-steps", type=int, default=300)
    p.add_argument("--save-steps", type=int, default=100, help="checkpoint (and curve point) interval, GRPO steps")
    p.add_argument("--sft-lr", type=float, default=5e-4)
    p.add_argument(
        "--arms",
        nargs="+",
        default=["grpo", "sft"],
        help="arms to train and report: grpo (the paper's rewards), grpo_consistency (plus the reasoning-answer "
        "consistency term), grpo_<variant> (e.g. grpo_soft), sft",
    )
    p.add_argument(
        "--recipe", default=str(RECIPE), help="the recipe every arm trains with (its GRPO and SFT settings)"
    )
    p.add_argument(
        "--arm-dir",
        action="append",
        default=[],
        metavar="ARM=DIR",
        help="an arm already trained (or training) elsewhere with this script's settings, e.g. a long run of the "
        "same recipe from the same warm-up: its checkpoints are evaluated, nothing is trained for it",
    )
    p.add_argument("--train-only", action="store_true", help="train the arms, skip evaluation and report")
    p.add_argument(
        "--eval-only", action="store_true", help="train nothing: evaluate the checkpoints the arms have so far"
    )
    p.add_argument("--max-step", type=int, default=None, help="evaluate checkpoints up to this GRPO step only")
    p.add_argument(
        "--every", type=int, default=1, help="evaluate every N-th saved checkpoint of each arm (and its last one)"
    )
    p.add_argument("--n", type=int, default=96, help="scenes per evaluation set")
    p.add_argument("--ood-family", default="relation")
    p.add_argument("--notes", default=None, help="markdown appended to the report")
    p.add_argument(
        "--start-note",
        default="the perception warm-up of `recipes/shapes_tiny.yaml`",
        help="what the start checkpoint is, for the report",
    )
    args = p.parse_args(argv)

    from segzero.train.config import TrainConfig

    recipe = Path(args.recipe)
    cfg = TrainConfig.from_yaml(recipe)
    arm_dirs = dict(a.split("=", 1) for a in args.arm_dir)
    run = Path(args.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    world = dict(cfg.dataset_args.get("world") or {})
    per_step = cfg.prompts_per_step
    sft_batch = next((c.batch_size for _, c in cfg.stage_list() if hasattr(c, "batch_size")), 32)
    sft_steps = args.grpo_steps * per_step // sft_batch
    sft_save = max(1, args.save_steps * per_step // sft_batch)
    arms = [a for a in args.arms if a.startswith("grpo")]
    walls, results = {}, {}
    common = [f"model={Path(args.warmup).resolve()}", f"save_steps={args.save_steps}"]
    dirs = {arm: Path(arm_dirs.get(arm, run / arm)) for arm in [*arms, "sft"]}
    for arm in arms:
        if arm in arm_dirs or args.eval_only:
            continue
        overrides = [*common, "stages=[grpo]", f"max_steps={args.grpo_steps}"]
        walls[arm] = train_arm(dirs[arm], [*overrides, *arm_overrides(arm)], recipe)
    sft_overrides = [  # one gt-answer stage with its own full cosine, no GRPO
        f"model={Path(args.warmup).resolve()}",
        f"stages=[{{kind: answer_sft, steps: {sft_steps}, learning_rate: {args.sft_lr}, batch_size: {sft_batch}, "
        "warmup_steps: 10}]",
        f"save_steps={sft_save}",
        "save_total_limit=null",
    ]
    if "sft" in args.arms and "sft" not in arm_dirs and not args.eval_only:
        walls["sft"] = train_arm(dirs["sft"], sft_overrides, recipe)
    if args.train_only:
        return 0

    cache = run / "evals.json"
    evals = json.loads(cache.read_text()) if cache.is_file() else {}

    def cached(key: str, folder: Path) -> dict:
        if key not in evals:
            evals[key] = evaluate(
                folder, frame=cfg.frame, prompt=cfg.prompt_kind, world=world, n=args.n, ood_family=args.ood_family
            )
            cache.write_text(json.dumps(evals, indent=1))
            print(key, json.dumps(evals[key]), flush=True)
        return evals[key]

    start = cached("warmup", Path(args.warmup))
    last = args.max_step if args.max_step is not None else args.grpo_steps

    def strided(found: list) -> list:
        return [c for i, c in enumerate(found) if (i + 1) % args.every == 0 or i == len(found) - 1]

    for arm in arms:
        found = strided([(s, f) for s, f in checkpoints(dirs[arm], "") if s <= last])
        results[arm] = [{"prompts": 0, **start}] + [
            {"prompts": s * per_step, **cached(f"{arm}/{s}", f)} for s, f in found
        ]
    if "sft" in args.arms:
        results["sft"] = [{"prompts": 0, **start}] + [
            {"prompts": s * sft_batch, **cached(f"sft/{s}", f)}
            for s, f in strided(checkpoints(dirs["sft"], "answer_sft_run"))
        ]
    out = Path(args.out)
    plotted = plot(results, out.with_suffix(".png"))

    import torch

    lines = [
        "# RL vs SFT from the same start on the shapes world (Seg-Zero's generalisation claim, small scale)",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}, CPU only",
        f"- command: `python benchmarks/shapes_rl_vs_sft.py {shlex.join(sys.argv[1:] if argv is None else argv)}`",
        f"- start (step 0, every arm): `{args.warmup}`, {args.start_note}",
        f"- recipe: `{args.recipe}`; grpo: {args.grpo_steps} steps x {per_step} prompts x {cfg.num_generations} "
        f"samples, the paper's 0/1 rewards ({', '.join(f'{a}: {arm_overrides(a)}' for a in arms)}), lr "
        f"{cfg.learning_rate}; sft: {sft_steps} steps x {sft_batch} gt answers (same prompts count, same "
        f"scenes), lr {args.sft_lr} cosine",
        f"- evaluation: {args.n} scenes per set, greedy, `color` segmenter; in domain = val split (trained "
        f"families {world.get('families')}, trained wordings); held-out wordings = test split; held-out family = "
        f"'{args.ood_family}' queries (never trained)",
        "",
        "| arm | training prompts | wall s | in-domain right % | held-out wordings right % "
        "| held-out family right % | in-domain agree % |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for arm, points in results.items():
        for pnt in points:
            wall = f"{walls[arm]:.0f}" if arm in walls and walls[arm] and pnt is points[-1] and pnt["prompts"] else "-"
            agree = pnt["in_domain"]["agree"]
            lines.append(
                f"| {arm} | {pnt['prompts']} | {wall} | {100 * pnt['in_domain']['right']:.1f} "
                f"| {100 * pnt['heldout_wordings']['right']:.1f} | {100 * pnt['heldout_family']['right']:.1f} "
                f"| {'-' if agree is None else f'{100 * agree:.1f}'} |"
            )
    lines += ["", f"![curves]({out.with_suffix('.png').name})" if plotted else "", ""]
    if args.notes:
        lines.append(Path(args.notes).read_text())
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}" + (f" and {out.with_suffix('.png')}" if plotted else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
