"""Load check of ``segzero serve``: N concurrent clients on loopback for a bounded time, batching on vs off.

Run (CPU, tiny taught models built on the fly; prints a markdown table and, with --write, writes
benchmarks/serve_load.md)::

    OMP_NUM_THREADS=1 python benchmarks/serve_load.py --write
    python benchmarks/serve_load.py --clients 16 --duration 30 --reasoner DIR --segmenter DIR --frame 840

For each mode a fresh ``segzero serve`` child process listens on 127.0.0.1 (a free port): ``batching on``
(``--max-batch-size B --max-wait-ms W``) and ``batching off`` (``--max-batch-size 1``). ``--clients`` client
coroutines each send multipart ``POST /v1/segment`` requests back to back (one connection each, images cycled from
``--images`` distinct noise images of ``--size`` pixels) for ``--duration`` seconds after ``--warmup`` requests per
client; at most ``--max-requests`` requests per mode. Reported: requests, errors (non-200 answers or transport
errors; must be 0), requests/s, p50/p99 latency, and the server's mean batch size (from ``/healthz``). All traffic
stays on loopback. The default models are the tiny reasoner taught to always answer one valid Seg-Zero answer
(so SAM2 runs on every request) and the tiny SAM2, as in the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _images(n: int, size: tuple[int, int]) -> list[bytes]:
    from PIL import Image

    out = []
    for i in range(n):
        arr = np.random.default_rng(i).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


async def _client(client, images: list[bytes], idx: int, stop_at: float, budget: list[int], warmup: int, out: dict):
    """One client: ``warmup`` untimed requests, then timed requests until ``stop_at`` or the shared budget ends."""
    import httpx

    n = 0
    while True:
        timed = n >= warmup
        if timed and (time.perf_counter() >= stop_at or budget[0] <= 0):
            return
        if timed:
            budget[0] -= 1
        data = images[(idx + n) % len(images)]
        start = time.perf_counter()
        try:
            r = await client.post(
                "/v1/segment",
                files={"image": ("img.png", data, "image/png")},
                data={"query": f"the object for client {idx}", "id": f"{idx}-{n}"},
            )
            ok = r.status_code == 200 and r.json().get("id") == f"{idx}-{n}"
        except httpx.HTTPError:
            ok = False
        latency = time.perf_counter() - start
        if timed:
            out["latencies"].append(latency)
            out["errors"] += 0 if ok else 1
        n += 1


async def _load(url: str, images: list[bytes], args) -> dict:
    import httpx

    out: dict = {"latencies": [], "errors": 0}
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=url, timeout=args.timeout, limits=limits) as client:
        # warm-up requests are sent first by every client; the timed window starts when the slowest finishes
        warm = [
            _client(client, images, i, 0.0, [0], args.warmup, {"latencies": [], "errors": 0})
            for i in range(args.clients)
        ]
        await asyncio.gather(*warm)
        before = (await client.get("/healthz")).json()["stats"]
        start = time.perf_counter()
        budget = [args.max_requests]
        tasks = [_client(client, images, i, start + args.duration, budget, 0, out) for i in range(args.clients)]
        await asyncio.gather(*tasks)
        out["seconds"] = time.perf_counter() - start
        after = (await client.get("/healthz")).json()["stats"]
    reqs, batches = after["requests"] - before["requests"], after["batches"] - before["batches"]
    out["mean_batch"] = reqs / batches if batches else 0.0
    return out


def run_mode(name: str, server_args: list[str], images: list[bytes], args) -> dict:
    from segzero.serve.process import serve_subprocess

    with serve_subprocess(server_args + ["--log-level", "warning"], startup_timeout=300) as url:
        res = asyncio.run(_load(url, images, args))
    lat = np.asarray(res["latencies"]) * 1000
    return {
        "mode": name,
        "requests": len(lat),
        "errors": res["errors"],
        "seconds": res["seconds"],
        "rps": len(lat) / res["seconds"] if res["seconds"] else 0.0,
        "p50": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
        "p99": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
        "mean_batch": res["mean_batch"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=8, help="concurrent clients")
    p.add_argument("--duration", type=float, default=20.0, help="timed seconds per mode")
    p.add_argument("--max-requests", type=int, default=2000, help="cap on timed requests per mode")
    p.add_argument("--warmup", type=int, default=1, help="untimed requests per client before timing")
    p.add_argument("--timeout", type=float, default=120.0, help="per-request client timeout in seconds")
    p.add_argument("--images", type=int, default=16, help="distinct images cycled through")
    p.add_argument("--size", type=int, nargs=2, default=(320, 240), metavar=("W", "H"), help="image size")
    p.add_argument("--max-batch-size", type=int, default=8, help="server batch size when batching is on")
    p.add_argument("--max-wait-ms", type=float, default=10.0, help="server max wait when batching is on")
    p.add_argument("--reasoner", default=None, help="reasoner folder (default: tiny taught model built now)")
    p.add_argument("--segmenter", default=None, help="segmenter folder (default: tiny SAM2 built now)")
    p.add_argument("--frame", type=int, default=56, help="reasoner frame side")
    p.add_argument("--max-new-tokens", type=int, default=80, help="generation limit")
    p.add_argument("--write", action="store_true", help="write benchmarks/serve_load.md")
    args = p.parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or args.max_requests < 1:
        p.error("--clients, --duration and --max-requests must be positive")

    with tempfile.TemporaryDirectory(prefix="serve_load_") as tmp:
        if args.reasoner is None or args.segmenter is None:
            from segzero.models.tiny import build_tiny_models

            models = build_tiny_models(Path(tmp) / "models", answering=True)
            args.reasoner, args.segmenter = str(models["reasoner"]), str(models["segmenter"])
            model_note = "tiny taught reasoner (always one valid Seg-Zero answer) + tiny SAM2 (input 1024)"
        else:
            model_note = f"reasoner {args.reasoner}, segmenter {args.segmenter}"
        common = ["--reasoner", args.reasoner, "--segmenter", args.segmenter]
        common += ["--frame", str(args.frame), "--max-new-tokens", str(args.max_new_tokens)]
        images = _images(args.images, tuple(args.size))
        on = ["--max-batch-size", str(args.max_batch_size), "--max-wait-ms", str(args.max_wait_ms)]
        rows = [
            run_mode(
                f"batching on (max batch {args.max_batch_size}, wait {args.max_wait_ms:g} ms)",
                common + on,
                images,
                args,
            ),
            run_mode("batching off (max batch 1)", common + ["--max-batch-size", "1"], images, args),
        ]

    import torch

    cmd = (
        "OMP_NUM_THREADS="
        + os.environ.get("OMP_NUM_THREADS", "(unset)")
        + " python "
        + shlex.join(["benchmarks/serve_load.py", *(argv if argv is not None else sys.argv[1:])])
    )
    lines = [
        "# Serving load check (benchmarks/serve_load.py)",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__}, server threads OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} "
        "(shared machine, client and server on the same CPUs)",
        f"- command: `{cmd}`",
        f"- load: {args.clients} concurrent clients on 127.0.0.1, {args.duration:g} s per mode (cap {args.max_requests} "
        f"requests), {args.warmup} warm-up request(s) per client; {args.images} distinct {args.size[0]}x{args.size[1]} "
        f"PNG images; multipart POST /v1/segment",
        f"- models: {model_note}; frame {args.frame}, max {args.max_new_tokens} new tokens",
        "",
        "| mode | requests | errors | requests/s | p50 ms | p99 ms | mean batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['requests']} | {r['errors']} | {r['rps']:.2f} | {r['p50']:.0f} | {r['p99']:.0f} | "
            f"{r['mean_batch']:.2f} |"
        )
    speedup = rows[0]["rps"] / rows[1]["rps"] if rows[1]["rps"] else float("nan")
    lines += ["", f"Batching speed-up in requests/s: {speedup:.2f}x."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        Path(__file__).with_name("serve_load.md").write_text(text)
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
