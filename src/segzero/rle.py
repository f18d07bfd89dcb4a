"""Masks as COCO compressed run-length codes, JSON-ready: how eval records and training rows store a mask.

``encode_mask`` / ``decode_mask`` wrap pycocotools (imported when called, so this module stays cheap to import).
A code is ``{"size": [H, W], "counts": str}``; the mask is (H, W) bool in the pixel frame of the image it belongs to.

>>> m = np.zeros((3, 4), bool); m[1, 1:3] = True
>>> code = encode_mask(m)
>>> code["size"], bool((decode_mask(code) == m).all())
([3, 4], True)
"""

from __future__ import annotations

import warnings

import numpy as np

MASK_COLUMN = "mask_rle"
"""Column of a training row that holds its gt mask as a code, in the row image's pixels (the mask-aware reward's)."""


def encode_mask(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a (H, W) bool mask: ``{"size": [H, W], "counts": str}`` (JSON-ready)."""
    from pycocotools import mask as mask_utils  # noqa: PLC0415

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask).astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_mask(rle: dict | None) -> np.ndarray | None:
    """Inverse of ``encode_mask``: (H, W) bool, or None for None."""
    if rle is None:
        return None
    from pycocotools import mask as mask_utils  # noqa: PLC0415

    with warnings.catch_warnings():  # pycocotools' __array__ predates numpy 2's copy keyword (harmless)
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)
