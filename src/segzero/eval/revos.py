"""Video reasoning-segmentation sets in the ReVOS / ReasonVOS annotation layout, read as expressions and frames.

ReVOS's layout (also MeViS's and the moving-shapes world's, ``segzero world build --layout video``)::

    DIR/JPEGImages/<video>/<frame>.jpg        frames (also .jpeg / .png; or DIR/<video>/<frame>.jpg)
    DIR/meta_expressions_<split>_.json        {"videos": {<video>: {"frames": [<frame>, ...], "expressions":
                                               {<exp_id>: {"exp": text, "obj_id": [...], "anno_id": [...],
                                               "type_id": 0 | 1}}}}}     (or one DIR/meta_expressions.json)
    DIR/mask_dict.json                        {<anno_id>: [COCO RLE or null, one per frame]}

The gt of an expression on a frame is the union of its ``anno_id`` objects' masks there (null = absent: empty).
``type_id`` 0 is a referring expression, 1 a reasoning one (the two groups ReVOS scores apart, ``TYPE_NAMES``); an
expression without one is in the group ``all``. ReasonVOS's release layout is read too: its ``expressions`` a list
of ``{"exp_id", "exp_text", "obj_id", ...}`` and its masks ``DIR/Annotations/<source>_<video>_<obj_id>/<frame>.png``
(one PNG per frame, non-zero = object), ``source`` from the video's entry.

Usage::

    from segzero.eval.revos import is_revos_folder, load_revos
    ds = load_revos("data/ReVOS", split="valid")        # split: valid (also "val"), train, test, ...
    e = ds.samples[0]                                    # VideoExpression: id, video, query, anno_ids, type_name
    frames = ds.frames(e.video)                          # [PIL RGB] in frame order
    gt = ds.gt(e, size=frames[0].size[::-1])             # (T, H, W) bool

Missing files, a split that is not there or a malformed entry raise ``UserError`` naming it.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segzero.errors import UserError
from segzero.eval.datasets import provenance

META_PREFIX = "meta_expressions"
MASK_DICT = "mask_dict.json"
ANNOTATIONS = "Annotations"
FRAME_FOLDERS = ("JPEGImages", "")  # frames under DIR/JPEGImages/<video>, else DIR/<video>
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
TYPE_NAMES: dict[int, str] = {0: "referring", 1: "reason"}
UNTYPED = "all"
SPLIT_ALIASES: dict[str, str] = {"val": "valid"}
DEFAULT_SPLITS = ("valid", "test")  # the split read when none is named and the folder has several


@dataclass(frozen=True)
class VideoExpression:
    """One query on one video: ``id`` = ``"<video>/<exp_id>"``, ``anno_ids`` its objects in the mask source,
    ``type_name`` its expression type (``TYPE_NAMES``, or ``UNTYPED``: the groups scored apart); ``index`` its
    position in the set."""

    index: int
    id: str
    video: str
    exp_id: str
    query: str
    anno_ids: tuple[str, ...]
    type_name: str


def meta_files(root: Path) -> dict[str, Path]:
    """``{split: meta file}`` of a folder: ``meta_expressions_<split>_.json`` files, and ``meta_expressions.json``
    as the split ``all``. (A split is a meta file; within it, expressions are grouped by type.)"""
    found = {p.name[len(META_PREFIX) + 1 : -len("_.json")]: p for p in sorted(root.glob(f"{META_PREFIX}_*_.json"))}
    if (root / f"{META_PREFIX}.json").is_file():
        found.setdefault(UNTYPED, root / f"{META_PREFIX}.json")
    return found


def is_revos_folder(path: str | Path) -> bool:
    """True for a folder with a ReVOS-style meta file and a mask source (``mask_dict.json`` or ``Annotations``)."""
    root = Path(path)
    return root.is_dir() and bool(meta_files(root)) and ((root / MASK_DICT).is_file() or (root / ANNOTATIONS).is_dir())


def _pick_split(files: dict[str, Path], split: str | None, root: Path) -> str:
    if not files:
        raise UserError(f"{root}: no {META_PREFIX}_<split>_.json or {META_PREFIX}.json")
    if split is not None:
        name = SPLIT_ALIASES.get(split, split)
        if name in files:
            return name
        raise UserError(f"{root} has no split {split!r} (splits: {', '.join(files)})")
    for name in DEFAULT_SPLITS:
        if name in files:
            return name
    if len(files) == 1:
        return next(iter(files))
    raise UserError(f"{root} has splits {', '.join(files)}; choose one with --split")


def _expressions(video: str, entry: dict) -> list[tuple[str, str, list[str], int | None]]:
    """``(exp_id, text, anno ids, type_id)`` of a video entry in the ReVOS (dict) or ReasonVOS (list) form."""
    raw = entry.get("expressions")
    if isinstance(raw, dict):
        return [(str(k), str(e["exp"]), [str(a) for a in e["anno_id"]], e.get("type_id")) for k, e in raw.items()]
    if isinstance(raw, list):  # ReasonVOS: one object per expression, its masks named by source, video and object
        source = entry.get("source", "")
        return [
            (str(e["exp_id"]), str(e.get("exp_text", e.get("exp"))), [f"{source}_{video}_{e['obj_id']}"], None)
            for e in raw
        ]
    raise KeyError("expressions")


class RevosDataset:
    """A ReVOS-layout folder's expressions of one split (see the module docstring); frames and gt read on demand."""

    kind = "revos"

    def __init__(self, root: str | Path, *, split: str | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError(f"dataset folder not found: {self.root}")
        files = meta_files(self.root)
        self.split = _pick_split(files, split, self.root)
        meta_path = files[self.split]
        raw = meta_path.read_bytes()
        try:
            self.videos: dict[str, dict] = json.loads(raw)["videos"]
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"{meta_path}: not a ReVOS meta file ({{'videos': ...}}): {err}") from None
        self.samples: list[VideoExpression] = []
        for video, entry in self.videos.items():
            try:
                items = _expressions(video, entry)
                entry["frames"] = [str(f) for f in entry["frames"]]
            except (KeyError, TypeError) as err:
                raise UserError(f"{meta_path}: video {video!r} lacks {err} (need frames and expressions)") from None
            for exp_id, text, anno_ids, type_id in items:
                name = TYPE_NAMES.get(type_id, UNTYPED)
                self.samples.append(
                    VideoExpression(len(self.samples), f"{video}/{exp_id}", video, exp_id, text, tuple(anno_ids), name)
                )
        mask_path = self.root / MASK_DICT
        if not mask_path.is_file() and not (self.root / ANNOTATIONS).is_dir():
            raise UserError(f"{self.root}: no gt masks ({MASK_DICT} or {ANNOTATIONS}/)")
        digest = hashlib.sha256(raw)
        if mask_path.is_file():
            digest.update(f"{MASK_DICT}:{mask_path.stat().st_size}".encode())
        self.fingerprint = digest.hexdigest()[:16]
        self.source = str(self.root)
        self._mask_dict: dict | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def describe(self) -> dict:
        """JSON-ready provenance: kind, source, split, size (expressions), videos, fingerprint."""
        return provenance(self, videos=len(self.videos))

    def frame_names(self, video: str) -> list[str]:
        return self.videos[video]["frames"]

    def frame_paths(self, video: str) -> list[Path]:
        """The frame files of ``video`` in order; ``UserError`` naming the first one missing."""
        for sub in FRAME_FOLDERS:
            folder = self.root / sub / video if sub else self.root / video
            if folder.is_dir():
                break
        else:
            raise UserError(f"{self.root}: no frame folder for video {video!r} (JPEGImages/{video}/)")
        out = []
        for name in self.frame_names(video):
            path = next((folder / f"{name}{s}" for s in FRAME_SUFFIXES if (folder / f"{name}{s}").is_file()), None)
            if path is None:
                raise UserError(f"{folder}: frame {name!r} not found ({', '.join(FRAME_SUFFIXES)})")
            out.append(path)
        return out

    def frames(self, video: str) -> list:
        """The frames of ``video`` as RGB PIL images (``segzero.images.load_image``, stored pixel order)."""
        from segzero.images import load_image  # noqa: PLC0415

        return [load_image(p, exif=False) for p in self.frame_paths(video)]

    def gt(self, expression: VideoExpression, *, size: tuple[int, int]) -> np.ndarray:
        """(T, H, W) bool gt of ``expression``: per frame the union of its objects' masks; ``size`` = (H, W) of the
        frames. ``ValueError`` when a mask's size or frame count differs from the video's."""
        count = len(self.frame_names(expression.video))
        out = np.zeros((count, *size), dtype=bool)
        for anno_id in expression.anno_ids:
            masks = self._object_masks(expression.video, anno_id, count)
            for t, m in enumerate(masks):
                if m is None:
                    continue
                if m.shape != tuple(size):
                    raise ValueError(f"object {anno_id} frame {t}: mask {m.shape} but the frame is {tuple(size)}")
                out[t] |= m
        return out

    def _object_masks(self, video: str, anno_id: str, count: int) -> list:
        if (self.root / MASK_DICT).is_file():
            if self._mask_dict is None:
                self._mask_dict = json.loads((self.root / MASK_DICT).read_text())
            if anno_id not in self._mask_dict:
                raise ValueError(f"object {anno_id} is not in {MASK_DICT}")
            codes = self._mask_dict[anno_id]
            if len(codes) != count:
                raise ValueError(f"object {anno_id} has {len(codes)} masks for {count} frames")
            return [decode_rle(c) for c in codes]
        folder = self.root / ANNOTATIONS / anno_id
        files = sorted(folder.glob("*.png"))
        if len(files) != count:
            raise ValueError(f"{folder}: {len(files)} mask PNGs for {count} frames")
        from PIL import Image  # noqa: PLC0415

        out = []
        for f in files:
            with Image.open(f) as im:
                arr = np.asarray(im)
            out.append((arr.reshape(arr.shape[:2] + (-1,)) != 0).any(axis=2))
        return out


def decode_rle(code: dict | None) -> np.ndarray | None:
    """(H, W) bool of a COCO RLE (``counts`` compressed as a string, or uncompressed as a list); None for None."""
    if code is None:
        return None
    from pycocotools import mask as mask_utils  # noqa: PLC0415

    height, width = code["size"]
    counts = code["counts"]
    rle = mask_utils.frPyObjects(code, height, width) if isinstance(counts, list) else {
        "size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }  # fmt: skip
    with warnings.catch_warnings():  # pycocotools' __array__ predates numpy 2's copy keyword (harmless)
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


def load_revos(path: str | Path, *, split: str | None = None) -> RevosDataset:
    """Open a ReVOS-layout folder's ``split`` (default: ``valid``, else ``test``, else its only one)."""
    return RevosDataset(path, split=split)


__all__ = [
    "RevosDataset",
    "TYPE_NAMES",
    "VideoExpression",
    "decode_rle",
    "is_revos_folder",
    "load_revos",
    "meta_files",
]
