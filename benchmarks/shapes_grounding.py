"""Does the shapes model see and reason? Grounding checks of a shapes reasoner; writes a JSON result and a table.

    python benchmarks/shapes_grounding.py run --reasoner src/segzero/assets/shapes_model --out runs/grounding/shipped
    python benchmarks/shapes_grounding.py table runs/grounding/* --out benchmarks/shapes_grounding.md

``run`` measures, on the world the reasoner was trained on (``world`` in its ``segzero.json``) with the ``color``
segmenter and greedy decoding (``segzero.shapes.grounding``):

- demo: ``segzero demo --seed K`` for K = 0..19 (the same scene, size and pipeline as the command), right = mask
  IoU > 0.5;
- val: ``--n`` scenes of the val split through ``segzero eval``'s runner (gIoU, cIoU, and the fraction of samples
  with IoU > 0.5 from its per-sample records), and through the pipeline for the per-family rates and the
  reasoning / answer agreement;
- by name: every uniquely named shape of the first ``--n-names`` val scenes asked for as "the <colour> <kind>";
- out of domain: the test split (held-out wordings of the trained families) and the val split of a family the
  model never trained on (``--ood-family``, default relation).

``table`` collects run folders' ``result.json`` into markdown with machine, date and commands. ``ship`` copies a
trained checkpoint's inference files into the package (the model ``segzero demo`` and ``segzero serve`` use) with a
``segzero.json`` that records its frame, prompt, training world, recipe, step and the measured rates of a run:

    python benchmarks/shapes_grounding.py ship --from runs/shapes/final --result runs/grounding/final/result.json

``average`` writes the uniform average of the weights of checkpoints of one architecture (a "model soup"; the
other files are the first checkpoint's), e.g. two continuations of one model:

    python benchmarks/shapes_grounding.py average runs/a/answer_sft runs/b/answer_sft --to runs/soup

``deepen`` adds text decoder layers on top of a checkpoint whose output projections are zero (the deeper model
answers exactly as the source until trained), to continue a trained model with more depth:

    python benchmarks/shapes_grounding.py deepen src/segzero/assets/shapes_model --layers 4 --to runs/deep8
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pipeline(reasoner: str, frame: int | None, max_new_tokens: int):
    from segzero.pipeline import SegZeroPipeline

    kwargs = {"frame": frame} if frame else {}
    return SegZeroPipeline.from_pretrained(
        reasoner=reasoner, segmenter="color", device="cpu", max_new_tokens=max_new_tokens, batch_size=32, **kwargs
    )


def per_family(rows: list[dict]) -> dict[str, dict]:
    from segzero.shapes.grounding import summarise

    return {f: summarise([r for r in rows if r["family"] == f]) for f in sorted({r["family"] for r in rows})}


def run(args) -> dict:
    from segzero.assets import SHAPES_MAX_NEW_TOKENS
    from segzero.cli.demo import draw_scene, model_world
    from segzero.eval.records import read_records
    from segzero.shapes.grounding import by_name_checks, draw, scene_checks, summarise
    from segzero.shapes.val import evaluate, val_dataset

    args.max_new_tokens = args.max_new_tokens or SHAPES_MAX_NEW_TOKENS
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = json.loads((Path(args.reasoner) / "segzero.json").read_text()) if args.frame is None else {}
    frame = args.frame or info["frame"]
    world = model_world(args.reasoner) if args.world is None else json.loads(args.world)
    pipe = pipeline(args.reasoner, args.frame, args.max_new_tokens)
    t0 = time.perf_counter()
    result: dict = {"reasoner": args.reasoner, "frame": frame, "world": world, "argv": sys.argv[1:]}

    demo = [draw_scene(k, args.demo_size, world) for k in range(args.demo_scenes)]
    demo_rows = scene_checks(pipe, demo)
    result["demo"] = {**summarise(demo_rows), "right_seeds": [k for k, r in enumerate(demo_rows) if r["right"]]}

    summary = evaluate(
        args.reasoner,
        out=out / "eval_val",
        n=args.n,
        dataset=val_dataset(args.n, world=world, size=frame),
        frame=args.frame,
        max_new_tokens=args.max_new_tokens,
    )
    records, _ = read_records(out / "eval_val" / "samples.jsonl")
    result["eval_val"] = {
        "n": summary["n"],
        "gIoU": summary["gIoU"],
        "cIoU": summary["cIoU"],
        "right": round(sum((r.get("iou") or 0.0) > 0.5 for r in records) / len(records), 4),
    }

    val_rows = scene_checks(pipe, draw(args.n, world=world, size=frame, split="val"))
    result["val"] = {**summarise(val_rows), "families": per_family(val_rows)}
    name_rows = by_name_checks(pipe, draw(args.n_names, world=world, size=frame, split="val"))
    result["by_name"] = summarise(name_rows)

    test_rows = scene_checks(pipe, draw(args.n, world=world, size=frame, split="test"))
    result["test_heldout_wordings"] = {**summarise(test_rows), "families": per_family(test_rows)}
    ood_world = {**(world or {}), "families": [args.ood_family]}
    ood_rows = scene_checks(pipe, draw(args.n_ood, world=ood_world, size=frame, split="val"))
    result["ood_family"] = {"family": args.ood_family, **summarise(ood_rows)}

    result["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "result.json").write_text(json.dumps(result, indent=2))
    with (out / "rows.jsonl").open("w") as f:
        for name, rows in (("demo", demo_rows), ("val", val_rows), ("by_name", name_rows), ("test", test_rows)):
            for r in rows:
                f.write(json.dumps({"set": name, **r}) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("world", "argv")}, indent=1))
    return result


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def table(args) -> str:
    import torch

    lines = [
        "# Shapes model grounding: does it look at the image, and does its reasoning name its answer?",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}, CPU only",
        "- command per row: `python benchmarks/shapes_grounding.py run --reasoner DIR --out RUN`; this table: "
        "`python benchmarks/shapes_grounding.py table RUN... --out benchmarks/shapes_grounding.md`",
        "- every row: the reasoner's own training world (`world` in its segzero.json), greedy decoding, `color` "
        "segmenter; right = mask IoU > 0.5 with the intended shape; val = the val split (trained wordings), test = "
        "held-out wordings of the trained families; OOD family = a query family never trained on",
        "- agree = the shape the reasoning names ('The query means the <colour> <kind>, N') is the shape the mask "
        "lands on (of the samples where both exist); named = reasoning names a shape",
        "",
        "| run | demo seeds 0-19 right | eval val n | eval gIoU | eval cIoU | eval right | by name right (n) "
        "| val agree | val named | test (held-out wordings) right | OOD family right |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for d in args.runs:
        f = Path(d) / "result.json"
        if not f.is_file():
            continue
        r = json.loads(f.read_text())
        e = r["eval_val"]
        lines.append(
            f"| {Path(d).name} | {len(r['demo']['right_seeds'])} / {r['demo']['n']} | {e['n']} | {pct(e['gIoU'])} "
            f"| {pct(e['cIoU'])} | {pct(e['right'])} | {pct(r['by_name']['right'])} ({r['by_name']['n']}) "
            f"| {pct(r['val']['agree'])} | {pct(r['val']['named'])} | {pct(r['test_heldout_wordings']['right'])} "
            f"| {pct(r['ood_family']['right'])} ({r['ood_family']['family']}) |"
        )
    lines += ["", "Per query family (val right %, test right %):", ""]
    for d in args.runs:
        f = Path(d) / "result.json"
        if not f.is_file():
            continue
        r = json.loads(f.read_text())
        fams = r["val"]["families"]
        test = r["test_heldout_wordings"]["families"]
        parts = [f"{k} {pct(v['right'])} / {pct(test.get(k, {}).get('right'))}" for k, v in fams.items()]
        lines.append(f"- {Path(d).name}: " + "; ".join(parts))
    text = "\n".join(lines) + "\n" + (Path(args.notes).read_text() if args.notes else "")
    if args.out:
        Path(args.out).write_text(text)
    return text


def ship(args) -> Path:
    """Copy ``--from``'s inference files into ``--to`` (replaced) with a ``segzero.json`` describing them."""
    from segzero.assets import SHAPES_MODEL_FILES
    from segzero.models.reasoner import read_model_info, write_model_info
    from segzero.train.config import TrainConfig

    src, dest = Path(args.source), Path(args.to)
    cfg = TrainConfig.from_yaml(ROOT / args.recipe)
    result = json.loads(Path(args.result).read_text())
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in SHAPES_MODEL_FILES:
        shutil.copy2(src / name, dest / name)
    info = read_model_info(src)
    write_model_info(
        dest,
        frame=cfg.frame,
        prompt=cfg.prompt_kind,
        segmenter="color",
        world=dict(cfg.dataset_args.get("world") or {}),
        training=info.get("training", {}),
        recipe=args.recipe,
        stage=info.get("stage", "grpo"),
        note=args.note,
        val_right=result["eval_val"]["right"],
        val_gIoU=result["eval_val"]["gIoU"],
        val_cIoU=result["eval_val"]["cIoU"],
        by_name_right=result["by_name"]["right"],
        val_samples=result["eval_val"]["n"],
    )
    print(f"shipped {src} -> {dest}")
    return dest


def average(args) -> Path:
    """Uniform average of the ``model.safetensors`` tensors of ``args.sources`` (same names and shapes; non-float
    tensors from the first) into ``args.to``, with the first source's other files."""
    import torch
    from safetensors.torch import load_file, save_file

    sources, dest = [Path(x) for x in args.sources], Path(args.to)
    states = [load_file(str(src / "model.safetensors")) for src in sources]
    if any(st.keys() != states[0].keys() or any(st[k].shape != states[0][k].shape for k in st) for st in states):
        raise SystemExit("average: the checkpoints differ in tensor names or shapes")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(sources[0], dest)
    out = {}
    for name, first in states[0].items():
        if first.is_floating_point():
            out[name] = (torch.stack([st[name].double() for st in states]).mean(0)).to(first.dtype)
        else:
            out[name] = first
    save_file(out, str(dest / "model.safetensors"), metadata={"format": "pt"})
    print(f"averaged {len(sources)} checkpoints -> {dest}")
    return dest


def deepen(args) -> Path:
    """``args.source`` with ``args.layers`` more text decoder layers on top (after the last one, before the final
    norm) whose output projections (attention ``o_proj``, MLP ``down_proj``) are zero: each new layer adds 0 to the
    residual stream, so the deeper model computes exactly what the source does until training moves them. The
    other new weights keep the architecture's random init. Written to ``args.to`` with the source's other files."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    src, dest = Path(args.source), Path(args.to)
    model = AutoModelForImageTextToText.from_pretrained(src, dtype="float32")
    config = AutoConfig.from_pretrained(src)
    text = config.text_config
    old = text.num_hidden_layers
    text.num_hidden_layers = old + args.layers
    if getattr(text, "layer_types", None):
        text.layer_types = list(text.layer_types) + [text.layer_types[-1]] * args.layers
    torch.manual_seed(args.seed)
    deeper = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    missing, unexpected = deeper.load_state_dict(model.state_dict(), strict=False)
    new = tuple(f"language_model.layers.{i}." for i in range(old, old + args.layers))
    stray = [k for k in missing if not any(n in k for n in new)]
    if unexpected or stray:
        raise SystemExit(f"deepen: tensors not carried over: unexpected {unexpected[:3]}, missing {stray[:3]}")
    with torch.no_grad():
        for layer in deeper.model.language_model.layers[old:]:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    deeper.save_pretrained(dest)
    print(f"deepened {src} from {old} to {old + args.layers} text layers -> {dest}")
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="measure one reasoner")
    r.add_argument("--reasoner", required=True, help="reasoner folder")
    r.add_argument("--out", required=True, help="run folder (result.json, rows.jsonl, eval_val/)")
    r.add_argument("--frame", type=int, default=None, help="model frame (default: the folder's segzero.json)")
    r.add_argument("--world", default=None, help="world settings as JSON (default: the folder's segzero.json)")
    r.add_argument("--n", type=int, default=256, help="val and test scenes")
    r.add_argument("--n-names", type=int, default=100, help="val scenes whose shapes are asked for by name")
    r.add_argument("--n-ood", type=int, default=128, help="scenes of the held-out family")
    r.add_argument("--ood-family", default="relation", help="query family never trained on")
    r.add_argument("--demo-scenes", type=int, default=20, help="segzero demo seeds 0..N-1")
    r.add_argument("--demo-size", type=int, default=336, help="segzero demo's scene size")
    r.add_argument("--max-new-tokens", type=int, default=None, help="default: segzero.assets.SHAPES_MAX_NEW_TOKENS")
    t = sub.add_parser("table", help="markdown table of run folders")
    t.add_argument("runs", nargs="+")
    t.add_argument("--out", default=None)
    t.add_argument("--notes", default=None, help="markdown appended under the table")
    h = sub.add_parser("ship", help="copy a checkpoint into the package as the shipped model")
    h.add_argument("--from", dest="source", required=True, help="trained checkpoint folder")
    h.add_argument("--result", required=True, help="its `run` result.json (rates recorded in segzero.json)")
    h.add_argument("--to", default=str(ROOT / "src/segzero/assets/shapes_model"))
    h.add_argument("--recipe", default="recipes/shapes_tiny.yaml", help="the recipe that trained it")
    h.add_argument(
        "--note", default="shapes-world reasoner trained by recipes/shapes_tiny.yaml (perception warm-up + GRPO)"
    )
    a = sub.add_parser("average", help="uniform weight average of checkpoints of one architecture")
    a.add_argument("sources", nargs="+", help="checkpoint folders (model.safetensors each)")
    a.add_argument("--to", required=True, help="output folder")
    d = sub.add_parser("deepen", help="add zero-output text decoder layers on top of a checkpoint")
    d.add_argument("source", help="checkpoint folder")
    d.add_argument("--layers", type=int, default=2, help="text decoder layers to add")
    d.add_argument("--seed", type=int, default=0, help="seed of the new layers' init")
    d.add_argument("--to", required=True, help="output folder")
    args = p.parse_args(argv)
    if args.cmd == "deepen":
        if args.layers < 1:
            p.error(f"deepen: --layers must be at least 1, got {args.layers}")
        deepen(args)
        return 0
    if args.cmd == "average":
        average(args)
        return 0
    if args.cmd == "ship":
        ship(args)
        return 0
    text = run(args) if args.cmd == "run" else table(args)
    if args.cmd == "table" and not args.out:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
