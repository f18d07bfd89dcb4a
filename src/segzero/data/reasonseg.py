"""Convert LISA's ReasonSeg release folders into the evaluation layout (``segzero data convert-reasonseg``).

Usage::

    segzero data convert-reasonseg --lisa-dir ReasonSeg --split val --out out/reasonseg_val
    segzero eval --data out/reasonseg_val ...            # opens it as a save_to_disk folder

Output: a ``datasets.DatasetDict`` folder with one split (``--split``, default ``val``) and the columns of the hub
copies ``Ricky06662/ReasonSeg_*``: ``image`` (original pixels), ``text`` (the query), ``mask`` (nested list of
(H, W) uint8: 0 background, 1 target, 255 ignore - LISA's protocol; ``ignore="target"`` turns ignore pixels into
target pixels as the hub copies did), ``image_id`` (file stem), ``ann_id`` (sentence index as str),
``img_height``, ``img_width``; plus ``parquet/<split>.parquet``. Reads the folders with ``segzero.data.lisa``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from segzero.data.lisa import load_lisa_folder
from segzero.errors import UserError
from segzero.metrics import IGNORE_VALUE


def eval_features():
    """The ReasonSeg evaluation layout's columns (``mask``: nested uint8, 1 target, 255 ignore, 0 background)."""
    import datasets

    return datasets.Features(
        {
            "image": datasets.Image(),
            "text": datasets.Value("string"),
            "mask": datasets.Sequence(datasets.Sequence(datasets.Value("uint8"))),
            "image_id": datasets.Value("string"),
            "ann_id": datasets.Value("string"),
            "img_height": datasets.Value("int32"),
            "img_width": datasets.Value("int32"),
        }
    )


def convert_reasonseg(
    lisa_dir: str | Path,
    out: str | Path,
    *,
    split: str = "val",
    sentences: str = "first",
    ignore: str = "ignore",
    parquet: bool = True,
) -> dict:
    """Convert one ReasonSeg split folder; returns counts ``{"images", "rows", "ignore_pixels", "split"}``.

    ``sentences``: ``first`` (one row per image, as LISA evaluates) or ``all`` (one row per sentence).
    ``ignore``: ``ignore`` keeps 255 (LISA protocol) or ``target`` maps it to 1 (hub copies' protocol).
    """
    import datasets

    if sentences not in ("first", "all"):
        raise UserError(f"--sentences must be first or all, not {sentences!r}")
    if ignore not in ("ignore", "target"):
        raise UserError(f"--ignore must be ignore or target, not {ignore!r}")
    folder = load_lisa_folder(lisa_dir, split=split if (Path(lisa_dir) / split).is_dir() else None)
    counts = {"split": split, "images": 0, "rows": 0, "ignore_pixels": 0, "protocol": ignore}

    def rows():
        for item in folder:
            image_bytes = item.image_path.read_bytes()
            with Image.open(item.image_path) as im:
                width, height = im.size
            mask = folder.mask(item, size=(width, height))
            counts["ignore_pixels"] += int((mask == IGNORE_VALUE).sum())
            if ignore == "target":
                mask = np.where(mask == IGNORE_VALUE, 1, mask).astype(np.uint8)
            counts["images"] += 1
            texts = item.sentences[:1] if sentences == "first" else item.sentences
            nested = mask.tolist()
            for i, text in enumerate(texts):
                counts["rows"] += 1
                yield {
                    "image": {"bytes": image_bytes, "path": None},
                    "text": text,
                    "mask": nested,
                    "image_id": item.image_id,
                    "ann_id": str(i),
                    "img_height": height,
                    "img_width": width,
                }

    out = Path(out)
    with tempfile.TemporaryDirectory() as cache:  # a fresh cache: the generator always runs, counts stay right
        ds = datasets.Dataset.from_generator(rows, features=eval_features(), cache_dir=cache)
        datasets.DatasetDict({split: ds}).save_to_disk(str(out))
        if parquet:
            (out / "parquet").mkdir(parents=True, exist_ok=True)
            ds.to_parquet(str(out / "parquet" / f"{split}.parquet"))
    return counts
