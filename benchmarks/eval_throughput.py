"""Benchmark of the evaluation loop: samples/s of ``segzero eval``'s runner vs a reference-style loop.

Run (CPU, tiny random-weight models built on the fly; prints a markdown table and, with --write, writes
benchmarks/eval_throughput.md)::

    OMP_NUM_THREADS=1 python benchmarks/eval_throughput.py --write

Both loops evaluate the same generated ReasonSeg-layout dataset (``--images`` images x ``--queries`` queries,
``--size`` pixels, gt rectangles) with the same models and batch size, and report samples/s over the whole loop
(image and gt decoding, generation, SAM2, scoring; model loading excluded, one warm-up pass each):

(a) ``runner``: ``segzero.eval.runner.run_eval`` (chunks of whole images, each one generate call; one SAM2
    embedding per image, computed in an embedding thread while its chunk generates, and one decoder call per
    image in a segmenting thread while the next chunk generates; records appended + fsynced to samples.jsonl;
    report.html off);
(b) ``reference``: the loop the reference evaluation scripts use: HF generate in batches of ``--batch-size`` in dataset
    order, then per sample parse, ``set_image`` (an embedding per sample), one ``predict`` per object, IoU.

Random tiny VLMs rarely write a parseable answer, which would skip SAM2 entirely; so the reasoner runs its real
``generate`` for a fixed length (``min_new_tokens = max_new_tokens``) and its text is then replaced by one fixed valid
Seg-Zero answer (``FixedAnswerReasoner``), the same in both loops: the generation cost is real, SAM2 always runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ANSWER = '<think>fixed</think><answer>{"bbox": [10, 10, 40, 36], "points_1": [20, 20], "points_2": [30, 28]}</answer>'


@dataclass
class FixedAnswerReasoner:
    """Runs the wrapped reasoner's real ``generate`` (fixed length), returns ``answer`` for every query."""

    inner: object
    answer: str = ANSWER

    @property
    def frame(self):
        return self.inner.frame

    def generate(self, images, queries, **kw):
        self.inner.generate(images, queries, **kw)
        return [self.answer] * len(queries)


def make_dataset(path: Path, *, images: int, queries: int, size: tuple[int, int], seed: int = 0) -> None:
    """A ReasonSeg-layout save_to_disk folder: random images, rectangle masks, 1, 2, ..., ``queries``, 1, 2, ...
    rows per image in turn (48 images with ``queries=3``: 96 samples)."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    rows = {k: [] for k in ("image", "text", "mask", "image_id", "ann_id", "img_height", "img_width")}
    for i in range(images):
        img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        for a in range(1 + i % queries):
            m = np.zeros((h, w), bool)
            m[h // 8 * (1 + a % 3) : h // 2 + h // 8 * (a % 3), w // 6 : w // 2] = True
            for k, v in zip(rows, (img, f"object {a}", m.tolist(), f"im{i}", str(a), h, w), strict=True):
                rows[k].append(v)
    datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows)}).save_to_disk(str(path))


def reference_loop(ds, reasoner, segmenter, *, batch_size: int) -> list[tuple[int, int]]:
    """The reference evaluation's structure: batched generation, then per sample set_image + predict per object."""
    from segzero.geometry import to_original
    from segzero.metrics import intersection_union, target_area
    from segzero.parsing import parse_answer

    counts = []
    for start in range(0, len(ds.samples), batch_size):
        batch = ds.samples[start : start + batch_size]
        images = [ds.image(s) for s in batch]
        texts = reasoner.generate(images, [s.query for s in batch], batch_size=batch_size)
        for s, image, text in zip(batch, images, texts, strict=True):
            gt = ds.mask(s)
            answer = parse_answer(text)
            if not answer.ok:
                counts.append((0, target_area(gt, ignore_value=255)))
                continue
            segmenter.set_image(image)
            mask = np.zeros(gt.shape, bool)
            for obj in answer.objects:
                o = to_original(obj, size=image.size, frame=reasoner.frame)
                pred = segmenter.predict(
                    boxes=np.asarray([o.box], np.float32),
                    points=np.asarray([o.points], np.float32),
                    labels=np.ones((1, len(o.points)), np.int64),
                )
                mask |= np.asarray(pred.mask, bool)
            counts.append(intersection_union(mask, gt, ignore_value=255))
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=48, help="distinct images")
    ap.add_argument("--queries", type=int, default=3, help="queries per image cycle through 1..this")
    ap.add_argument("--size", type=int, nargs=2, default=(320, 240), metavar=("W", "H"), help="image size")
    ap.add_argument("--batch-size", type=int, default=8, help="reasoning batch size (both loops)")
    ap.add_argument("--max-new-tokens", type=int, default=32, help="fixed generation length")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved timed passes per loop")
    ap.add_argument("--write", action="store_true", help="write benchmarks/eval_throughput.md")
    args = ap.parse_args()

    import torch

    from segzero.eval.datasets import load_eval_dataset
    from segzero.eval.runner import EvalConfig, run_eval
    from segzero.models.reasoner import Reasoner
    from segzero.models.segmenter import Segmenter
    from segzero.models.tiny import build_tiny_models
    from segzero.pipeline import SegZeroPipeline

    tmp = Path(tempfile.mkdtemp(prefix="eval_bench_"))
    models = build_tiny_models(tmp / "models")
    make_dataset(tmp / "ds", images=args.images, queries=args.queries, size=tuple(args.size))
    ds = load_eval_dataset(tmp / "ds")
    inner = Reasoner.from_pretrained(models["reasoner"], frame=56, max_new_tokens=args.max_new_tokens)
    inner.model.generation_config.min_new_tokens = args.max_new_tokens
    reasoner = FixedAnswerReasoner(inner)
    segmenter = Segmenter.from_pretrained(models["segmenter"])
    pipe = SegZeroPipeline(reasoner=reasoner, segmenter=segmenter, batch_size=args.batch_size)

    def run_runner(k: int) -> dict:
        cfg = EvalConfig(
            data=str(tmp / "ds"),
            out=str(tmp / f"run{k}"),
            batch_size=args.batch_size,
            frame=56,
            reasoner=str(models["reasoner"]),
            segmenter=str(models["segmenter"]),
            progress=False,
            report=False,
        )
        return run_eval(cfg, dataset=ds, pipeline=pipe)

    timings: dict[str, list[float]] = {"runner": [], "reference": []}
    embeds: dict[str, int] = {}
    run_runner(-1)  # warm-up
    reference_loop(ds, reasoner, segmenter, batch_size=args.batch_size)
    for k in range(args.repeats):
        before = segmenter.num_embeddings
        t = time.perf_counter()
        summary = run_runner(k)
        timings["runner"].append(time.perf_counter() - t)
        embeds["runner"] = segmenter.num_embeddings - before
        before = segmenter.num_embeddings
        t = time.perf_counter()
        counts = reference_loop(ds, reasoner, segmenter, batch_size=args.batch_size)
        timings["reference"].append(time.perf_counter() - t)
        embeds["reference"] = segmenter.num_embeddings - before
    distinct = list({s.image_key: s for s in ds.samples}.values())
    t = time.perf_counter()
    segmenter.embed([ds.image(s) for s in distinct])
    embed_seconds = time.perf_counter() - t  # the floor of both loops on the CPU: one embedding per distinct image
    ref_giou = float(np.mean([i / u if u else 1.0 for i, u in counts]))
    n = len(ds.samples)
    best = {k: min(v) for k, v in timings.items()}
    ratios = sorted(r / a for a, r in zip(timings["runner"], timings["reference"], strict=True))
    median_ratio = ratios[len(ratios) // 2]
    lines = [
        "| loop | samples | SAM2 embeddings | best seconds | samples/s | gIoU |",
        "|---|---|---|---|---|---|",
        f"| (a) segzero eval runner | {n} | {embeds['runner']} | {best['runner']:.2f} | {n / best['runner']:.2f} "
        f"| {summary['gIoU']:.4f} |",
        f"| (b) reference-style loop | {n} | {embeds['reference']} | {best['reference']:.2f} "
        f"| {n / best['reference']:.2f} | {ref_giou:.4f} |",
    ]
    table = "\n".join(lines)
    speedup = median_ratio
    cmd = "OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "") + " python " + shlex.join(sys.argv)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} logical CPUs ({platform.processor() or 'cpu'}), "
        f"Python {platform.python_version()}, torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    text = (
        "# Evaluation throughput (benchmarks/eval_throughput.py)\n\n"
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}\n- machine: {machine}\n"
        f"- command: `{cmd}`\n"
        f"- data: {args.images} images with 1-{args.queries} queries each ({n} samples), {args.size[0]}x"
        f"{args.size[1]} px; tiny random models (reasoner frame 56, {args.max_new_tokens} generated tokens fixed, "
        f"SAM2 input 1024); batch size {args.batch_size}; {args.repeats} interleaved passes per loop after one "
        f"warm-up each (runner, reference, runner, ...); the table shows each loop's best pass\n\n{table}\n\n"
        f"Runner speed-up: {speedup:.2f}x (median of the {args.repeats} interleaved pairs' time ratios: "
        f"{', '.join(f'{r:.2f}' for r in ratios)}). Both loops score the same answers (equal gIoU). The reference "
        "loop is the structure of Seg-Zero's evaluation script (evaluation_scripts/evaluation.py): generate a "
        "batch, then per sample `set_image` and one `predict`. The runner's gains: one SAM2 embedding per image "
        "(not per query), one mask-decoder call for all queries of an image, a chunk of whole images as one "
        "generate call (no small tail batch), a chunk's SAM2 embeddings computed in their own thread as soon as its "
        "images are loaded (while the chunk generates), and its masks decoded and scored in a third thread while "
        f"the next chunk generates. Where the time goes: embedding the {len(distinct)} distinct images alone takes "
        f"{embed_seconds:.2f} s, {embed_seconds / best['runner']:.0%} of the runner's best pass: what is left to gain "
        "on this machine is in the SAM2 image encoder itself.\n"
    )
    print(text)
    if args.write:
        (Path(__file__).parent / "eval_throughput.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
