"""Box and two inner points from a binary mask: the Seg-Zero training targets.

Light core: numpy + scipy. Usage::

    from segzero.geometry import to_frame
    from segzero.points import mask_to_object

    obj = mask_to_object(gt_mask)                     # (H, W) mask -> SegObject in the mask's pixels, or None
    obj_840 = to_frame(obj, size=(W, H), frame=840)   # the gt in the model frame (x * 840 / W, y * 840 / H)

Rule, everything in the mask's pixel frame (x = column, y = row, integers):

- box = the mask's extent, an inclusive pixel box ``(x_min, y_min, x_max, y_max)``;
- point 1 = the maximum of the Euclidean distance transform of the mask (the centre of the largest
  inscribed circle). The image border counts as background: the transform is computed on the mask padded
  with a one-pixel zero border, so a mask touching the edge is not treated as extending beyond it;
- point 2 = the distance-transform maximum among the mask pixels whose Euclidean distance to point 1 is
  strictly greater than the median of those distances over all mask pixels (the centre of the largest
  inscribed circle in the far half of the object). When no pixel is strictly farther than the median
  (e.g. a plus-shaped five-pixel mask, or a one-pixel mask) the farthest pixels are the candidates; for a
  one-pixel mask both points are that pixel;
- ties (equal distance-transform values) go to the first pixel in row-major order (smallest y, then
  smallest x), so the result is deterministic.

Both points are mask pixels by construction. The transform runs on the box crop plus the one-pixel
border, which gives the same values as on the full padded image (everything outside the box is background).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt

from segzero.answer import SegObject

__all__ = ["mask_to_object", "mask_to_objects"]


def mask_to_object(mask) -> SegObject | None:
    """Box and two points of a 2-D mask (bool or integer, nonzero = object); None for an empty mask.

    Returns ``SegObject(box=(x1, y1, x2, y2), points=((px1, py1), (px2, py2)))`` with Python ints in the
    mask's pixel frame. Raises ``ValueError`` for a mask that is not 2-D.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {m.shape}")
    m = m != 0
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])

    crop = m[y0 : y1 + 1, x0 : x1 + 1]
    dist = distance_transform_edt(np.pad(crop, 1))[1:-1, 1:-1]
    ys, xs = np.nonzero(crop)  # row-major order: ties below resolve to the smallest (y, x)
    dt = dist[ys, xs]

    first = int(np.argmax(dt))
    d2 = (xs - xs[first]).astype(np.int64) ** 2 + (ys - ys[first]).astype(np.int64) ** 2  # squared distances
    candidates = d2 > np.median(d2)  # same order as the distances, so the same median split
    if not candidates.any():
        candidates = d2 == d2.max()
    second = int(np.flatnonzero(candidates)[np.argmax(dt[candidates])])

    p1 = (int(xs[first]) + x0, int(ys[first]) + y0)
    p2 = (int(xs[second]) + x0, int(ys[second]) + y0)
    return SegObject(box=(x0, y0, x1, y1), points=(p1, p2))


def mask_to_objects(masks) -> list[SegObject | None]:
    """``mask_to_object`` for each mask of an (N, H, W) stack or a sequence of (H, W) masks (multi-object gt)."""
    return [mask_to_object(m) for m in masks]
