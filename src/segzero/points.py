"""Box and two inner points from a binary mask: the Seg-Zero training targets.

Light core: numpy + scipy. Usage::

    from segzero.geometry import to_frame
    from segzero.points import mask_to_object

    obj = mask_to_object(gt_mask)                     # (H, W) mask -> SegObject in the mask's pixels, or None
    obj_840 = to_frame(obj, size=(W, H), frame=840)   # the gt in the model frame (x * 840 / W, y * 840 / H)

Rule, everything in the mask's pixel frame (x = column, y = row, integers):

- box = the mask's extent, an inclusive pixel box ``(x_min, y_min, x_max, y_max)``;
- point 1 = the maximum of the Euclidean distance transform of the mask (the centre of the largest
  inscribed circle). ``border="background"`` (the default): the image border counts as background (the transform
  runs on the mask padded with a one-pixel zero border), so a mask touching the edge is not treated as extending
  beyond it. ``border="open"``: the transform runs on the unpadded mask, as Seg-Zero's data notebook does
  (``scipy.ndimage.distance_transform_edt(m)``), so distances grow towards the image edge and the point of a mask
  touching the edge moves towards it; masks away from the edge get the same points either way;
- point 2 = the distance-transform maximum among the mask pixels whose Euclidean distance to point 1 is
  strictly greater than the median of those distances over all mask pixels (the centre of the largest
  inscribed circle in the far half of the object). When no pixel is strictly farther than the median
  (e.g. a plus-shaped five-pixel mask, or a one-pixel mask) the farthest pixels are the candidates; for a
  one-pixel mask both points are that pixel;
- ties (equal distance-transform values) go to the first pixel in row-major order (smallest y, then
  smallest x), so the result is deterministic.

Both points are mask pixels by construction. The transform runs on the box crop plus a one-pixel zero border
(none on the sides where the crop meets the image edge, with ``border="open"``), which gives the same values as on
the full image (everything outside the box is background).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt

from segzero.answer import SegObject

__all__ = ["BORDERS", "FALLBACKS", "mask_to_object", "mask_to_objects"]

BORDERS: tuple[str, ...] = ("background", "open")  # what lies beyond the image edge for the distance transform
FALLBACKS: tuple[str, ...] = ("farthest", "centroid")  # point 2 when no pixel is farther than the median
CENTROID_HALF_WINDOW = 10  # fallback "centroid": the window [c - 10, c + 10) around the centroid (the notebook's)


def mask_to_object(mask, *, border: str = "background", fallback: str = "farthest", counted=None) -> SegObject | None:
    """Box and two points of a 2-D mask (bool or integer, nonzero = object); None for an empty mask.

    Returns ``SegObject(box=(x1, y1, x2, y2), points=((px1, py1), (px2, py2)))`` with Python ints in the
    mask's pixel frame; ``border`` as in the module docstring. ``fallback``: point 2 when no pixel is farther from
    point 1 than the median: ``"farthest"`` (the best of the farthest pixels) or ``"centroid"`` (Seg-Zero's
    notebook: the distance-transform maximum in a 20 x 20 window at the centroid, moved to the nearest ``counted``
    pixel when it is off the mask). ``counted``: an optional (H, W) bool of the pixels that give the box, the
    median and point 2's candidates (default: the mask's pixels); the notebook counts only pixels that exactly one
    polygon of the annotation covers, while its distance transform sees them all. Raises ``ValueError`` for a
    mask that is not 2-D or an unknown ``border`` / ``fallback``.

    >>> m = np.zeros((7, 9), bool); m[1:6, :3] = True          # a 3 x 5 block on the left edge
    >>> mask_to_object(m).points[0], mask_to_object(m, border="open").points[0]
    ((1, 2), (0, 3))
    """
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {m.shape}")
    m = m != 0
    sel = m if counted is None else m & (np.asarray(counted) != 0)
    rows = np.flatnonzero(m.any(axis=1))
    if not sel.any():
        return None
    cols = np.flatnonzero(m.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])

    crop = m[y0 : y1 + 1, x0 : x1 + 1]
    h, w = m.shape
    open_edge = border == "open"
    top, left = int(not (open_edge and y0 == 0)), int(not (open_edge and x0 == 0))
    bottom, right = int(not (open_edge and y1 == h - 1)), int(not (open_edge and x1 == w - 1))
    padded = np.pad(crop, ((top, bottom), (left, right)))
    dist = distance_transform_edt(padded)[top : top + crop.shape[0], left : left + crop.shape[1]]
    fy, fx = np.nonzero(crop)  # row-major order: ties below resolve to the smallest (y, x)
    first = int(np.argmax(dist[fy, fx]))
    p1 = (int(fx[first]) + x0, int(fy[first]) + y0)

    ys, xs = np.nonzero(sel)  # the counted pixels, image coordinates, row-major
    dt = dist[ys - y0, xs - x0]
    d2 = (xs - p1[0]).astype(np.int64) ** 2 + (ys - p1[1]).astype(np.int64) ** 2  # squared distances
    candidates = d2 > np.median(d2)  # the same order as the distances, so the same median split
    if candidates.any() or fallback == "farthest":
        if not candidates.any():
            candidates = d2 == d2.max()
        second = int(np.flatnonzero(candidates)[np.argmax(dt[candidates])])
        p2 = (int(xs[second]), int(ys[second]))
    else:
        p2 = _centroid_point(m, sel, dist, (y0, x0))
    box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    return SegObject(box=box, points=(p1, p2))


def _centroid_point(m: np.ndarray, sel: np.ndarray, dist: np.ndarray, origin: tuple[int, int]) -> tuple[int, int]:
    """The notebook's fallback point 2: the first distance-transform maximum in the window around the centroid of
    ``sel`` (truncated to ints), or the nearest ``sel`` pixel when that maximum is off the mask ``m``. ``dist``
    is the transform of the crop at ``origin`` (y, x) of ``m``."""
    ys, xs = np.nonzero(sel)
    cy, cx = int(np.mean(ys)), int(np.mean(xs))
    wy0, wx0 = max(0, cy - CENTROID_HALF_WINDOW), max(0, cx - CENTROID_HALF_WINDOW)
    wy1, wx1 = min(m.shape[0], cy + CENTROID_HALF_WINDOW), min(m.shape[1], cx + CENTROID_HALF_WINDOW)
    window = np.zeros((wy1 - wy0, wx1 - wx0))
    oy, ox = origin
    ry0, rx0 = max(wy0, oy), max(wx0, ox)
    ry1, rx1 = min(wy1, oy + dist.shape[0]), min(wx1, ox + dist.shape[1])
    if ry1 > ry0 and rx1 > rx0:
        window[ry0 - wy0 : ry1 - wy0, rx0 - wx0 : rx1 - wx0] = dist[ry0 - oy : ry1 - oy, rx0 - ox : rx1 - ox]
    ky, kx = np.unravel_index(int(np.argmax(window)), window.shape)
    y2, x2 = int(ky) + wy0, int(kx) + wx0
    if not m[y2, x2]:
        nearest = int(np.argmin((xs - x2).astype(np.int64) ** 2 + (ys - y2).astype(np.int64) ** 2))
        y2, x2 = int(ys[nearest]), int(xs[nearest])
    return x2, y2


def mask_to_objects(masks, *, border: str = "background", fallback: str = "farthest") -> list[SegObject | None]:
    """``mask_to_object`` for each mask of an (N, H, W) stack or a sequence of (H, W) masks (multi-object gt)."""
    return [mask_to_object(m, border=border, fallback=fallback) for m in masks]
