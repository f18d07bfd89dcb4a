"""Tests for segzero.metrics: per-sample intersection/union, gIoU/cIoU accumulation, LISA's ignore label.

Run: ``pytest tests/test_metrics.py -q``. The counts are checked against a brute-force pixel loop on random
masks (fixed seeds and hypothesis).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segzero.metrics import IoUAccumulator, intersection_union, presence_accuracy, sample_iou, target_area


def brute_force(pred, gt, ignore_value=None):
    """Pixel-by-pixel reference: the definition written out with Python loops."""
    inter = union = 0
    for p, g in zip(np.asarray(pred).ravel().tolist(), np.asarray(gt).ravel().tolist(), strict=True):
        if ignore_value is not None and not isinstance(g, bool) and g == ignore_value:
            continue
        p, g = bool(p), bool(g)
        inter += p and g
        union += p or g
    return inter, union


Z = np.zeros((3, 4), np.uint8)


def m(rows):
    return np.array(rows, np.uint8)


# (pred, gt, ignore_value, expected (I, U))
IU_CASES = [
    # both empty: nothing to count, union 0 (IoU 1 by convention, see sample_iou cases)
    (Z, Z, None, (0, 0)),
    # identical single pixel
    (m([[1, 0], [0, 0]]), m([[1, 0], [0, 0]]), None, (1, 1)),
    # disjoint pixels: no intersection, union of both
    (m([[1, 0], [0, 0]]), m([[0, 0], [0, 1]]), None, (0, 2)),
    # empty prediction: union = gt area (what a failed parse counts as)
    (m([[0, 0], [0, 0]]), m([[1, 1], [0, 1]]), None, (0, 3)),
    # uint8 gt with value 255 and no ignore label: 255 is target like any nonzero value
    (m([[1, 0], [0, 0]]), m([[255, 255], [0, 0]]), None, (1, 2)),
    # LISA protocol: gt 255 pixels excluded from both counts, even where the prediction covers them
    (m([[1, 1], [1, 0]]), m([[1, 255], [0, 0]]), 255, (1, 2)),
    # everything ignored: both counts 0
    (m([[1, 1], [1, 1]]), m([[255, 255], [255, 255]]), 255, (0, 0)),
    # bool masks work directly; the ignore value does not apply to a bool gt
    (np.array([[True, False]]), np.array([[True, True]]), 255, (1, 2)),
    # pred given as 0/255 uint8 (an image-like mask): nonzero = predicted
    (m([[255, 0], [0, 0]]), m([[1, 0], [0, 0]]), None, (1, 1)),
]


@pytest.mark.parametrize(("pred", "gt", "ignore", "expected"), IU_CASES)
def test_intersection_union_table(pred, gt, ignore, expected):
    assert intersection_union(pred, gt, ignore_value=ignore) == expected
    assert brute_force(pred, gt, ignore) == expected


@pytest.mark.parametrize("seed", range(5))
def test_intersection_union_matches_brute_force_random(seed):
    # random masks with ~30% target and ~10% ignored pixels, non-square to catch transposition mistakes
    rng = np.random.default_rng(seed)
    pred = rng.random((23, 37)) < 0.4
    gt = (rng.random((23, 37)) < 0.3).astype(np.uint8)
    gt[rng.random((23, 37)) < 0.1] = 255
    for ignore in (None, 255):
        assert intersection_union(pred, gt, ignore_value=ignore) == brute_force(pred, gt, ignore)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda h: st.integers(1, 12).flatmap(
            lambda w: st.tuples(
                arrays(np.bool_, (h, w)),
                arrays(np.uint8, (h, w), elements=st.sampled_from([0, 1, 255])),
                st.sampled_from([None, 255]),
            )
        )
    )
)
def test_intersection_union_property(data):
    pred, gt, ignore = data
    i, u = intersection_union(pred, gt, ignore_value=ignore)
    assert (i, u) == brute_force(pred, gt, ignore)
    assert 0 <= i <= u <= pred.size
    # symmetric when nothing is ignored
    if ignore is None:
        assert intersection_union(gt, pred) == (i, u)


@pytest.mark.parametrize(
    ("pred", "gt", "match"),
    [
        # shapes differ (e.g. a mask left at the 840 frame): the message names both shapes
        (np.zeros((840, 840), bool), np.zeros((480, 640), bool), r"\(840, 840\).*\(480, 640\)"),
        # a batch of masks instead of one
        (np.zeros((2, 4, 4), bool), np.zeros((4, 4), bool), "2-D"),
        # a float mask (probabilities) must be thresholded by the caller
        (np.zeros((4, 4), np.float32), np.zeros((4, 4), bool), "dtype"),
    ],
)
def test_intersection_union_rejects(pred, gt, match):
    with pytest.raises(ValueError, match=match):
        intersection_union(pred, gt)


@pytest.mark.parametrize(
    ("i", "u", "expected"),
    [
        (0, 0, 1.0),  # empty gt and empty prediction: LISA counts it as a perfect answer
        (0, 5, 0.0),  # complete miss
        (5, 5, 1.0),  # perfect overlap
        (1, 3, 1 / 3),  # plain ratio
    ],
)
def test_sample_iou(i, u, expected):
    assert sample_iou(i, u) == pytest.approx(expected)


@pytest.mark.parametrize(("i", "u"), [(3, 2), (-1, 2), (0, -1)])  # intersection > union / negative counts
def test_sample_iou_rejects_invalid(i, u):
    with pytest.raises(ValueError):
        sample_iou(i, u)


def test_target_area_respects_ignore():
    # 255 is target without the ignore label, excluded with it
    gt = m([[1, 255], [0, 1]])
    assert target_area(gt) == 3
    assert target_area(gt, ignore_value=255) == 2


def test_accumulator_giou_ciou_by_hand():
    # gIoU averages per-sample IoU; cIoU divides the totals, so a big sample weighs more in cIoU
    acc = IoUAccumulator()
    acc.add(1, 2)  # IoU 0.5
    acc.add(90, 100)  # IoU 0.9
    acc.add(0, 10, failed=True)  # a failed parse: I = 0, U = gt area
    acc.add(0, 0, empty_target=True)  # empty gt, empty pred: IoU 1
    s = acc.summary()
    assert s["gIoU"] == pytest.approx((0.5 + 0.9 + 0.0 + 1.0) / 4)
    assert s["cIoU"] == pytest.approx(91 / 112)
    assert s["n"] == 4
    assert s["failed"] == pytest.approx(0.25)
    assert s["empty_targets"] == pytest.approx(0.25)
    assert (s["n_failed"], s["n_empty_targets"]) == (1, 1)


def test_accumulator_matches_brute_force_on_random_dataset():
    # a small random "dataset": the accumulator must equal the definitions computed directly
    rng = np.random.default_rng(7)
    acc = IoUAccumulator()
    ious, inters, unions = [], [], []
    for k in range(30):
        h, w = rng.integers(1, 20, size=2)
        gt = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        gt[rng.random((h, w)) < 0.05] = 255
        pred = None if k % 7 == 0 else rng.random((h, w)) < rng.random()
        acc.add_masks(pred, gt, ignore_value=255)
        i, u = brute_force(np.zeros_like(gt) if pred is None else pred, gt, 255)
        inters.append(i)
        unions.append(u)
        ious.append(1.0 if u == 0 else i / u)
    s = acc.summary()
    assert s["n"] == 30
    assert s["gIoU"] == pytest.approx(sum(ious) / 30)
    assert s["cIoU"] == pytest.approx(sum(inters) / sum(unions))
    assert s["n_failed"] == 5  # k = 0, 7, 14, 21, 28
    assert 0.0 <= s["gIoU"] <= 1.0 and 0.0 <= s["cIoU"] <= 1.0


def test_add_masks_failed_and_empty_target_flags():
    # pred None = failed parse: counted with I = 0, U = gt area, and flagged
    acc = IoUAccumulator()
    assert acc.add_masks(None, m([[1, 1], [0, 255]]), ignore_value=255) == 0.0
    assert (acc.intersection_sum, acc.union_sum, acc.n_failed) == (0, 2, 1)
    # an all-ignored gt is an empty target; an empty prediction on it scores 1
    assert acc.add_masks(np.zeros((2, 2), bool), m([[255, 0], [0, 0]]), ignore_value=255) == 1.0
    assert acc.n_empty_targets == 1


def test_merge_equals_single_pass_and_from_records():
    # sharded evaluation: merging shard accumulators gives the same totals as one pass over all records
    rng = np.random.default_rng(3)
    records = []
    for _ in range(40):
        u = int(rng.integers(0, 50))
        i = int(rng.integers(0, u + 1))
        records.append({"intersection": i, "union": u, "failed": bool(rng.random() < 0.2), "empty_target": u == 0})
    whole = IoUAccumulator.from_records(records)
    shards = [IoUAccumulator.from_records(records[k::3]) for k in range(3)]
    merged = IoUAccumulator()
    for shard in shards:
        assert merged.merge(shard) is merged
    a, b = whole.summary(), merged.summary()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key]), key


def test_from_records_requires_counts():
    # a record without the counts is a bug in the writer: say which record
    with pytest.raises(KeyError, match="record 1"):
        IoUAccumulator.from_records([{"intersection": 1, "union": 2}, {"iou": 0.5}])


def test_summary_edge_cases():
    # no samples: ratios are undefined (NaN), not a fake 0 or 1
    s = IoUAccumulator().summary()
    assert s["n"] == 0 and all(math.isnan(s[k]) for k in ("gIoU", "cIoU", "failed", "empty_targets"))
    # only empty-gt/empty-pred samples: every IoU is 1, so cIoU is 1 as well
    acc = IoUAccumulator()
    acc.add(0, 0, empty_target=True)
    assert acc.summary()["cIoU"] == 1.0 and acc.summary()["gIoU"] == 1.0


@pytest.mark.parametrize(
    ("gt_areas", "pred_areas", "n_acc", "t_acc"),
    [
        ([0, 0], [0, 0], 1.0, math.nan),  # every "nothing here" answered with nothing; no target sample
        ([0, 0], [0, 3], 0.5, math.nan),  # a mask where there is nothing is a false positive
        ([10, 20], [0, 1], math.nan, 0.5),  # an empty prediction on a target is a false negative
        ([0, 10, None], [0, 5, 0], 1.0, 1.0),  # an unreadable gt (None) is in neither group
        ([], [], math.nan, math.nan),  # nothing to count
    ],
)
def test_presence_accuracy(gt_areas, pred_areas, n_acc, t_acc):
    got = presence_accuracy(gt_areas, pred_areas)
    for key, want in (("N-acc", n_acc), ("T-acc", t_acc)):
        assert (math.isnan(got[key]) and math.isnan(want)) or got[key] == want
    assert got["n_no_target"] == sum(g == 0 for g in gt_areas) and got["n_target"] == sum(bool(g) for g in gt_areas)
