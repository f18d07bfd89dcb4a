"""J (region similarity) and F (contour accuracy) on hand-made masks whose scores are worked out by hand, plus F
against a brute-force distance check on random masks.

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_video_metrics.py``
"""

from __future__ import annotations

import numpy as np
import pytest

from segzero.eval.video_metrics import (
    boundary_map,
    contour_accuracy,
    region_similarity,
    tolerance_px,
    video_scores,
)

SIZE = (100, 100)  # tolerance: ceil(0.008 * 141.4) = 2 px


def square(top: int, left: int, side: int, shape=SIZE) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[top : top + side, left : left + side] = True
    return m


EMPTY = np.zeros(SIZE, dtype=bool)
A = square(20, 20, 20)

J_CASES = [
    (A, A, 1.0),  # identical
    (EMPTY, EMPTY, 1.0),  # both empty: nothing to get wrong
    (EMPTY, A, 0.0),  # nothing predicted where the object is
    (A, EMPTY, 0.0),  # something predicted where there is nothing
    (square(20, 21, 20), A, 380 / 420),  # one column off: I = 20 x 19, U = 20 x 21
    (square(20, 20, 10), A, 100 / 400),  # a quarter of it
    (square(60, 60, 20), A, 0.0),  # disjoint
]


@pytest.mark.parametrize(("pred", "gt", "want"), J_CASES)
def test_region_similarity(pred, gt, want):
    assert region_similarity(pred, gt) == pytest.approx(want)


F_CASES = [
    (A, A, 1.0),  # identical boundaries
    (EMPTY, EMPTY, 1.0),  # both empty
    (EMPTY, A, 0.0),  # no predicted boundary: recall 0
    (A, EMPTY, 0.0),  # no gt boundary: precision 0
    # 2 px bigger on every side: every gt boundary pixel has a predicted one 2 px away (R = 1); of the 96 predicted
    # ones, 3 at each corner are (2, 2), (2, 1) or (1, 2) px from the gt ring, outside the 2 px disc (P = 84/96)
    (square(18, 18, 24), A, 14 / 15),
    (square(19, 19, 22), A, 1.0),  # 1 px bigger on every side: corners (1, 1) px away, inside the disc
    (square(17, 17, 26), A, 0.0),  # 3 px bigger on every side: no boundary pixel within 2 px
    (square(60, 60, 20), A, 0.0),  # far apart
    (A | square(60, 60, 20), A, 2 / 3),  # the object plus an equal square elsewhere: P = 1/2, R = 1
]


@pytest.mark.parametrize(("pred", "gt", "want"), F_CASES)
def test_contour_accuracy(pred, gt, want):
    assert contour_accuracy(pred, gt) == pytest.approx(want)


def test_boundary_map_of_a_square_is_the_ring_half_a_pixel_towards_the_origin():
    # a square on rows/cols 20..39 has its boundary on the ring of rows/cols 19..39
    ring = square(19, 19, 21) & ~square(20, 20, 19)
    assert (boundary_map(A) == ring).all()


def test_tolerance_grows_with_the_diagonal():
    # DAVIS's 480p frames: 8 px; explicit pixels when bound_frac >= 1
    assert [tolerance_px((480, 854)), tolerance_px((100, 100)), tolerance_px((10, 10)), tolerance_px(SIZE, 5)] == [
        8,
        2,
        1,
        5,
    ]


def _brute_f(pred: np.ndarray, gt: np.ndarray, radius: int) -> float:
    """F by explicit distances between boundary pixels (no dilation)."""
    pb, gb = np.argwhere(boundary_map(pred)), np.argwhere(boundary_map(gt))
    if len(pb) == 0 or len(gt) == 0:
        raise AssertionError("the random cases have both boundaries")
    d2 = ((pb[:, None, :] - gb[None, :, :]) ** 2).sum(-1)
    precision = float((d2.min(axis=1) <= radius**2).mean())
    recall = float((d2.min(axis=0) <= radius**2).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("seed", range(6))
def test_contour_accuracy_matches_brute_force_distances(seed):
    # blobs of random rectangles, the prediction a jittered copy
    rng = np.random.default_rng(seed)
    shape = (40, 56)
    gt = np.zeros(shape, dtype=bool)
    pred = np.zeros(shape, dtype=bool)
    for _ in range(3):
        y, x = rng.integers(2, 28), rng.integers(2, 40)
        h, w = rng.integers(4, 12), rng.integers(4, 14)
        gt[y : y + h, x : x + w] = True
        dy, dx = rng.integers(-3, 4, size=2)
        pred[max(0, y + dy) : y + dy + h, max(0, x + dx) : x + dx + w] = True
    want = _brute_f(pred, gt, tolerance_px(shape))
    assert contour_accuracy(pred, gt) == pytest.approx(want)


def test_video_scores_average_every_frame():
    # frame 0 exact (J 1, F 1), frame 1 empty where the object is (0, 0), frame 2 both empty (1, 1)
    preds, gts = [A, EMPTY, EMPTY], [A, A, EMPTY]
    out = video_scores(preds, gts)
    assert out["J_frames"] == [1.0, 0.0, 1.0] and out["F_frames"] == [1.0, 0.0, 1.0]
    assert (out["J"], out["F"], out["J&F"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))


@pytest.mark.parametrize(
    ("preds", "gts"),
    [
        ([A], [A, A]),  # fewer predicted frames than gt frames
        ([], []),  # no frames at all
        ([A[:50]], [A]),  # a frame of another size
    ],
)
def test_video_scores_refuses_mismatched_frames(preds, gts):
    with pytest.raises(ValueError):
        video_scores(preds, gts)
