"""Benchmark of the training-data builder: two-point computation and end-to-end samples/s.

Run (CPU; writes the markdown table to stdout and, with --write, to benchmarks/data_points.md)::

    OMP_NUM_THREADS=1 python benchmarks/data_points.py --write

Part 1 times ``segzero.points.mask_to_object`` (vectorised: numpy/scipy over the box crop) against a
straightforward per-pixel implementation of the same rule, written the way the reference notebook does it
(Python loops over every image pixel to find the distance-transform maximum, the distances to point 1, their
median and the far-half maximum; the distance transform itself is the same scipy call in both, so the table
measures the per-pixel work the notebook loops over). The vectorised time is the best of 3 passes. Both run on the same masks (ellipses, rectangles and L-shapes at COCO-like
sizes, original pixels) and must return identical boxes and points; the table says how many agreed.

Part 2 runs ``segzero.data.build.build`` on a synthetic refer-layout dataset (``segzero.data.synthetic``: random
noise JPEGs, which encode slower than photos) and reports rows/s and images/s for each worker count, after a
small warm-up build. Times include planning, worker start-up, JPEG re-encoding and writing the dataset folder
and the parquet copy.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import distance_transform_edt

from segzero.points import mask_to_object


def naive_two_points(mask: np.ndarray):
    """Per-pixel loops over the whole (H, W) mask, as in the notebook; same rule and tie-breaking as the core.

    Returns ``(box, p1, p2)`` in the mask's pixels, or None for an empty mask.
    """
    h, w = mask.shape
    dist = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]  # border counts as background (same rule)
    x0, y0, x1, y1 = w, h, -1, -1
    best, p1 = -1.0, None
    pixels = []
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                pixels.append((x, y))
                x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
                if dist[y, x] > best:
                    best, p1 = dist[y, x], (x, y)
    if p1 is None:
        return None
    d2 = []
    for x, y in pixels:
        d2.append((x - p1[0]) ** 2 + (y - p1[1]) ** 2)
    median = float(np.median(d2))
    far = [i for i, d in enumerate(d2) if d > median]
    if not far:
        far = [i for i, d in enumerate(d2) if d == max(d2)]
    best2, p2 = -1.0, None
    for i in far:
        x, y = pixels[i]
        if dist[y, x] > best2:
            best2, p2 = dist[y, x], (x, y)
    return (x0, y0, x1, y1), p1, p2


def make_masks(n: int, size: tuple[int, int], seed: int) -> list[np.ndarray]:
    """``n`` masks of ``size`` = (W, H): ellipses, rectangles and L-shapes with random size and position."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    masks = []
    for i in range(n):
        bw, bh = int(rng.integers(w // 10, w // 2)), int(rng.integers(h // 10, h // 2))
        x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
        m = np.zeros((h, w), dtype=bool)
        if i % 3 == 0:
            m = ((xx - x0 - bw / 2) / (bw / 2)) ** 2 + ((yy - y0 - bh / 2) / (bh / 2)) ** 2 <= 1
        elif i % 3 == 1:
            m[y0 : y0 + bh, x0 : x0 + bw] = True
        else:
            m[y0 : y0 + bh, x0 : x0 + bw // 3] = True
            m[y0 + 2 * bh // 3 : y0 + bh, x0 : x0 + bw] = True
        masks.append(m)
    return masks


def bench_points(n: int, n_naive: int, size: tuple[int, int], seed: int) -> dict:
    masks = make_masks(n, size, seed)
    t_fast = float("inf")
    for _ in range(3):  # best of 3: the machine is shared
        t = time.perf_counter()
        fast = [mask_to_object(m) for m in masks]
        t_fast = min(t_fast, time.perf_counter() - t)
    t = time.perf_counter()
    slow = [naive_two_points(m) for m in masks[:n_naive]]
    t_slow = time.perf_counter() - t
    agree = sum((tuple(f.box), tuple(f.points[0]), tuple(f.points[1])) == s for f, s in zip(fast, slow, strict=False))
    return {
        "fast_mps": n / t_fast,
        "naive_mps": n_naive / t_slow,
        "agree": agree,
        "n_naive": n_naive,
        "n": n,
        "mean_pixels": float(np.mean([m.sum() for m in masks])),
    }


def bench_build(n_images: int, workers: list[int], seed: int, repeats: int) -> list[dict]:
    from segzero.data.build import BuildConfig, build
    from segzero.data.synthetic import write_refer_fixture

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        info = write_refer_fixture(tmp, n_images=n_images, seed=seed, broken=False, min_size=400, max_size=640)
        warm = BuildConfig(
            source="refcocog",
            refer_dir=str(info["refer_dir"]),
            images_dir=str(info["images_dir"]),
            out=f"{tmp}/warm",
            limit=4,
            progress=False,
        )
        build(warm)  # imports and first-call costs outside the timing
        for k in workers:
            cfg = BuildConfig(
                source="refcocog",
                refer_dir=str(info["refer_dir"]),
                images_dir=str(info["images_dir"]),
                out=f"{tmp}/out{k}",
                workers=k,
                shard_size=max(1, n_images // (4 * k)),
                progress=False,
            )
            elapsed = float("inf")
            for r in range(repeats):  # best of ``repeats``: the machine is shared
                t = time.perf_counter()
                stats = build(dataclasses.replace(cfg, out=f"{cfg.out}_{r}"))
                elapsed = min(elapsed, time.perf_counter() - t)
            rows.append(
                {"workers": k, "rows": stats["rows_written"], "images": stats["images_planned"], "seconds": elapsed}
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masks", type=int, default=200, help="masks for the vectorised implementation")
    parser.add_argument("--naive-masks", type=int, default=12, help="masks (a prefix of the same) for the loops")
    parser.add_argument("--size", default="640x480", help="mask size WxH (COCO-like)")
    parser.add_argument("--images", type=int, default=40, help="synthetic images for the end-to-end build")
    parser.add_argument("--workers", default="1,2", help="worker counts for the end-to-end build")
    parser.add_argument("--repeats", type=int, default=3, help="end-to-end builds per worker count (best kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="write benchmarks/data_points.md")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    pts = bench_points(args.masks, args.naive_masks, size, args.seed)
    builds = bench_build(args.images, [int(v) for v in args.workers.split(",")], args.seed, args.repeats)
    command = "OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "unset") + " python benchmarks/data_points.py "
    command += " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    lines = [
        "# Data builder benchmark",
        "",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs ({platform.processor() or 'cpu'}), "
        f"Python {platform.python_version()}, numpy {np.__version__}; shared with other jobs while measured "
        f"(1-min load average {os.getloadavg()[0]:.1f} at the end), so worker scaling is not representative",
        f"- command: `{command.strip()}`",
        "",
        f"## Two points from a mask ({size[0]}x{size[1]} masks, mean {pts['mean_pixels']:.0f} object pixels)",
        "",
        "| implementation | masks | masks/s | speed-up |",
        "|---|---:|---:|---:|",
        f"| per-pixel loops (notebook style) | {pts['n_naive']} | {pts['naive_mps']:.2f} | 1.0x |",
        f"| `segzero.points.mask_to_object` (vectorised) | {pts['n']} | {pts['fast_mps']:.1f} | "
        f"{pts['fast_mps'] / pts['naive_mps']:.0f}x |",
        "",
        f"Identical box and points on {pts['agree']} of {pts['n_naive']} masks run by both.",
        "",
        f"## End-to-end `segzero data build` ({args.images} synthetic images 400-640 px, 4 annotations each, "
        "840 frame, JPEG)",
        "",
        f"| workers | images | rows | seconds (best of {args.repeats}) | images/s | rows/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for b in builds:
        lines.append(
            f"| {b['workers']} | {b['images']} | {b['rows']} | {b['seconds']:.2f} | "
            f"{b['images'] / b['seconds']:.1f} | {b['rows'] / b['seconds']:.1f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        (Path(__file__).parent / "data_points.md").write_text(text)
    return 0 if pts["agree"] == pts["n_naive"] else 1


if __name__ == "__main__":
    sys.exit(main())
