"""Per-sample records: the ``samples.jsonl`` file format, how a sample's outcome becomes one, crash-safe reading.

One JSON object per line, appended and flushed as samples finish::

    {"index": 12, "id": "img7:0", "image_id": "img7", "ann_id": "0", "query": "...",
     "status": "ok" | "parse_failed" | "error", "stage": null | "image" | "gt" | "model" | "score",
     "error": "" | "reason", "intersection": 812, "union": 1304, "iou": 0.6227, "gt_area": 1100,
     "pred_area": 1016, "empty_target": false, "ignored_pixels": 0, "reasoning": "...", "completion": "...",
     "objects": [{"box": [x1, y1, x2, y2], "points": [[x, y], ...]}], "scores": [0.93],
     "pred_rle": {"size": [H, W], "counts": "..."} | null, "seconds": 0.41}

``intersection``/``union`` are integers at the original resolution under the run's ignore-label protocol; a
failed sample has intersection 0 and union = gt area. ``seconds`` is the sample's share of its batch's wall time.
``make_record`` builds a sample's record from its gt and result (``score_sample``: the counts under the run's
ignore-label protocol); a stage that raised for it (``attempt``) is a ``StageError``, recorded with its reason.
``read_records`` tolerates a truncated last line (a killed writer) and keeps the first record of each id;
``repair_records`` rewrites the file without the broken tail so appending can go on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from segzero.metrics import IGNORE_VALUE, intersection_union, sample_iou, target_area
from segzero.rle import encode_mask

if TYPE_CHECKING:
    from segzero.eval.datasets import SampleInfo


def read_records(path: str | Path) -> tuple[list[dict], int]:
    """Records of ``path`` deduplicated by ``id`` (first wins), and the number of unreadable lines dropped.

    A line that is not a JSON object with an ``id`` (e.g. cut off by a kill) is dropped, not fatal.
    """
    path = Path(path)
    if not path.is_file():
        return [], 0
    records, seen, bad = [], set(), 0
    with open(path, "rb") as f:
        for raw in f:
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                bad += 1
                continue
            if not isinstance(rec, dict) or "id" not in rec:
                bad += 1
                continue
            if rec["id"] not in seen:
                seen.add(rec["id"])
                records.append(rec)
    return records, bad


def repair_records(path: str | Path) -> tuple[list[dict], int]:
    """Read ``path`` like ``read_records`` and, when it had broken lines or duplicates, rewrite it cleanly.

    Writes to a temporary file and renames it over ``path`` (atomic on POSIX), so a second kill loses nothing.
    """
    path = Path(path)
    records, bad = read_records(path)
    if not path.is_file():
        return records, bad
    data = path.read_bytes()
    n_lines = sum(1 for line in data.splitlines() if line.strip())
    ends_clean = not data or data.endswith(b"\n")
    if bad or n_lines != len(records) or not ends_clean:
        tmp = path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return records, bad


class RecordWriter:
    """Append records to ``samples.jsonl``; ``write_many`` flushes and fsyncs once per batch."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def write_many(self, records: list[dict]) -> None:
        for rec in records:
            self._f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class StageError:
    """A stage that raised for a sample (``stage``: image, gt, model, score or reference; ``reason``: the exception
    type and message, at most 500 characters): recorded as the sample's failure, never skipped."""

    stage: str
    reason: str


def attempt(stage: str, fn, *args, **kwargs):
    """Run one stage; an exception becomes ``StageError`` (recorded as the sample's failure, never skipped)."""
    try:
        return fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 — the one place stage errors are caught; recorded with the reason
        return StageError(stage, f"{type(err).__name__}: {err}"[:500])


def _target(gt: np.ndarray, ignore_label: str) -> tuple[np.ndarray, int | None, int]:
    """``(gt as scored, its ignore value, target area)`` under ``ignore_label``: "exclude" keeps ``IGNORE_VALUE``
    pixels out of both counts; otherwise every nonzero pixel is target."""
    ignore_value = IGNORE_VALUE if ignore_label == "exclude" else None
    gt_eff = gt if ignore_value is not None else gt != 0
    return gt_eff, ignore_value, target_area(gt_eff, ignore_value=ignore_value)


def score_sample(result, gt: np.ndarray, *, ignore_label: str) -> dict:
    """Intersection/union of ``result.mask`` against ``gt`` ((H, W) uint8 0/1/255) under the protocol."""
    gt_eff, ignore_value, area = _target(gt, ignore_label)
    if not result.parse_ok:
        return {"intersection": 0, "union": area, "gt_area": area, "pred_area": 0}
    pred = np.asarray(result.mask, dtype=bool)
    inter, union = intersection_union(pred, gt_eff, ignore_value=ignore_value)
    return {"intersection": inter, "union": union, "gt_area": area, "pred_area": int(pred.sum())}


def make_record(info: SampleInfo, gt, result, *, ignore_label: str, seconds: float, save_masks: bool) -> dict:
    """One ``samples.jsonl`` record for ``info`` from its gt (array or StageError) and result (or StageError)."""
    rec = {"index": info.index, "id": info.id, "image_id": info.image_id, "ann_id": info.ann_id, "query": info.query}
    stage, error, counts, status = None, "", None, "ok"
    if isinstance(gt, StageError):
        stage, error = gt.stage, gt.reason
        counts = {"intersection": 0, "union": 1, "gt_area": None, "pred_area": 0}
    else:
        area = _target(gt, ignore_label)[2]
        if isinstance(result, StageError):
            stage, error = result.stage, result.reason
        else:
            counts = attempt("score", score_sample, result, gt, ignore_label=ignore_label)
            if isinstance(counts, StageError):
                stage, error = counts.stage, counts.reason
        if stage is not None:
            counts = {"intersection": 0, "union": area, "gt_area": area, "pred_area": 0}
    if stage is not None:
        status = "error"
    elif not result.parse_ok:
        status, error = "parse_failed", result.parse_error or "unparseable answer"
    ok_result = None if isinstance(result, StageError) or result is None else result
    rec.update(
        status=status,
        failed=status != "ok",
        stage=stage,
        error=error,
        intersection=int(counts["intersection"]),
        union=int(counts["union"]),
        iou=sample_iou(int(counts["intersection"]), int(counts["union"])),
        gt_area=counts["gt_area"],
        pred_area=counts["pred_area"],
        empty_target=counts["gt_area"] == 0,
        ignored_pixels=0 if isinstance(gt, StageError) else int(np.count_nonzero(gt == IGNORE_VALUE)),
        reasoning=getattr(ok_result, "reasoning", None),
        completion=getattr(ok_result, "completion", None),
        objects=[o.to_dict() for o in ok_result.objects] if ok_result is not None else [],
        scores=[float(s) for s in ok_result.scores] if ok_result is not None else [],
        pred_rle=encode_mask(np.asarray(ok_result.mask, dtype=bool)) if save_masks and status == "ok" else None,
        seconds=round(seconds, 4),
    )
    return rec
