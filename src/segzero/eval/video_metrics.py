"""Video object segmentation scores: J (region similarity) and F (contour accuracy), the DAVIS / ReVOS definitions.

Per frame, for a predicted and a gt (H, W) mask (bool or 0/1):

- **J** = ``|pred & gt| / |pred | gt|`` (the Jaccard index); both masks empty -> 1;
- **F** = the boundary F-measure: each mask's boundary is a one-pixel-wide map (``boundary_map``), a predicted
  boundary pixel counts as matched when a gt boundary pixel lies within the tolerance of it (and the other way
  round for recall); precision = matched predicted / predicted boundary pixels, recall = matched gt / gt boundary
  pixels, F = ``2 P R / (P + R)``. The tolerance is ``ceil(bound_frac * diagonal)`` pixels (``bound_frac`` = 0.008
  as in DAVIS, a disc of that radius; a ``bound_frac`` >= 1 is taken as pixels). Empty boundaries: both empty -> F 1;
  only the prediction's empty -> precision 1, recall 0 -> F 0; only the gt's empty -> precision 0 -> F 0.

A video expression scores the mean of its frames' J and of its frames' F, every frame counted (frames where the
object is absent included, as ReVOS's evaluation counts them); J&F is their mean.

Usage::

    from segzero.eval.video_metrics import region_similarity, contour_accuracy, video_scores
    j = region_similarity(pred, gt)           # float in [0, 1]
    f = contour_accuracy(pred, gt)            # float in [0, 1]
    scores = video_scores(pred_frames, gt_frames)   # {"J": ..., "F": ..., "J&F": ..., "J_frames": [...], ...}

numpy and OpenCV (its dilation) only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BOUND_FRAC = 0.008
"""DAVIS's boundary tolerance: a fraction of the image diagonal (rounded up to whole pixels)."""


def _binary(name: str, mask) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"{name} mask must be 2-D (H, W), got shape {arr.shape}")
    return arr != 0


def _pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    p, g = _binary("pred", pred), _binary("gt", gt)
    if p.shape != g.shape:
        raise ValueError(f"pred and gt masks differ in shape: pred {p.shape} vs gt {g.shape}")
    return p, g


def region_similarity(pred, gt) -> float:
    """J of one frame: intersection over union of two (H, W) masks; 1.0 when both are empty."""
    p, g = _pair(pred, gt)
    union = int(np.count_nonzero(p | g))
    return 1.0 if union == 0 else int(np.count_nonzero(p & g)) / union


def boundary_map(mask) -> np.ndarray:
    """(H, W) bool one-pixel boundary of a mask (DAVIS's ``seg2bmap`` at the mask's own size).

    A pixel is on the boundary when it differs from its right, lower or lower-right neighbour; in the last row
    only the right neighbour counts and in the last column only the lower one; the bottom-right pixel never is.
    The boundary thus sits half a pixel towards the origin from the true edge, the same for every mask.
    """
    m = _binary("mask", mask)
    right = np.zeros_like(m)
    down = np.zeros_like(m)
    diag = np.zeros_like(m)
    right[:, :-1] = m[:, 1:]
    down[:-1, :] = m[1:, :]
    diag[:-1, :-1] = m[1:, 1:]
    out = (m ^ right) | (m ^ down) | (m ^ diag)
    out[-1, :] = m[-1, :] ^ right[-1, :]
    out[:, -1] = m[:, -1] ^ down[:, -1]
    out[-1, -1] = False
    return out


def tolerance_px(shape: tuple[int, int], bound_frac: float = BOUND_FRAC) -> int:
    """Boundary tolerance in pixels for an image of ``shape`` (H, W): ``bound_frac`` itself when >= 1, else
    ``ceil(bound_frac * sqrt(H**2 + W**2))``.

    >>> tolerance_px((480, 854)), tolerance_px((100, 100)), tolerance_px((100, 100), 3)
    (8, 2, 3)
    """
    if bound_frac >= 1:
        return int(bound_frac)
    return int(math.ceil(bound_frac * math.hypot(*shape)))


def disc(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) uint8 disc: 1 where ``dx**2 + dy**2 <= r**2`` (the structuring element of the tolerance)."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return ((xx**2 + yy**2) <= radius**2).astype(np.uint8)


def _dilate(bmap: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    import cv2  # noqa: PLC0415 - imported where it is used

    return cv2.dilate(bmap.astype(np.uint8), kernel) > 0


def contour_accuracy(pred, gt, *, bound_frac: float = BOUND_FRAC) -> float:
    """F of one frame: the boundary F-measure of two (H, W) masks (see the module docstring)."""
    p, g = _pair(pred, gt)
    pb, gb = boundary_map(p), boundary_map(g)
    n_pred, n_gt = int(pb.sum()), int(gb.sum())
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    kernel = disc(tolerance_px(p.shape, bound_frac))
    precision = int(np.count_nonzero(pb & _dilate(gb, kernel))) / n_pred
    recall = int(np.count_nonzero(gb & _dilate(pb, kernel))) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def video_scores(pred_frames: Sequence, gt_frames: Sequence, *, bound_frac: float = BOUND_FRAC) -> dict:
    """Scores of one expression over its frames (equal counts of (H, W) masks): ``J``, ``F`` (frame means),
    ``J&F`` (their mean) and the per-frame ``J_frames`` / ``F_frames``. ``ValueError`` for other counts."""
    if len(pred_frames) != len(gt_frames) or not gt_frames:
        raise ValueError(f"need as many predicted as gt frames (> 0), got {len(pred_frames)} and {len(gt_frames)}")
    js = [region_similarity(p, g) for p, g in zip(pred_frames, gt_frames, strict=True)]
    fs = [contour_accuracy(p, g, bound_frac=bound_frac) for p, g in zip(pred_frames, gt_frames, strict=True)]
    j, f = float(np.mean(js)), float(np.mean(fs))
    return {"J": j, "F": f, "J&F": (j + f) / 2, "J_frames": js, "F_frames": fs}


__all__ = [
    "BOUND_FRAC",
    "boundary_map",
    "contour_accuracy",
    "disc",
    "region_similarity",
    "tolerance_px",
    "video_scores",
]
