"""The builder's resumable state: shards of image tasks, each written atomically once finished.

A finished shard ``i`` is ``_work/shard-<i>.parquet`` (its rows) plus ``_work/shard-<i>.json`` (its counts), the json
written last, so a shard whose json exists is done; ``segzero.data.build`` reruns only the others. Workers run
``run_shard`` (``segzero.data.samples.process_image`` over the shard's images).
"""

from __future__ import annotations

import json
from pathlib import Path

from segzero.data.samples import ImageTask, SampleOptions, TaskResult, process_image


def split_shards(tasks: list[ImageTask], size: int) -> list[list[ImageTask]]:
    """``tasks`` in consecutive shards of ``size`` images (the last one shorter)."""
    return [tasks[i : i + size] for i in range(0, len(tasks), max(1, size))]


def run_shard(args: tuple[int, list[ImageTask], SampleOptions]) -> tuple[int, int, TaskResult]:
    """Worker: process a shard's images; returns (shard index, number of images, merged result with rows)."""
    index, shard, opts = args
    total = TaskResult()
    for task in shard:
        res = process_image(task, opts)
        total.merge(res)
        total.rows.extend(res.rows)
    return index, len(shard), total


def _result_to_json(res: TaskResult) -> dict:
    return {
        "rows_written": len(res.rows),
        "dropped_rows": dict(res.dropped_rows),
        "dropped_objects": dict(res.dropped_objects),
        "warnings": dict(res.warnings),
        "examples": res.examples,
        "hist": res.hist,
        "objects_ok": res.objects_ok,
    }


def result_from_json(d: dict) -> TaskResult:
    """A finished shard's counts (its ``.json``) as a ``TaskResult`` without rows."""
    res = TaskResult()
    res.dropped_rows.update(d["dropped_rows"])
    res.dropped_objects.update(d["dropped_objects"])
    res.warnings.update(d["warnings"])
    res.examples = d["examples"]
    res.hist = d["hist"]
    res.objects_ok = d["objects_ok"]
    return res


def write_shard(work: Path, index: int, res: TaskResult, features) -> None:
    """Write a finished shard atomically: rows parquet first (``features``: a ``datasets.Features`` of the build's
    columns), then the json marker that makes it 'done'."""
    import pyarrow.parquet as pq

    from segzero.data.export import rows_to_table

    table = rows_to_table(res.rows, features)
    tmp = work / f"shard-{index:05d}.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(work / f"shard-{index:05d}.parquet")
    tmp = work / f"shard-{index:05d}.json.tmp"
    tmp.write_text(json.dumps(_result_to_json(res)))
    tmp.replace(work / f"shard-{index:05d}.json")
