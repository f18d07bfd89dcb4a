"""Saving, loading and exporting built training data (the released Seg-Zero / VisionReasoner layouts).

Usage::

    from segzero.data.export import load_built, detect_layout
    ds = load_built("out/refcocog_840")               # datasets.Dataset of split "train"
    detect_layout(ds)                                  # "single" or "multi"

Columns (``FEATURES``): ``id`` str, ``problem`` str (the query), ``solution`` str (gt in the model frame:
``<box>(x1,y1),(x2,y2)</box><points>(x1,y1),(x2,y2)</points>`` or a JSON list of ``bbox_2d``/``point_2d``),
``image`` (the image resized to the model frame), ``img_height`` / ``img_width`` (original size, pixels).
``load_built`` also opens the hub copies' layout (a saved Dataset, a DatasetDict folder, or parquet files).
``EVAL_FEATURES`` adds the columns ``segzero eval`` reads (``text``, ``mask``, ``image_id``, ``ann_id``), which
builds from a manifest or COCO instances write by default.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets

from segzero.errors import UserError

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "problem": datasets.Value("string"),
        "solution": datasets.Value("string"),
        "image": datasets.Image(),
        "img_height": datasets.Value("int32"),
        "img_width": datasets.Value("int32"),
    }
)
EVAL_FEATURES = datasets.Features(
    {
        **FEATURES,
        "text": datasets.Value("string"),  # the query again, under the name segzero eval reads
        "mask": datasets.Image(),  # gt mask (PNG, 0/1) in the stored image's pixels: the union of the row's objects
        "image_id": datasets.Value("string"),  # the image's file name: rows of one image share it
        "ann_id": datasets.Value("string"),  # the row id
    }
)


def rows_to_table(rows: list[dict], features: datasets.Features = FEATURES):
    """A pyarrow table with ``features`` (schema metadata included) from row dicts (``image`` as
    ``{"bytes": ..., "path": None}``); built directly with pyarrow, which is faster than ``Dataset.from_list``."""
    import pyarrow as pa

    schema = features.arrow_schema
    return pa.Table.from_pydict({name: [r[name] for r in rows] for name in schema.names}, schema=schema)


def save_dataset(
    table,
    out: Path,
    *,
    split: str = "train",
    parquet: bool = True,
    description: str = "",
    progress: bool = True,
    features: datasets.Features = FEATURES,
) -> int:
    """Save a pyarrow table of ``features`` rows as ``OUT/dataset_dict.json + OUT/<split>/`` and
    ``OUT/parquet/<split>.parquet``; ``description`` goes into the dataset info. Returns the number of rows."""
    info = datasets.DatasetInfo(description=description, features=features)
    ds = datasets.Dataset(table.cast(features.arrow_schema), info=info)
    was_enabled = datasets.is_progress_bar_enabled()
    if not progress:
        datasets.disable_progress_bars()
    try:
        # an empty split skips datasets' size estimate, which divides by zero on an empty image table in
        # datasets 4.7-5.0: one shard, and the parquet file written by pyarrow (the same empty table and schema)
        empty = len(ds) == 0
        datasets.DatasetDict({split: ds}).save_to_disk(str(out), num_shards={split: 1} if empty else None)
        if parquet:
            (out / "parquet").mkdir(parents=True, exist_ok=True)
            if empty:
                import pyarrow.parquet as pq

                pq.write_table(ds.data.table, str(out / "parquet" / f"{split}.parquet"))
            else:
                ds.to_parquet(str(out / "parquet" / f"{split}.parquet"))
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
    return len(ds)


def load_built(path: str | Path, split: str = "train") -> datasets.Dataset:
    """Open built data: a ``save_to_disk`` folder (Dataset or DatasetDict, ``split`` picked), a parquet file,
    or a folder of parquet files. Raises ``UserError`` when nothing loadable is there."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"data not found: {path}")
    if path.is_file() and path.suffix == ".parquet":
        return datasets.Dataset.from_parquet(str(path))
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise UserError(f"{path} has splits {list(loaded)}, not {split!r}")
            return loaded[split]
        return loaded
    files = sorted(path.glob(f"**/{split}*.parquet")) or sorted(path.glob("**/*.parquet"))
    if files:
        return datasets.Dataset.from_parquet([str(f) for f in files])
    raise UserError(f"{path} holds no saved dataset (dataset_dict.json / state.json) and no parquet files")


def detect_layout(ds: datasets.Dataset) -> str:
    """``"multi"`` when the first solution is a JSON list (VisionReasoner), else ``"single"`` (Seg-Zero)."""
    if len(ds) == 0:
        return "single"
    solution = ds[0]["solution"]
    return "multi" if not isinstance(solution, str) or solution.lstrip().startswith("[") else "single"


def built_frame(data: str | Path) -> tuple[int, int] | None:
    """The ``(w, h)`` model frame recorded in a build's ``stats.json``; None when there is none."""
    stats = Path(data) / "stats.json"
    if not stats.is_file():
        return None
    frame = json.loads(stats.read_text()).get("frame")
    return (int(frame[0]), int(frame[1])) if frame else None
