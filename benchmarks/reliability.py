"""Reliability run: reward fuzzing, kill/resume rounds of eval and training, and abuse of the server.

Run (CPU, offline, tiny models built on the fly; prints a markdown report and, with --write, writes
benchmarks/reliability.md)::

    OMP_NUM_THREADS=1 python benchmarks/reliability.py --write
    python benchmarks/reliability.py --fuzz 20000 --kills 3 --abuse-rounds 2     # a quick look

Four parts, each with its counts (every "bad" count must be 0):

- **fuzz**: ``--fuzz`` random completions per reward kind, built from fragments a sampled completion can contain
  (huge integers, 1e308, NaN/Infinity, numeric strings, deep nesting, unicode, lone surrogates, many objects),
  through ``segzero.rewards.score`` and ``parse_answer``; and random ground truths through ``parse_solution``.
  Bad: an exception, a non-finite or out-of-range term, anything written to stdout/stderr or warned; for gt, any
  exception other than ``ValueError``.
- **eval kill/resume**: ``segzero eval`` on a shapes-world eval set with the tiny reasoner, killed (SIGKILL) at
  random moments and resumed until it finishes, ``--kills`` times; then once more with the reasoner's weights
  changed in place (config.json untouched) and once with a different ``--max-new-tokens``. Bad: a final summary
  that differs from an uninterrupted run's (mixed), a sample missing or written twice (lost), a traceback, a
  resume with changed weights or settings that is accepted.
- **train kill/resume**: ``segzero train --config recipes/tiny_cpu.yaml`` killed during its run, a partial
  ``checkpoint-N`` left behind (a save cut short), then ``--resume``; and a resume with a changed learning rate.
  Bad: a traceback, a run that does not finish, a changed-settings resume that is accepted.
- **server abuse**: a ``segzero serve`` child on 127.0.0.1 receives ``--abuse-rounds`` rounds of malformed
  requests (deep JSON nesting, 5000-digit integers, unknown flag values, wrong content types, broken multipart,
  non-images, empty and over-long queries, non-UTF-8 bytes). Bad: a 5xx answer, a dropped
  connection, ``/healthz`` not answering 200 afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RANGES = {
    "segzero": {"think_format": 1, "answer_format": 1, "box_iou": 1, "box_l1": 1, "points": 1, "total": 5},
    "visionreasoner": {"think_format": 1, "answer_format": 2, "accuracy": 3, "non_repeat": 1, "total": 7},
}
GT = {
    "segzero": "<box>(100,100),(199,199)</box><points>(120,120),(180,180)</points>",
    "visionreasoner": json.dumps([{"bbox_2d": [100, 100, 199, 199], "point_2d": [120, 120]}]),
}
NUMBERS = ["0", "12", "-5", "199.5", "1e308", "-1e308", "1e309", "NaN", "Infinity", "-0", '"42"', "1e-320"]


# --- fuzz -------------------------------------------------------------------------------------------------------
def _number(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.15:
        return ("-" if rng.random() < 0.3 else "") + "9" * rng.choice([20, 309, 400, 4000])  # beyond a float
    if r < 0.5:
        return rng.choice(NUMBERS)
    return str(rng.randint(-50, 900))


def _coords(rng: random.Random, n: int) -> str:
    return "[" + ",".join(_number(rng) for _ in range(rng.choice([n, n, n, 0, 1, n + 1]))) + "]"


def _junk(rng: random.Random) -> str:
    return "".join(
        chr(rng.choice([rng.randint(32, 126), rng.randint(0, 0x10FFFF)])) for _ in range(rng.randint(0, 30))
    )


def _answer(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.35:
        return f'{{"bbox": {_coords(rng, 4)}, "points_1": {_coords(rng, 2)}, "points_2": {_coords(rng, 2)}}}'
    if r < 0.75:
        items = [
            f'{{"bbox_2d": {_coords(rng, 4)}, "point_2d": {_coords(rng, 2)}}}'
            for _ in range(rng.choice([0, 1, 2, 20, 130]))
        ]
        return "[" + ",".join(items) + "]"
    if r < 0.85:
        d = rng.choice([10, 1000, 100_000])
        return "[" * d + "]" * d
    if r < 0.9:
        return rng.choice(["[1or 2]", "{'bbox': [1, 2, 3, 4],}", "[1, 2}", "{"])
    return _junk(rng)


def _completion(rng: random.Random) -> str:
    think, ans = _junk(rng), _answer(rng)
    if rng.random() < 0.8:
        return f"<think>{think}</think><answer>{ans}</answer>" + rng.choice(["", "...", "<answer>[]</answer>"])
    return think + ans


def _gt(rng: random.Random) -> str:
    if rng.random() < 0.5:
        n = [_number(rng) for _ in range(8)]
        return f"<box>({n[0]},{n[1]}),({n[2]},{n[3]})</box><points>({n[4]},{n[5]}),({n[6]},{n[7]})</points>"
    return "[" + ",".join(f'{{"bbox_2d": {_coords(rng, 4)}, "point_2d": {_coords(rng, 2)}}}' for _ in range(2)) + "]"


def fuzz(n: int, seed: int = 0) -> dict:
    """Counts of the reward/parsing fuzz: inputs, exceptions, out-of-range, noisy (printed or warned)."""
    from segzero.parsing import parse_answer, parse_solution
    from segzero.rewards import score

    rng = random.Random(seed)
    out = {"completions": 0, "exceptions": 0, "out_of_range": 0, "noisy": 0, "gt": 0, "gt_valueerror": 0}
    out["gt_other_exceptions"] = 0
    start = time.perf_counter()
    for _ in range(n):
        text = _completion(rng)
        buf = io.StringIO()
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(buf):
            warnings.simplefilter("always")
            with contextlib.redirect_stderr(buf):
                for kind in RANGES:
                    out["completions"] += 1
                    try:
                        got = score(kind, text, GT[kind])
                    except Exception:  # noqa: BLE001 - counting every failure is the point of the fuzz
                        out["exceptions"] += 1
                        continue
                    if any(not (math.isfinite(got[t]) and 0 <= got[t] <= hi) for t, hi in RANGES[kind].items()):
                        out["out_of_range"] += 1
                try:
                    parse_answer(text)
                    parse_answer(text, strict=True)
                except Exception:  # noqa: BLE001
                    out["exceptions"] += 1
        out["noisy"] += bool(buf.getvalue() or caught)
        gt = _gt(rng)
        out["gt"] += 1
        try:
            parse_solution(gt)
        except ValueError:
            out["gt_valueerror"] += 1
        except Exception:  # noqa: BLE001
            out["gt_other_exceptions"] += 1
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


# --- subprocess helpers -----------------------------------------------------------------------------------------
def _segzero(args: list[str], env: dict, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "segzero.cli.main", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _finish(proc: subprocess.Popen, timeout: float = 900) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def _kill_after(proc: subprocess.Popen, seconds: float) -> bool:
    """SIGKILL ``proc`` after ``seconds`` unless it has ended; True when it was killed."""
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        return True


# --- eval kill/resume -------------------------------------------------------------------------------------------
def _records(out: Path) -> list[str]:
    path = out / "samples.jsonl"
    ids = []
    for line in path.read_text().splitlines() if path.exists() else []:
        with contextlib.suppress(ValueError):
            ids.append(json.loads(line)["id"])
    return ids


def _summary(out: Path) -> dict:
    s = json.loads((out / "summary.json").read_text())
    return {k: s[k] for k in ("gIoU", "cIoU", "n")}


def eval_rounds(work: Path, kills: int, env: dict, seed: int = 0) -> dict:
    """Kill/resume rounds of ``segzero eval``; counts of rounds, kills, mixed, lost, tracebacks, accepted changes."""
    from segzero.models.tiny import build_tiny_models

    rng = random.Random(seed)
    models = build_tiny_models(work / "tiny")
    data = work / "data"
    subprocess.run(
        [sys.executable, "-m", "segzero.cli.main", "world", "build", "--out", str(data), "--layout", "eval"]
        + ["--split", "val", "--n", "40", "--size", "112"],
        env=env,
        check=True,
        capture_output=True,
    )
    base = ["eval", "--data", str(data), "--split", "val", "--reasoner", str(models["reasoner"])]
    base += ["--segmenter", "color", "--frame", "112", "--max-new-tokens", "24", "--no-progress", "--batch-size", "4"]
    ref_out = work / "eval_ref"
    start = time.perf_counter()
    rc, err = _finish(_segzero([*base, "--out", str(ref_out)], env))
    full = time.perf_counter() - start
    if rc != 0:
        raise RuntimeError(f"uninterrupted eval failed: {err[-2000:]}")
    ref = _summary(ref_out)
    out = {"rounds": kills, "kills": 0, "mixed": 0, "lost": 0, "tracebacks": 0, "changed_accepted": 0}
    for r in range(kills):
        target = work / f"eval_{r}"
        while True:
            proc = _segzero([*base, "--out", str(target)], env)
            if _kill_after(proc, rng.uniform(0.2, 1.0) * full):
                out["kills"] += 1
                continue
            rc, err = proc.returncode, proc.stderr.read() if proc.stderr else ""
            out["tracebacks"] += "Traceback" in err
            break
        ids = _records(target)
        out["lost"] += len(set(ids)) != ref["n"] or len(ids) != len(set(ids))
        out["mixed"] += rc != 0 or _summary(target) != ref
    # a resume that would mix: weights changed in place (same config.json), then different generation settings
    changed = work / "reasoner_changed"
    shutil.copytree(models["reasoner"], changed)
    partial = work / "eval_changed"
    proc = _segzero([*base[:5], str(changed), *base[6:], "--out", str(partial)], env)
    _kill_after(proc, 0.5 * full)
    from segzero.models.tiny.reasoner import perturb_weights

    perturb_weights(changed)
    for extra in ([], ["--max-new-tokens", "25"]):
        args = [*base[:5], str(changed), *base[6:], *extra, "--out", str(partial)]
        rc, err = _finish(_segzero(args, env))
        out["changed_accepted"] += rc != 2
        out["tracebacks"] += "Traceback" in err
    return out


# --- train kill/resume ------------------------------------------------------------------------------------------
def train_rounds(work: Path, kills: int, env: dict, seed: int = 0) -> dict:
    """Kill/resume rounds of ``segzero train`` (tiny_cpu recipe) with a partial checkpoint left behind."""
    rng = random.Random(seed)
    recipe = [
        "train",
        "--config",
        str(ROOT / "recipes" / "tiny_cpu.yaml"),
        "--set",
        "max_steps=6",
        "--set",
        "save_steps=1",
    ]
    out = {"rounds": kills, "kills": 0, "unfinished": 0, "tracebacks": 0, "changed_accepted": 0}
    first = work / "train_ref"
    start = time.perf_counter()
    rc, err = _finish(_segzero([*recipe, "--output-dir", str(first)], env))
    full = time.perf_counter() - start
    if rc != 0:
        raise RuntimeError(f"uninterrupted training failed: {err[-2000:]}")
    for r in range(kills):
        target = work / f"train_{r}"
        proc = _segzero([*recipe, "--output-dir", str(target)], env)
        deadline = time.time() + 2 * full  # kill after the first complete checkpoint, at a random later moment
        while time.time() < deadline and proc.poll() is None and not list(target.glob("checkpoint-*")):
            time.sleep(0.2)
        out["kills"] += _kill_after(proc, rng.uniform(0.0, 0.3) * full)
        steps = sorted(
            int(p.name.split("-")[1]) for p in target.glob("checkpoint-*") if p.name.split("-")[1].isdigit()
        )
        partial = target / f"checkpoint-{(steps[-1] if steps else 0) + 1}"
        partial.mkdir(parents=True, exist_ok=True)
        (partial / "config.json").write_text("{}")  # a save cut short: no weights, no trainer state
        rc, err = _finish(_segzero([*recipe, "--output-dir", str(target), "--resume"], env))
        out["tracebacks"] += "Traceback" in err
        out["unfinished"] += rc != 0 or not (target / "final").exists()
    rc, err = _finish(_segzero([*recipe, "--output-dir", str(first), "--resume", "--set", "learning_rate=0.5"], env))
    out["changed_accepted"] += rc != 2
    out["tracebacks"] += "Traceback" in err
    return out


# --- server abuse -----------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


# requests answered 200 by design: Starlette reads a multipart text field that is not UTF-8 as Latin-1, so
# b"the \xff red" arrives as the valid query "the ÿ red" (the JSON body, read by segzero, refuses such bytes)
ACCEPTED = {"multipart non-UTF-8 query": 200}


def abuse_requests() -> list[tuple[str, dict]]:
    """(name, httpx request kwargs) of malformed requests to ``POST /v1/segment``."""
    import base64

    png = _png()
    b64 = base64.b64encode(png).decode()
    j = {"headers": {"content-type": "application/json"}}
    return [
        ("deep JSON nesting", {**j, "content": b"[" * 100_000 + b"]" * 100_000}),
        ("deep JSON object nesting", {**j, "content": b'{"a":' * 50_000 + b"1" + b"}" * 50_000}),
        (
            "5000-digit integer field",
            {**j, "content": b'{"image": "%s", "query": "q", "id": %s}' % (b64.encode(), b"9" * 5000)},
        ),
        (
            "5000-digit mask_png",
            {**j, "content": b'{"image": "%s", "query": "q", "mask_png": %s}' % (b64.encode(), b"9" * 5000)},
        ),
        (
            "mask_png=maybe (form)",
            {"files": {"image": ("a.png", png, "image/png")}, "data": {"query": "q", "mask_png": "maybe"}},
        ),
        (
            "mask_png=maybe (url)",
            {"params": {"mask_png": "maybe"}, "files": {"image": ("a.png", png, "image/png")}, "data": {"query": "q"}},
        ),
        ("mask_png as a list", {**j, "content": json.dumps({"image": b64, "query": "q", "mask_png": [1]}).encode()}),
        ("JSON array body", {**j, "content": b"[1, 2, 3]"}),
        ("JSON null body", {**j, "content": b"null"}),
        ("truncated JSON", {**j, "content": b'{"image": "'}),
        ("invalid UTF-8 JSON", {**j, "content": b'{"image": "\xff\xfe", "query": "q"}'}),
        ("NaN in JSON", {**j, "content": b'{"image": NaN, "query": "q"}'}),
        ("not base64", {**j, "content": json.dumps({"image": "%%%", "query": "q"}).encode()}),
        (
            "base64 of text",
            {**j, "content": json.dumps({"image": base64.b64encode(b"hello").decode(), "query": "q"}).encode()},
        ),
        ("empty query", {**j, "content": json.dumps({"image": b64, "query": "  "}).encode()}),
        ("query of 100k characters", {**j, "content": json.dumps({"image": b64, "query": "a" * 100_000}).encode()}),
        ("query is a number", {**j, "content": json.dumps({"image": b64, "query": 5}).encode()}),
        ("lone surrogate query", {**j, "content": b'{"image": "%s", "query": "\\udcff"}' % b64.encode()}),
        ("text/plain body", {"headers": {"content-type": "text/plain"}, "content": b"hello"}),
        ("no content type", {"content": b"hello"}),
        (
            "broken multipart",
            {"headers": {"content-type": "multipart/form-data; boundary=x"}, "content": b"--x\r\nbroken"},
        ),
        ("multipart without boundary", {"headers": {"content-type": "multipart/form-data"}, "content": b"abc"}),
        (
            "multipart text file as image",
            {"files": {"image": ("a.txt", b"not an image", "text/plain")}, "data": {"query": "q"}},
        ),
        ("multipart empty image", {"files": {"image": ("a.png", b"", "image/png")}, "data": {"query": "q"}}),
        ("multipart no image", {"data": {"query": "q"}}),
        (
            "multipart two images",
            {
                "files": [("image", ("a.png", png, "image/png")), ("image", ("b.png", png, "image/png"))],
                "data": {"query": "q"},
            },
        ),
        (
            "multipart non-UTF-8 query",
            {"files": {"image": ("a.png", png, "image/png"), "query": (None, b"the \xff red")}},
        ),
    ]


def abuse(work: Path, rounds: int, env: dict) -> dict:
    """Counts of the server abuse: requests, 4xx, 5xx, transport errors, healthz after."""
    import httpx

    from segzero.models.tiny import build_tiny_models

    models = build_tiny_models(work / "tiny_serve")
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "segzero.cli.main",
        "serve",
        "--port",
        str(port),
        "--reasoner",
        str(models["reasoner"]),
    ]
    cmd += ["--segmenter", str(models["segmenter"]), "--frame", "56", "--max-new-tokens", "16"]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    out = {"requests": 0, "4xx": 0, "accepted as documented": 0, "5xx": 0, "other": 0, "transport_errors": 0}
    out |= {"healthz_after": 0, "cases": {}}
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(rounds):
                for name, kw in abuse_requests():
                    out["requests"] += 1
                    try:
                        status = client.post("/v1/segment", **kw).status_code
                    except httpx.HTTPError:
                        out["transport_errors"] += 1
                        out["cases"][name] = "transport error"
                        continue
                    key = "4xx" if 400 <= status < 500 else "5xx" if status >= 500 else "other"
                    if status == ACCEPTED.get(name):
                        key = "accepted as documented"
                    out[key] += 1
                    out["cases"][name] = status
            out["healthz_after"] = client.get("/healthz").status_code
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=20)
    return out


# --- report -----------------------------------------------------------------------------------------------------
def _table(title: str, counts: dict, bad: tuple[str, ...]) -> list[str]:
    rows = [f"### {title}", "", "| count | value |", "|---|---|"]
    rows += [f"| {k}{' (must be 0)' if k in bad else ''} | {v} |" for k, v in counts.items() if k != "cases"]
    return [*rows, ""]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fuzz", type=int, default=20_000, help="random completions per reward kind")
    p.add_argument("--kills", type=int, default=10, help="kill/resume rounds of eval and of training")
    p.add_argument("--abuse-rounds", type=int, default=5, help="rounds of the malformed-request list")
    p.add_argument("--parts", nargs="+", default=["fuzz", "eval", "train", "serve"], help="parts to run")
    p.add_argument("--write", action="store_true", help="write benchmarks/reliability.md")
    args = p.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "HF_HUB_OFFLINE": "1"}
    lines = [
        "# Reliability run (benchmarks/reliability.py)",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}",
        "- command: `OMP_NUM_THREADS=1 python benchmarks/reliability.py"
        + ("" if argv is None and len(sys.argv) == 1 else " " + " ".join(sys.argv[1:] if argv is None else argv))
        + "`",
        "",
    ]
    ok = True
    with tempfile.TemporaryDirectory(prefix="segzero_reliability_") as tmp:
        work = Path(tmp)
        if "fuzz" in args.parts:
            f = fuzz(args.fuzz)
            bad = ("exceptions", "out_of_range", "noisy", "gt_other_exceptions")
            ok &= all(f[k] == 0 for k in bad)
            lines += _table(f"Reward and parsing fuzz ({args.fuzz} completions x 2 kinds, {f['seconds']} s)", f, bad)
        if "eval" in args.parts:
            e = eval_rounds(work, args.kills, env)
            bad = ("mixed", "lost", "tracebacks", "changed_accepted")
            ok &= all(e[k] == 0 for k in bad)
            lines += _table("Eval kill/resume (40 samples, tiny reasoner, colour segmenter)", e, bad)
        if "train" in args.parts:
            t = train_rounds(work, args.kills, env)
            bad = ("unfinished", "tracebacks", "changed_accepted")
            ok &= all(t[k] == 0 for k in bad)
            lines += _table("Train kill/resume (recipes/tiny_cpu.yaml, 6 steps, a checkpoint each step)", t, bad)
        if "serve" in args.parts:
            s = abuse(work, args.abuse_rounds, env)
            bad = ("5xx", "other", "transport_errors")
            ok &= all(s[k] == 0 for k in bad) and s["healthz_after"] == 200
            lines += _table(f"Server abuse ({len(abuse_requests())} malformed requests x {args.abuse_rounds})", s, bad)
            lines += ["| request | status |", "|---|---|", *(f"| {k} | {v} |" for k, v in s["cases"].items()), ""]
    lines.append(f"All bad counts 0: **{'yes' if ok else 'NO'}**.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        (ROOT / "benchmarks" / "reliability.md").write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
