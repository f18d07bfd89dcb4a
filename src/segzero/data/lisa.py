"""Reader for LISA's ReasonSeg release folders (``train/``, ``val/``, ``test/`` of ``.jpg`` + ``.json``).

Each image ``NAME.jpg`` has an annotation ``NAME.json`` (labelme style)::

    {"text": ["sentence", ...], "is_sentence": true,
     "shapes": [{"label": "target" | "ignore" | "flag" | ..., "points": [[x, y], ...], ...}, ...]}

The gt mask is rasterised exactly as LISA's ``get_mask_from_json`` does, in original pixels (H, W) uint8:
polygons (points truncated to int32) are drawn largest area first, so smaller ones win where they overlap;
a label containing "ignore" paints ``IGNORE_VALUE`` (255, excluded from both intersection and union under
LISA's protocol), any other label paints 1 (target); label "flag" (deprecated) is skipped.

Usage::

    from segzero.data.lisa import load_lisa_folder
    ds = load_lisa_folder("ReasonSeg", split="val")        # or the split folder itself
    for item in ds:
        mask = ds.mask(item)                               # (H, W) uint8 in {0, 1, 255}
        print(item.image_path, item.sentences[0], mask.shape)

LISA's evaluation (and the hub copies ``Ricky06662/ReasonSeg_*``) use the first sentence of each image;
``sentences`` keeps them all. Imports only stdlib, numpy, PIL and OpenCV.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segzero.errors import UserError
from segzero.metrics import IGNORE_VALUE

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class LisaItem:
    """One annotated image: its path, annotation path, query sentences and the ``is_sentence`` flag."""

    image_id: str
    image_path: Path
    json_path: Path
    sentences: tuple[str, ...]
    is_sentence: bool


def read_annotation(json_path: str | Path) -> dict:
    """Read one LISA json (utf-8, falling back to cp1252 as LISA does). Raises ``UserError`` naming the file."""
    path = Path(json_path)
    try:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            text = path.read_text(encoding="cp1252")
        anno = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read LISA annotation {path}: {err}") from err
    for key in ("text", "shapes"):
        if key not in anno:
            raise UserError(f"LISA annotation {path} has no {key!r} field")
    return anno


def polygons_to_mask(shapes: list[dict], *, height: int, width: int, ignore_value: int = IGNORE_VALUE) -> np.ndarray:
    """Rasterise LISA ``shapes`` into a (height, width) uint8 mask: 0 background, 1 target, ``ignore_value``.

    Same order and drawing calls as LISA (outline + fill, largest polygon first).
    """
    import cv2  # noqa: PLC0415 (OpenCV is only needed here)

    valid, areas = [], []
    for shape in shapes:
        if str(shape.get("label", "")).lower() == "flag":
            continue
        pts = np.array([shape["points"]], dtype=np.int32)
        tmp = np.zeros((height, width), dtype=np.uint8)
        cv2.polylines(tmp, pts, True, 1, 1)
        cv2.fillPoly(tmp, pts, 1)
        areas.append(int(tmp.sum()))
        valid.append((shape, pts))
    mask = np.zeros((height, width), dtype=np.uint8)
    for k in np.argsort(areas, kind="stable")[::-1]:
        shape, pts = valid[int(k)]
        value = ignore_value if "ignore" in str(shape.get("label", "")).lower() else 1
        cv2.polylines(mask, pts, True, value, 1)
        cv2.fillPoly(mask, pts, value)
    return mask


class LisaFolder:
    """The annotated images of one ReasonSeg split folder, sorted by file name."""

    def __init__(self, root: Path, items: list[LisaItem]):
        self.root = root
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[LisaItem]:
        return iter(self.items)

    def __getitem__(self, i: int) -> LisaItem:
        return self.items[i]

    def mask(self, item: LisaItem, *, size: tuple[int, int] | None = None) -> np.ndarray:
        """The gt mask of ``item``: (H, W) uint8 in {0, 1, 255}. ``size`` = (W, H) skips opening the image."""
        if size is None:
            from PIL import Image  # noqa: PLC0415

            with Image.open(item.image_path) as im:
                size = im.size
        anno = read_annotation(item.json_path)
        try:
            return polygons_to_mask(anno["shapes"], height=size[1], width=size[0])
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"bad polygon in {item.json_path}: {err}") from err


def is_lisa_folder(path: str | Path) -> bool:
    """True when ``path`` holds image + json pairs directly or in ``train``/``val``/``test`` sub-folders."""
    path = Path(path)
    if not path.is_dir():
        return False
    candidates = [path] + [path / s for s in ("train", "val", "test")]
    return any(c.is_dir() and any(c.glob("*.json")) and _images(c) for c in candidates)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def load_lisa_folder(path: str | Path, split: str | None = None) -> LisaFolder:
    """Index a ReasonSeg folder: ``path/<split>/`` when ``split`` is given (or when ``path`` has only split
    sub-folders and ``split`` is None -> ``test`` if present), else ``path`` itself.

    Every image needs its ``.json`` next to it; a missing one raises ``UserError`` naming it. Annotations are read
    once here for the sentences; masks are rasterised on demand by ``LisaFolder.mask``.
    """
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"LISA folder not found: {root}")
    if split is not None:
        folder = root / split
        if not folder.is_dir():
            raise UserError(f"LISA folder {root} has no split folder {split!r}")
    elif _images(root):
        folder = root
    else:
        splits = [s for s in ("test", "val", "train") if (root / s).is_dir()]
        if not splits:
            raise UserError(f"no images in LISA folder {root} (expected .jpg + .json or train/val/test)")
        folder = root / splits[0]
    images = _images(folder)
    if not images:
        raise UserError(f"no images in LISA folder {folder}")
    items = []
    for image_path in images:
        json_path = image_path.with_suffix(".json")
        if not json_path.is_file():
            raise UserError(f"LISA annotation missing: {json_path}")
        anno = read_annotation(json_path)
        text = anno["text"]
        sentences = tuple(str(s) for s in (text if isinstance(text, list) else [text]))
        if not sentences:
            raise UserError(f"LISA annotation {json_path} has no query sentence")
        items.append(LisaItem(image_path.stem, image_path, json_path, sentences, bool(anno.get("is_sentence", False))))
    return LisaFolder(folder, items)
