"""Mask metrics for reasoning segmentation: per-sample intersection/union, gIoU and cIoU.

Light core: numpy only. Usage::

    from segzero.metrics import IoUAccumulator, intersection_union

    acc = IoUAccumulator()
    for pred, gt in samples:          # (H, W) bool/uint8 masks at the ORIGINAL image resolution; pred None = failed
        acc.add_masks(pred, gt, ignore_value=255)    # LISA protocol; ignore_value=None for the hub copies
    print(acc.summary())   # {"gIoU": ..., "cIoU": ..., "n": ..., "failed": ..., "empty_targets": ...}

    i, u = intersection_union(pred, gt)    # the per-sample counts, e.g. to store in a JSONL record

Definitions (the ReasonSeg / LISA evaluation protocol):

- per sample, intersection ``I`` and union ``U`` of the predicted and the gt mask, counted in pixels;
- **gIoU** = mean over samples of ``I / U``; **cIoU** = ``sum(I) / sum(U)``;
- empty gt and empty prediction (``U == 0``) -> IoU 1 (LISA's convention);
- a sample whose answer could not be parsed is NOT skipped: it counts as an empty prediction, i.e.
  ``I = 0`` and ``U = gt area`` (``IoUAccumulator.add_masks(None, gt)`` does exactly that). Note that with
  the convention above, a failed parse on an empty-target sample therefore scores IoU 1, like any empty
  prediction would.

Ignore label (LISA's protocol): gt pixels equal to ``ignore_value`` (LISA uses 255 for polygons marked
"ignore") are excluded from both the intersection and the union, whatever the prediction says there. Every
other nonzero gt pixel is target. The hub copies of ReasonSeg turned ignored pixels into target pixels;
use ``ignore_value=None`` for them and say in the report which protocol was used. A bool gt mask has no
ignore label (``ignore_value`` is not applied to it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["IGNORE_VALUE", "IoUAccumulator", "intersection_union", "presence_accuracy", "sample_iou", "target_area"]

IGNORE_VALUE = 255
"""The ignore label of LISA's protocol: gt pixels of this value (polygons marked "ignore") count in neither the
intersection nor the union."""


def _as_mask(name: str, mask) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"{name} mask must be 2-D (H, W), got shape {arr.shape}")
    if not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} mask must be bool or integer (e.g. uint8), got dtype {arr.dtype}")
    return arr


def _target_and_valid(gt: np.ndarray, ignore_value: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (target pixels, valid pixels or None when nothing is ignored) for a gt mask."""
    if ignore_value is None or gt.dtype == np.bool_:
        return gt != 0, None
    valid = gt != ignore_value
    return (gt != 0) & valid, valid


def intersection_union(pred, gt, *, ignore_value: int | None = None) -> tuple[int, int]:
    """Intersection and union (pixel counts) of a predicted and a gt mask of the same shape.

    ``pred``: (H, W) bool or integer array; nonzero = predicted object. ``gt``: (H, W) bool or integer
    array; nonzero and ``!= ignore_value`` = target; ``== ignore_value`` = excluded from both counts.
    Both at the original image resolution. Raises ``ValueError`` (naming both shapes) when the shapes
    differ, or when an array is not 2-D or not bool/integer.
    """
    p = _as_mask("pred", pred)
    g = _as_mask("gt", gt)
    if p.shape != g.shape:
        raise ValueError(f"pred and gt masks differ in shape: pred {p.shape} vs gt {g.shape}")
    p = p != 0
    target, valid = _target_and_valid(g, ignore_value)
    if valid is not None:
        p = p & valid
    intersection = int(np.count_nonzero(p & target))
    union = int(np.count_nonzero(p | target))
    return intersection, union


def target_area(gt, *, ignore_value: int | None = None) -> int:
    """Number of target pixels of a gt mask (nonzero and not ``ignore_value``): the union of an empty prediction."""
    target, _ = _target_and_valid(_as_mask("gt", gt), ignore_value)
    return int(np.count_nonzero(target))


def presence_accuracy(gt_areas, pred_areas) -> dict:
    """GRES's no-target accuracies (gRefCOCO; ReLA's evaluator) from per-sample target and predicted areas (pixels).

    A sample whose target is empty is right when the prediction is empty too (a true negative, else a false
    positive); a sample with a target is right when the prediction is not empty (a true positive, else a false
    negative). ``N-acc`` = TN / (TN + FP), ``T-acc`` = TP / (TP + FN), NaN where a group has no sample. Samples whose
    gt area is ``None`` (the gt could not be read) are in neither group. A failed answer is an empty prediction.

    >>> presence_accuracy([0, 0, 50, 80, None], [0, 12, 40, 0, 5])
    {'N-acc': 0.5, 'T-acc': 0.5, 'n_no_target': 2, 'n_target': 2}
    """
    pairs = [(g, p) for g, p in zip(gt_areas, pred_areas, strict=True) if g is not None]
    no_target = [p == 0 for g, p in pairs if g == 0]
    target = [p > 0 for g, p in pairs if g > 0]
    return {
        "N-acc": sum(no_target) / len(no_target) if no_target else math.nan,
        "T-acc": sum(target) / len(target) if target else math.nan,
        "n_no_target": len(no_target),
        "n_target": len(target),
    }


def sample_iou(intersection: int, union: int) -> float:
    """Per-sample IoU ``intersection / union``; ``union == 0`` (empty gt and empty prediction) -> 1.0.

    Raises ``ValueError`` for negative counts or ``intersection > union`` (not a valid pair).
    """
    if intersection < 0 or union < 0 or intersection > union:
        raise ValueError(f"invalid intersection/union pair: ({intersection}, {union})")
    if union == 0:
        return 1.0
    return intersection / union


@dataclass
class IoUAccumulator:
    """Running gIoU / cIoU over samples; shards merge exactly (integer pixel sums, float IoU sum).

    Fields are running totals; build one empty (``IoUAccumulator()``), then ``add`` / ``add_masks``, or
    ``from_records`` from per-sample records (e.g. the lines of an evaluation JSONL), and ``merge`` shards.
    """

    n: int = 0
    """number of samples added"""
    iou_sum: float = 0.0
    """sum of per-sample IoUs (gIoU = iou_sum / n)"""
    intersection_sum: int = 0
    """total intersection in pixels"""
    union_sum: int = 0
    """total union in pixels"""
    n_failed: int = 0
    """samples whose answer could not be parsed (still counted, as an empty prediction)"""
    n_empty_targets: int = 0
    """samples whose gt mask has no target pixel"""

    def add(self, intersection: int, union: int, *, failed: bool = False, empty_target: bool = False) -> float:
        """Add one sample's pixel counts; returns its IoU (see ``sample_iou``)."""
        iou = sample_iou(int(intersection), int(union))
        self.n += 1
        self.iou_sum += iou
        self.intersection_sum += int(intersection)
        self.union_sum += int(union)
        self.n_failed += bool(failed)
        self.n_empty_targets += bool(empty_target)
        return iou

    def add_masks(self, pred, gt, *, ignore_value: int | None = None) -> float:
        """Add one sample from its masks; ``pred=None`` means the answer could not be parsed (a failed sample).

        The empty-target flag is derived from ``gt``. Returns the sample's IoU.
        """
        if pred is None:
            area = target_area(gt, ignore_value=ignore_value)
            return self.add(0, area, failed=True, empty_target=area == 0)
        i, u = intersection_union(pred, gt, ignore_value=ignore_value)
        return self.add(i, u, empty_target=target_area(gt, ignore_value=ignore_value) == 0)

    def merge(self, other: IoUAccumulator) -> IoUAccumulator:
        """Add another accumulator's totals into this one (in place) and return ``self``."""
        self.n += other.n
        self.iou_sum += other.iou_sum
        self.intersection_sum += other.intersection_sum
        self.union_sum += other.union_sum
        self.n_failed += other.n_failed
        self.n_empty_targets += other.n_empty_targets
        return self

    @classmethod
    def from_records(cls, records: Iterable[Mapping]) -> IoUAccumulator:
        """Build from per-sample records: mappings with ``intersection`` and ``union`` (ints), and optional
        ``failed`` and ``empty_target`` (bools, default False). Other keys are ignored. A record without
        ``intersection``/``union`` raises ``KeyError`` naming the record's position."""
        acc = cls()
        for k, rec in enumerate(records):
            if "intersection" not in rec or "union" not in rec:
                raise KeyError(f"record {k} lacks 'intersection' or 'union': keys {sorted(rec)}")
            acc.add(
                rec["intersection"],
                rec["union"],
                failed=bool(rec.get("failed", False)),
                empty_target=bool(rec.get("empty_target", False)),
            )
        return acc

    def summary(self) -> dict:
        """``{"gIoU", "cIoU", "n", "failed", "empty_targets", "n_failed", "n_empty_targets"}``.

        ``gIoU`` and ``cIoU`` are in [0, 1] (not percent); ``failed`` and ``empty_targets`` are fractions of
        ``n`` in [0, 1]; ``n_failed`` / ``n_empty_targets`` are the counts. ``cIoU`` is 1.0 when every sample
        had a zero union (consistent with the per-sample convention). With ``n == 0`` every ratio is NaN.
        """
        if self.n == 0:
            ratios = dict.fromkeys(("gIoU", "cIoU", "failed", "empty_targets"), math.nan)
        else:
            ratios = {
                "gIoU": self.iou_sum / self.n,
                "cIoU": self.intersection_sum / self.union_sum if self.union_sum else 1.0,
                "failed": self.n_failed / self.n,
                "empty_targets": self.n_empty_targets / self.n,
            }
        return {
            "gIoU": ratios["gIoU"],
            "cIoU": ratios["cIoU"],
            "n": self.n,
            "failed": ratios["failed"],
            "empty_targets": ratios["empty_targets"],
            "n_failed": self.n_failed,
            "n_empty_targets": self.n_empty_targets,
        }
