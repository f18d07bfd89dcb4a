"""Evaluation datasets: ReasonSeg (hub / ``save_to_disk`` / parquet), LISA release folders, RefCOCO-family.

Every source becomes an ``EvalDataset``: a list of ``SampleInfo`` (cheap metadata, one per query) plus
``image(info)`` (PIL RGB, original pixels) and ``mask(info)`` ((H, W) uint8 gt: 0 background, 1 target,
``IGNORE_VALUE`` = 255 ignore), read on demand so a 779-row test split never sits decoded in memory.

Usage::

    from segzero.eval.datasets import load_eval_dataset
    ds = load_eval_dataset("Ricky06662/ReasonSeg_test")           # hub (needs network), split "test"
    ds = load_eval_dataset("/data/reasonseg_test")                  # save_to_disk folder or parquet file(s)
    ds = load_eval_dataset("/data/ReasonSeg", split="val")          # LISA release folder
    ds = load_eval_dataset("/data/refer/refcocog", split="val", refer_dataset="refcocog",
                           images_dir="/data/coco/train2014")       # refer annotations + COCO images

ReasonSeg rows need the columns ``image, text, mask, image_id, ann_id, img_height, img_width``; ``mask`` is a
nested list of bools, an image or an array (integer masks: 255 = ignore, other non-zero = target). Sample ids are
``"{image_id}:{ann_id}"`` (made unique with ``#row`` when a dataset repeats a pair). Samples of one image share
``image_key`` so the runner embeds each image once. Missing columns/files raise ``UserError`` naming them.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segzero.errors import UserError
from segzero.metrics import IGNORE_VALUE

REASONSEG_COLUMNS = ("image", "text", "mask", "image_id", "ann_id", "img_height", "img_width")
HUB_IDS = ("Ricky06662/ReasonSeg_val", "Ricky06662/ReasonSeg_test")


def provenance(ds, **extra) -> dict:
    """JSON-ready provenance of an evaluation set ``ds`` (its ``kind``, ``source``, ``split``, ``samples`` and
    ``fingerprint``) for summaries: kind, source, split, size, then ``extra``, then the fingerprint."""
    return {"kind": ds.kind, "source": ds.source, "split": ds.split, "size": len(ds.samples), **extra,
            "fingerprint": ds.fingerprint}  # fmt: skip


@dataclass(frozen=True)
class SampleInfo:
    """Metadata of one evaluation sample (one query). ``index`` is its position in the whole dataset."""

    index: int
    id: str
    query: str
    image_key: str
    image_id: str
    ann_id: str


def mask_array(value) -> np.ndarray:
    """Normalise a gt mask (nested list, array, PIL image) to (H, W) uint8 in {0, 1, 255}.

    bool -> 0/1; integers: 255 stays 255 (ignore), any other non-zero -> 1. Raises ``ValueError`` otherwise.
    """
    if hasattr(value, "mode") and hasattr(value, "size"):  # PIL image
        value = np.asarray(value.convert("1") if value.mode == "1" else value)
    arr = np.asarray(value)
    if arr.dtype == object:
        raise ValueError("mask rows have different lengths")
    if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]):
        arr = arr.reshape(arr.shape[:2] if arr.shape[-1] == 1 else arr.shape[1:])
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"mask must be a 2-D array, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"mask has non-numeric dtype {arr.dtype}")
    out = (arr != 0).astype(np.uint8)
    out[arr == IGNORE_VALUE] = IGNORE_VALUE
    return out


def _unique_ids(pairs: list[tuple[str, str]]) -> list[str]:
    counts = Counter(pairs)
    return [f"{a}:{b}" if counts[(a, b)] == 1 else f"{a}:{b}#{i}" for i, (a, b) in enumerate(pairs)]


class EvalDataset:
    """Base: ``samples``, ``fingerprint``, ``describe()`` and the readers ``image(info)`` / ``mask(info)``."""

    kind = "base"

    def __init__(self, samples: list[SampleInfo], *, source: str, split: str | None, fingerprint: str):
        self.samples = samples
        self.source = source
        self.split = split
        self.fingerprint = fingerprint

    def __len__(self) -> int:
        return len(self.samples)

    def describe(self) -> dict:
        """JSON-ready provenance for summaries: kind, source, split, size, fingerprint."""
        return provenance(self)

    def image(self, info: SampleInfo):
        raise NotImplementedError

    def mask(self, info: SampleInfo) -> np.ndarray:
        raise NotImplementedError


class HFEvalDataset(EvalDataset):
    """A ``datasets.Dataset`` in the ReasonSeg layout; image and mask columns are decoded per access."""

    kind = "reasonseg"

    def __init__(self, ds, *, source: str, split: str | None):
        missing = [c for c in REASONSEG_COLUMNS if c not in ds.column_names]
        if missing:
            raise UserError(
                f"dataset {source} lacks column(s) {', '.join(missing)} (have {', '.join(ds.column_names)})"
            )
        meta = ds.select_columns(["text", "image_id", "ann_id"]).to_dict()
        image_ids = [str(v) for v in meta["image_id"]]
        ann_ids = [str(v) for v in meta["ann_id"]]
        ids = _unique_ids(list(zip(image_ids, ann_ids, strict=True)))
        samples = [
            SampleInfo(i, ids[i], str(meta["text"][i]), image_ids[i], image_ids[i], ann_ids[i])
            for i in range(len(ids))
        ]
        super().__init__(samples, source=source, split=split, fingerprint=str(getattr(ds, "_fingerprint", "")))
        self._images = ds.select_columns(["image"])
        self._masks = ds.select_columns(["mask"])

    def image(self, info: SampleInfo):
        from segzero.images import load_image  # noqa: PLC0415

        value = self._images[info.index]["image"]
        if isinstance(value, dict):  # undecoded Image feature: {"bytes": ..., "path": ...}
            value = value.get("bytes") or value.get("path")
        return load_image(value)

    def mask(self, info: SampleInfo) -> np.ndarray:
        return mask_array(self._masks[info.index]["mask"])


class LisaEvalDataset(EvalDataset):
    """LISA release folder; ``sentences="first"`` (LISA's and the hub copies' protocol) or ``"all"``."""

    kind = "lisa"

    def __init__(self, path: str | Path, *, split: str | None, sentences: str = "first"):
        from segzero.data.lisa import load_lisa_folder  # noqa: PLC0415

        if sentences not in ("first", "all"):
            raise UserError(f"sentences must be 'first' or 'all', got {sentences!r}")
        self.folder = load_lisa_folder(path, split)
        samples, digest = [], hashlib.sha256(sentences.encode())
        self._items = {}
        for item in self.folder:
            self._items[item.image_id] = item
            for k, sent in enumerate(item.sentences[:1] if sentences == "first" else item.sentences):
                samples.append(
                    SampleInfo(len(samples), f"{item.image_id}:{k}", sent, item.image_id, item.image_id, str(k))
                )
            for p in (item.image_path, item.json_path):
                digest.update(f"{p.name}:{p.stat().st_size};".encode())
        super().__init__(samples, source=str(path), split=split, fingerprint=digest.hexdigest()[:16])

    def image(self, info: SampleInfo):
        from segzero.images import load_image  # noqa: PLC0415

        return load_image(self._items[info.image_key].image_path)

    def mask(self, info: SampleInfo) -> np.ndarray:
        item = self._items[info.image_key]
        from PIL import Image  # noqa: PLC0415

        with Image.open(item.image_path) as im:  # size after EXIF rotation, as LISA's cv2.imread and labelme see it
            size = im.size[::-1] if im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else im.size
        return self.folder.mask(item, size=size)


class ReferEvalDataset(EvalDataset):
    """RefCOCO / RefCOCO+ / RefCOCOg / gRefCOCO split: one sample per referring expression; images from
    ``images_dir``. A gRefCOCO expression's target is the OR of its objects, empty for a no-target one."""

    kind = "refer"

    def __init__(self, path: str | Path, *, split: str | None, dataset: str, split_by: str | None, images_dir):
        from segzero.data.refer import load_refer  # noqa: PLC0415

        self.refer = load_refer(path, dataset=dataset, split_by=split_by)
        split = split or "val"
        refs = self.refer.refs_for_split(split)
        if not refs:
            raise UserError(
                f"{dataset} has no refs in split {split!r} (splits: {', '.join(sorted(self.refer.splits))})"
            )
        self.images_dir = Path(images_dir) if images_dir else self.refer.refs_path.parent / "images"
        if not self.images_dir.is_dir():
            raise UserError(f"COCO image folder not found: {self.images_dir} (pass --images DIR)")
        self._refs = {}
        samples, digest = [], hashlib.sha256(f"{dataset}:{self.refer.split_by}:{split}".encode())
        for ref in refs:
            self._refs[ref.ref_id] = ref
            for sent, sent_id in zip(ref.sentences, ref.sent_ids, strict=True):
                sid = f"{ref.ref_id}:{sent_id}"
                samples.append(SampleInfo(len(samples), sid, sent, ref.file_name, str(ref.image_id), str(ref.ref_id)))
                digest.update(f"{sid}={sent};".encode())
        source = f"{path} ({dataset}, {self.refer.split_by})"
        super().__init__(samples, source=source, split=split, fingerprint=digest.hexdigest()[:16])

    def image(self, info: SampleInfo):
        from segzero.images import load_image  # noqa: PLC0415

        # COCO masks index the stored pixels: no EXIF rotation (a few COCO images carry an orientation tag)
        return load_image(self.images_dir / info.image_key, exif=False)

    def mask(self, info: SampleInfo) -> np.ndarray:
        return self.refer.mask(self._refs[int(info.ann_id)]).astype(np.uint8)


def _from_datasets(obj, source: str, split: str | None) -> HFEvalDataset:
    from datasets import DatasetDict  # noqa: PLC0415

    if isinstance(obj, DatasetDict):
        names = list(obj)
        if split is None:
            split = "test" if "test" in obj else (names[0] if len(names) == 1 else None)
            if split is None:
                raise UserError(f"dataset {source} has splits {', '.join(names)}; choose one with --split")
        if split not in obj:
            raise UserError(f"dataset {source} has no split {split!r} (splits: {', '.join(names)})")
        obj = obj[split]
    return HFEvalDataset(obj, source=source, split=split)


def detect_format(path: Path) -> str:
    """``disk`` (save_to_disk), ``parquet``, ``refer``, ``lisa``; ``UserError`` when none fits."""
    from segzero.data.lisa import is_lisa_folder  # noqa: PLC0415

    if path.is_file():
        if path.suffix == ".parquet":
            return "parquet"
        raise UserError(f"cannot read {path}: expected a .parquet file or a dataset folder")
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return "disk"
    if any(path.glob("*.parquet")) or any(path.glob("*/*.parquet")):
        return "parquet"
    from segzero.data.refer import SPLITS_BY, refs_file_names  # noqa: PLC0415

    patterns = {
        name for dataset in SPLITS_BY for name in refs_file_names(dataset, "*")
    }  # refs(*).p, grefs(*).json, ...
    if any(p for pattern in patterns for p in [*path.glob(pattern), *path.glob(f"*/{pattern}")]):
        return "refer"
    if is_lisa_folder(path):
        return "lisa"
    raise UserError(
        f"cannot tell the dataset format of {path} (no dataset_dict.json/state.json, parquet, refs(*).p "
        "or LISA .jpg+.json)"
    )


def load_eval_dataset(
    data: str | Path,
    *,
    split: str | None = None,
    fmt: str = "auto",
    sentences: str = "first",
    refer_dataset: str = "refcocog",
    split_by: str | None = None,
    images_dir: str | Path | None = None,
) -> EvalDataset:
    """Open ``data`` (a local path or a hub dataset id) as an ``EvalDataset``.

    ``fmt`` is ``auto`` (detect from the path; a non-existent path is a hub id), ``hub``, ``disk``, ``parquet``,
    ``lisa`` or ``refer``. ``split``: the DatasetDict / LISA / refer split (default ``test``; refer: ``val``).
    ``sentences`` (LISA): ``first`` or ``all`` sentences per image. ``refer_dataset``/``split_by``/``images_dir``
    select the refer annotations and the COCO image folder.
    """
    import datasets  # noqa: PLC0415

    path = Path(data)
    if fmt == "auto":
        fmt = detect_format(path) if path.exists() else "hub"
    if fmt != "hub" and not path.exists():
        raise UserError(f"dataset path not found: {path}")
    if fmt == "hub":
        from segzero.models.reasoner import check_hub_reachable  # noqa: PLC0415

        check_hub_reachable(str(data), what="dataset", repo_type="dataset")  # offline: one line at once, no retries
        try:
            loaded = datasets.load_dataset(str(data), split=split or "test")
        except (OSError, ValueError) as err:  # ConnectionError, DatasetNotFoundError, unknown split
            raise UserError(f"cannot load hub dataset {data!r} (split {split or 'test'!r}): {err}") from err
        return _from_datasets(loaded, str(data), split or "test")
    if fmt == "disk":
        try:
            loaded = datasets.load_from_disk(str(path))
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read save_to_disk folder {path}: {err}") from err
        return _from_datasets(loaded, str(path), split)
    if fmt == "parquet":
        files = [path] if path.is_file() else sorted(path.glob("*.parquet")) or sorted(path.glob("*/*.parquet"))
        try:
            loaded = datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read parquet data {path}: {err}") from err
        return HFEvalDataset(loaded, source=str(path), split=split)
    if fmt == "lisa":
        return LisaEvalDataset(path, split=split, sentences=sentences)
    if fmt == "refer":
        return ReferEvalDataset(path, split=split, dataset=refer_dataset, split_by=split_by, images_dir=images_dir)
    if fmt == "revos":  # videos: another loop and other scores
        raise UserError("ReVOS-layout video sets are evaluated by segzero.eval.video.run_video_eval (--format revos)")
    raise UserError(f"unknown dataset format {fmt!r}; choose auto, hub, disk, parquet, lisa or refer")
