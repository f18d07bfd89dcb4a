"""Checkpoint sweeps: evaluate many checkpoints on several benchmarks, resumably, into one table and one plot.

A published figure is often the best checkpoint per benchmark; a sweep shows every checkpoint on every benchmark
side by side, under segzero's protocol and (``--protocol``) a reference script's, so a user can see which
checkpoint a number came from and how far apart the protocols are.

Layout under ``OUT``::

    OUT/runs/<checkpoint>/<benchmark>/   one ordinary eval run each (samples.jsonl, summary.json, run.json, ...)
    OUT/sweep.md, OUT/sweep.csv          one row per (checkpoint, benchmark); * marks each benchmark's best gIoU
    OUT/sweep.png                        gIoU per checkpoint, one line per benchmark (dashed: the reference
                                         protocol); written when matplotlib is installed

Every run is an ordinary ``segzero eval`` run: rerunning the sweep resumes each one where it stopped and skips the
finished ones (their models are not even loaded), and a run whose identity changed is refused as usual.

Usage::

    segzero eval sweep 'runs/sz7b/checkpoint-*' --data test=Ricky06662/ReasonSeg_test \\
        --data val=Ricky06662/ReasonSeg_val --protocol seg-zero --out runs/sweep
    segzero eval sweep shipped --data data/world@val --data data/world@test --out runs/s   # local splits

    from segzero.eval.sweep import expand_checkpoints, run_sweep
"""

from __future__ import annotations

import csv
import glob
import re
from pathlib import Path

from segzero.errors import UserError
from segzero.eval.summary import SUMMARY_FILE

TABLE_MD, TABLE_CSV, PLOT_PNG = "sweep.md", "sweep.csv", "sweep.png"
COLUMNS = (
    "checkpoint",
    "benchmark",
    "n",
    "gIoU",
    "cIoU",
    "protocol",
    "ref_gIoU",
    "ref_cIoU",
    "ref_skipped",
    "differs",
)
_STEP = re.compile(r"(\d+)(?!.*\d)")  # the last number in a checkpoint's name: its step


def _step_key(path: str):
    m = _STEP.search(Path(path).name)
    return (0, int(m.group(1)), path) if m else (1, 0, path)


def expand_checkpoints(patterns: list[str]) -> list[str]:
    """Paths or globs -> checkpoint paths, each glob's matches ordered by step (``checkpoint-200`` before
    ``checkpoint-1000``); a name without a match is kept as it is (a hub id, or ``shipped``). Duplicates dropped."""
    out: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern), key=_step_key) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise UserError(f"no checkpoint matches {pattern!r}")
        out.extend(m for m in matches if m not in out)
    return out


def parse_benchmarks(specs: list[str]) -> dict[str, tuple[str, str | None]]:
    """``NAME=DATA[@SPLIT]`` or ``DATA[@SPLIT]`` (named after its last path part and split) ->
    ``{name: (data, split)}``
    (split None: the sweep's ``--split``); names must be distinct.

    >>> parse_benchmarks(["test=Ricky06662/ReasonSeg_test", "data/world@val"])
    {'test': ('Ricky06662/ReasonSeg_test', None), 'world-val': ('data/world', 'val')}
    """
    out: dict[str, tuple[str, str | None]] = {}
    for spec in specs:
        name, sep, data = spec.partition("=")
        if not sep:
            name, data = "", spec
        data, at, split = data.rpartition("@") if "@" in data else (data, "", "")
        name = name or Path(data.rstrip("/")).name + (f"-{split}" if split else "")
        if not name or not data or (at and not split):
            raise UserError(f"--data {spec!r}: expected NAME=DATA, DATA, or either with @SPLIT")
        if name in out:
            raise UserError(f"two benchmarks are named {name!r}: give them names (NAME=DATA)")
        out[name] = (data, split or None)
    return out


def _names(checkpoints: list[str]) -> list[str]:
    """Short distinct folder names: the last path part, or more of the path where two share it."""
    for depth in range(1, 8):
        names = ["_".join(Path(c.rstrip("/")).parts[-depth:]).replace(":", "_") for c in checkpoints]
        if len(set(names)) == len(names):
            return names
    return [f"{i}_{Path(c).name}" for i, c in enumerate(checkpoints)]


def sweep_rows(out: Path, checkpoints: list[str], benchmarks) -> list[dict]:
    """The table rows of the summaries under ``out/runs`` (missing runs are left out)."""
    import json

    rows = []
    for ckpt, name in zip(checkpoints, _names(checkpoints), strict=True):
        for bench in benchmarks:
            path = out / "runs" / name / bench / SUMMARY_FILE
            if not path.is_file():
                continue
            s = json.loads(path.read_text(encoding="utf-8"))
            ref = s.get("reference") or {}
            rows.append(
                {
                    "checkpoint": ckpt,
                    "benchmark": bench,
                    "n": s.get("n"),
                    "gIoU": s.get("gIoU"),
                    "cIoU": s.get("cIoU"),
                    "protocol": ref.get("protocol", ""),
                    "ref_gIoU": ref.get("gIoU"),
                    "ref_cIoU": ref.get("cIoU"),
                    "ref_skipped": ref.get("skipped"),
                    "differs": ref.get("differs"),
                }
            )
    return rows


def _pct(v) -> str:
    return "" if v is None else f"{100 * float(v):.1f}"


def write_tables(out: Path, rows: list[dict]) -> None:
    """``sweep.csv`` (fractions, as in summary.json) and ``sweep.md`` (percent; * = the benchmark's best gIoU)."""
    with open(out / TABLE_CSV, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    best = {}
    for r in rows:
        if r["gIoU"] is not None and r["gIoU"] > best.get(r["benchmark"], (-1.0, None))[0]:
            best[r["benchmark"]] = (r["gIoU"], r["checkpoint"])
    ref = next((r["protocol"] for r in rows if r["protocol"]), "")
    head = ["checkpoint", "benchmark", "n", "gIoU", "cIoU"]
    if ref:
        head += [f"{ref} gIoU", f"{ref} cIoU", f"{ref} skipped", "samples scored differently"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        star = " *" if best.get(r["benchmark"], (None, None))[1] == r["checkpoint"] else ""
        cells = [f"`{r['checkpoint']}`", r["benchmark"], str(r["n"]), _pct(r["gIoU"]) + star, _pct(r["cIoU"])]
        if ref:
            cells += [_pct(r["ref_gIoU"]), _pct(r["ref_cIoU"]), str(r["ref_skipped"]), str(r["differs"])]
        lines.append("| " + " | ".join(cells) + " |")
    note = "gIoU and cIoU in percent (segzero's protocol; every sample counted); * = the benchmark's best gIoU."
    if ref:
        note += f" The {ref} columns score the same predictions as its own script does."
    (out / TABLE_MD).write_text("\n".join([note, "", *lines]) + "\n", encoding="utf-8")


def write_plot(out: Path, checkpoints: list[str], rows: list[dict]) -> Path | None:
    """``sweep.png``: gIoU per checkpoint per benchmark (dashed: the reference protocol); None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(checkpoints) + 2), 3.6))
    xs = {c: i for i, c in enumerate(checkpoints)}
    for bench in dict.fromkeys(r["benchmark"] for r in rows):
        mine = [r for r in rows if r["benchmark"] == bench]
        (line,) = ax.plot([xs[r["checkpoint"]] for r in mine], [100 * r["gIoU"] for r in mine], "o-", label=bench)
        ref = [r for r in mine if r["ref_gIoU"] is not None]
        if ref:
            ax.plot(
                [xs[r["checkpoint"]] for r in ref],
                [100 * r["ref_gIoU"] for r in ref],
                "s--",
                color=line.get_color(),
                label=f"{bench} ({ref[0]['protocol']})",
            )
    ax.set_xticks(range(len(checkpoints)), _names(checkpoints), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("gIoU (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / PLOT_PNG, dpi=110)
    plt.close(fig)
    return out / PLOT_PNG


def run_sweep(
    settings: dict, checkpoints: list[str], benchmarks: dict[str, tuple[str, str | None]], out: str | Path, *, run=None
) -> list[dict]:
    """Evaluate every checkpoint on every benchmark with the ``EvalConfig`` fields in ``settings`` (all but
    ``reasoner``, ``data`` and ``out``; the segmenter, when not given, is each checkpoint's own), then write the
    tables and the plot; returns the rows. ``run`` is the evaluation function (default ``run_eval``)."""
    from segzero.eval.runner import EvalConfig, run_eval

    run = run or run_eval
    out = Path(out)
    if not checkpoints or not benchmarks:
        raise UserError("eval sweep needs at least one checkpoint and one --data")
    for ckpt, name in zip(checkpoints, _names(checkpoints), strict=True):
        for bench, (data, split) in benchmarks.items():
            target = out / "runs" / name / bench
            target.mkdir(parents=True, exist_ok=True)
            config = {**settings, "split": split or settings.get("split")}
            run(EvalConfig(**config, reasoner=ckpt, data=data, out=str(target)))
    rows = sweep_rows(out, checkpoints, benchmarks)
    write_tables(out, rows)
    write_plot(out, checkpoints, rows)
    return rows


__all__ = ["expand_checkpoints", "parse_benchmarks", "run_sweep", "sweep_rows", "write_plot", "write_tables"]
