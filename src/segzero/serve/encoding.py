"""JSON payloads of the HTTP API: a ``SegResult`` -> response dict, masks as COCO RLE and optional base64 PNG.

``mask_rle`` is pycocotools' compressed RLE of the (H, W) mask in original pixels, column-major as COCO
defines it: ``{"size": [h, w], "counts": str}``; decode with
``pycocotools.mask.decode({"size": size, "counts": counts.encode()})`` (or ``rle_to_mask`` here).
``mask_png`` (on request) is an 8-bit grayscale PNG, 0/255, of the same size, base64-encoded.

    payload = result_payload(result, mask_png=True)
    mask = rle_to_mask(payload["mask_rle"])      # (H, W) bool, equal to result.mask
"""

from __future__ import annotations

import base64
import io

import numpy as np


def mask_to_rle(mask: np.ndarray) -> dict:
    """(H, W) bool mask -> ``{"size": [h, w], "counts": str}`` (COCO compressed RLE)."""
    from pycocotools import mask as mask_util

    rle = mask_util.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }


def rle_to_mask(rle: dict) -> np.ndarray:
    """Inverse of ``mask_to_rle``: (h, w) bool array."""
    from pycocotools import mask as mask_util

    counts = rle["counts"]
    return mask_util.decode(
        {"size": list(rle["size"]), "counts": counts.encode() if isinstance(counts, str) else counts}
    ).astype(bool)


def mask_to_png_base64(mask: np.ndarray) -> str:
    """(H, W) bool mask -> base64 of an 8-bit 0/255 grayscale PNG (in memory, nothing written to disk)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.where(np.asarray(mask, dtype=bool), 255, 0).astype(np.uint8), mode="L").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def result_payload(result, *, mask_png: bool = False) -> dict:
    """The ``POST /v1/segment`` body for one ``SegResult``.

    Keys: ``reasoning`` (str | None), ``objects`` (``[{"box": [x1, y1, x2, y2] | None, "points": [[x, y], ...]}]``
    in original pixels), ``scores``, ``mask_rle``, ``mask_area``, ``image_size`` ([w, h]), ``parse_ok``,
    ``parse_error``, ``completion`` (raw model text), ``answer`` (model-frame answer), and ``mask_png`` when asked.
    """
    payload = result.to_json()
    payload["mask_rle"] = mask_to_rle(result.mask)
    if mask_png:
        payload["mask_png"] = mask_to_png_base64(result.mask)
    return payload
