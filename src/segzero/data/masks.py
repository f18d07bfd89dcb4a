"""One object's gt mask from any form the data builder accepts: a mask image file or a COCO segmentation.

Forms (all in original-image pixels, the image's stored pixel order: no EXIF rotation, as COCO's annotations):

- ``MaskFile(path, value)``: a PNG (or any image PIL reads). ``value`` None: every nonzero pixel is the object
  (for RGB/RGBA, a pixel with any nonzero colour channel); an int: the pixels of that value in a one-channel mask
  (``L``, ``P`` palette index, ``I``/``I;16``: masks holding several object ids); a tuple: the pixels of that
  colour (its first ``len(value)`` channels) in a multi-channel one.
- a COCO segmentation (polygon list, uncompressed or compressed RLE): ``segzero.data.refer.decode_segmentation``.

``decode_object`` returns ``(covers, skipped)``: a (H, W) uint8 mask of how many parts cover each pixel (0/1 for a
mask file) and how many polygons were skipped for having fewer than 3 points. Problems raise ``BadAnnotation`` with
a stable reason: ``missing_mask``, ``unreadable_mask``, ``mask_size_mismatch``, ``bad_mask_value``, ``empty_mask``
(and ``decode_segmentation``'s own). Imports only numpy, PIL and pycocotools.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segzero.data.refer import BadAnnotation, decode_segmentation


@dataclass(frozen=True)
class MaskFile:
    """A mask image file (absolute path) and the pixel value (or colour) of the object in it; None: nonzero."""

    path: str
    value: int | tuple[int, ...] | None = None


def read_mask_file(spec: MaskFile, height: int, width: int) -> np.ndarray:
    """The object's (height, width) bool mask from ``spec``; raises ``BadAnnotation`` (see the module docstring)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(spec.path)
    if not path.is_file():
        raise BadAnnotation("missing_mask", str(path))
    try:
        with Image.open(path) as im:
            im.load()
            size, mode = im.size, im.mode
            arr = np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
        raise BadAnnotation("unreadable_mask", f"{path.name}: {err}") from err
    if size != (width, height):
        raise BadAnnotation("mask_size_mismatch", f"{path.name} is {size[0]}x{size[1]}, the image {width}x{height}")
    channels = arr.shape[2] if arr.ndim == 3 else 1
    if spec.value is None:
        colour = arr[..., : max(1, channels - 1)] if mode in ("LA", "RGBA", "PA") else arr  # alpha is no colour
        mask = colour != 0 if colour.ndim == 2 else (colour != 0).any(axis=2)
    elif isinstance(spec.value, int) and channels == 1:
        mask = arr == spec.value
    elif isinstance(spec.value, tuple) and channels >= len(spec.value) > 1:
        mask = (arr[..., : len(spec.value)] == np.asarray(spec.value)).all(axis=2)
    else:
        raise BadAnnotation("bad_mask_value", f"mask_value {spec.value!r} for a {mode} mask ({channels} channel(s))")
    if not mask.any():
        raise BadAnnotation("empty_mask", f"{path.name}: no object pixel")
    return mask


def decode_object(segmentation, height: int, width: int) -> tuple[np.ndarray, int]:
    """``(covers, skipped)`` of one object (see the module docstring)."""
    if isinstance(segmentation, MaskFile):
        return read_mask_file(segmentation, height, width).astype(np.uint8), 0
    return decode_segmentation(segmentation, height, width, count=True)
