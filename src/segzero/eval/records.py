"""Per-sample records: the ``samples.jsonl`` file format, crash-safe reading and mask run-length codes (``segzero.rle``).

One JSON object per line, appended and flushed as samples finish::

    {"index": 12, "id": "img7:0", "image_id": "img7", "ann_id": "0", "query": "...",
     "status": "ok" | "parse_failed" | "error", "stage": null | "image" | "gt" | "model" | "score",
     "error": "" | "reason", "intersection": 812, "union": 1304, "iou": 0.6227, "gt_area": 1100,
     "pred_area": 1016, "empty_target": false, "ignored_pixels": 0, "reasoning": "...", "completion": "...",
     "objects": [{"box": [x1, y1, x2, y2], "points": [[x, y], ...]}], "scores": [0.93],
     "pred_rle": {"size": [H, W], "counts": "..."} | null, "seconds": 0.41}

``intersection``/``union`` are integers at the original resolution under the run's ignore-label protocol; a
failed sample has intersection 0 and union = gt area. ``seconds`` is the sample's share of its batch's wall time.
``read_records`` tolerates a truncated last line (a killed writer) and keeps the first record of each id;
``repair_records`` rewrites the file without the broken tail so appending can go on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


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
