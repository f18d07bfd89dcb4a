"""Tests for segzero.geometry: inclusive-pixel IoU/L1, point tests, point matching, frame mapping.

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_geometry.py``
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segzero.answer import SegObject
from segzero.geometry import (
    DEFAULT_FRAME,
    box_area,
    box_iou,
    box_l1,
    frame_size,
    matched_point_distance,
    point_in_box,
    to_frame,
    to_original,
)

IOU_CASES = [
    # identical boxes overlap fully
    ((0, 0, 9, 9), (0, 0, 9, 9), False, 1.0),
    # half overlap along x: inter 5x10=50, union 150 (inclusive pixels, not 4.5-wide)
    ((0, 0, 9, 9), (5, 0, 14, 9), False, 50 / 150),
    # disjoint by one pixel gap: no intersection
    ((0, 0, 9, 9), (10, 0, 19, 9), False, 0.0),
    # sharing one pixel column counts 1 column under inclusive pixels ...
    ((0, 0, 9, 9), (9, 0, 18, 9), False, 10 / 190),
    # ... but 0 under Seg-Zero's strict-overlap reference rule
    ((0, 0, 9, 9), (9, 0, 18, 9), True, 0.0),
    # strict rule agrees with inclusive rule when overlap is wider than one pixel
    ((0, 0, 9, 9), (5, 0, 14, 9), True, 50 / 150),
    # a single-pixel box equals itself (area 1, not 0)
    ((3, 3, 3, 3), (3, 3, 3, 3), False, 1.0),
    # nested box: IoU = small area / big area
    ((0, 0, 99, 99), (0, 0, 49, 99), False, 0.5),
    # float coordinates are used as given
    ((0.5, 0, 10.5, 10), (0, 0, 10, 10), False, (10.5 * 11) / (11 * 11 + 11 * 11 - 10.5 * 11)),
    # an inverted box (x2 < x1 by more than a pixel) has no intersection
    ((10, 10, 0, 0), (0, 0, 10, 10), False, 0.0),
    # degenerate zero-area box (x2 = x1 - 1): union would be the other box, intersection 0
    ((5, 5, 4, 4), (0, 0, 9, 9), False, 0.0),
]


@pytest.mark.parametrize(("a", "b", "strict", "expected"), IOU_CASES)
def test_box_iou_table(a, b, strict, expected):
    assert box_iou(a, b, strict_overlap=strict) == pytest.approx(expected, abs=1e-12)
    assert box_iou(b, a, strict_overlap=strict) == pytest.approx(expected, abs=1e-12)


def test_iou_exactly_half_is_representable():
    # the reward boundary case: this pair has IoU exactly 0.5 in floating point
    assert box_iou((0, 0, 99, 99), (0, 0, 49, 99)) == 0.5


L1_CASES = [
    # identical boxes
    ((0, 0, 10, 10), (0, 0, 10, 10), 0.0),
    # shift by 10 on every coordinate: mean 10 exactly (the reward boundary)
    ((0, 0, 10, 10), (10, 10, 20, 20), 10.0),
    # only one coordinate differs: mean is a quarter of it
    ((0, 0, 10, 10), (0, 0, 10, 50), 10.0),
    # floats
    ((0.5, 0, 10, 10), (0, 0, 10, 10), 0.125),
]


@pytest.mark.parametrize(("a", "b", "expected"), L1_CASES)
def test_box_l1_table(a, b, expected):
    assert box_l1(a, b) == expected


POINT_CASES = [
    # strictly inside
    ((5, 5), (0, 0, 10, 10), True),
    # each edge and corner counts as inside
    ((0, 5), (0, 0, 10, 10), True),
    ((10, 10), (0, 0, 10, 10), True),
    ((5, 0), (0, 0, 10, 10), True),
    # just outside by a fraction
    ((10.01, 5), (0, 0, 10, 10), False),
    ((5, -0.5), (0, 0, 10, 10), False),
    # an inverted box contains nothing
    ((5, 5), (10, 10, 0, 0), False),
]


@pytest.mark.parametrize(("p", "box", "expected"), POINT_CASES)
def test_point_in_box_table(p, box, expected):
    assert point_in_box(p, box) is expected


MATCH_CASES = [
    # straight pairing is best
    ([(0, 0), (100, 0)], [(0, 0), (100, 0)], 0.0),
    # swapped order: the crossed pairing is taken
    ([(100, 0), (0, 0)], [(0, 0), (100, 0)], 0.0),
    # mean of the two distances 3-4-5 and 0
    ([(0, 0), (50, 50)], [(3, 4), (50, 50)], 2.5),
    # one point each: the plain distance
    ([(0, 0)], [(6, 8)], 10.0),
    # two predicted, one gt: the closer predicted point is matched
    ([(0, 0), (100, 100)], [(99, 100)], 1.0),
    # three each, permuted: Hungarian finds the zero-cost matching
    ([(0, 0), (10, 0), (20, 0)], [(20, 0), (0, 0), (10, 0)], 0.0),
]


@pytest.mark.parametrize(("pred", "gt", "expected"), MATCH_CASES)
def test_matched_point_distance_table(pred, gt, expected):
    assert matched_point_distance(pred, gt) == pytest.approx(expected)


def test_matched_point_distance_empty_raises():
    # no points to match is a caller error, not a silent 0
    with pytest.raises(ValueError, match="at least one"):
        matched_point_distance([], [(0, 0)])


MAP_CASES = [
    # identity when the image is the frame size
    (SegObject((0, 0, 839, 839), ((420, 420),)), (840, 840), 840, SegObject((0, 0, 839, 839), ((420, 420),))),
    # doubling: x * 1680 / 840
    (SegObject((10, 20, 30, 40), ((15, 25),)), (1680, 1680), 840, SegObject((20, 40, 60, 80), ((30, 50),))),
    # half-pixel rounds up (x=1 -> 0.5 -> 1), not to even
    (SegObject((1, 1, 3, 3)), (420, 420), 840, SegObject((1, 1, 2, 2))),
    # clipped to the image: 839 * 1000 / 840 = 998.8 -> 999 (last pixel), negative -> 0
    (SegObject((-20, -5, 839, 900)), (1000, 500), 840, SegObject((0, 0, 999, 499))),
    # inverted corners are ordered x1 <= x2, y1 <= y2
    (SegObject((100, 200, 10, 20)), (840, 840), 840, SegObject((10, 20, 100, 200))),
    # non-square frame given as (w, h)
    (SegObject((50, 50, 100, 100)), (200, 400), (100, 200), SegObject((100, 100, 199, 200))),
    # points only (no box) are mapped too
    (SegObject(None, ((840, 0),)), (84, 84), 840, SegObject(None, ((83, 0),))),
]


@pytest.mark.parametrize(("obj", "size", "frame", "expected"), MAP_CASES)
def test_to_original_table(obj, size, frame, expected):
    out = to_original(obj, size=size, frame=frame)
    assert out == expected
    assert all(isinstance(v, int) for v in (*(out.box or ()), *(c for p in out.points for c in p)))


def test_to_frame_inverse_of_doubling():
    # original 1680 px -> frame 840: halves, rounding half up
    assert to_frame(SegObject((20, 41, 60, 81)), size=(1680, 1680)) == SegObject((10, 21, 30, 41))


@pytest.mark.parametrize("bad", [(0, 10), (10, -1)])
def test_bad_size_raises(bad):
    # a zero or negative image size is a caller error
    with pytest.raises(ValueError, match="size"):
        to_original(SegObject((0, 0, 1, 1)), size=bad)


def test_bad_frame_and_nan_raise():
    # frame must be positive; NaN coordinates cannot be mapped to pixels
    with pytest.raises(ValueError, match="frame"):
        frame_size(0)
    with pytest.raises(ValueError, match="non-finite"):
        to_original(SegObject((math.nan, 0, 1, 1)), size=(10, 10))


def test_defaults():
    # the paper's frame and inclusive area
    assert DEFAULT_FRAME == 840
    assert frame_size(840) == (840, 840) and frame_size((640, 480)) == (640, 480)
    assert box_area((0, 0, 0, 0)) == 1


coord = st.floats(-2000, 2000, allow_nan=False)
box_st = st.tuples(coord, coord, coord, coord)


@settings(max_examples=300, deadline=None)
@given(box_st, box_st, st.booleans())
def test_iou_symmetric_in_unit_interval(a, b, strict):
    v = box_iou(a, b, strict_overlap=strict)
    assert 0.0 <= v <= 1.0
    assert v == box_iou(b, a, strict_overlap=strict)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 839),
    st.integers(0, 839),
    st.integers(840, 5000),
    st.integers(840, 5000),
)
def test_roundtrip_frame_original_frame_within_one_pixel(x, y, w, h):
    # frame -> original -> frame moves a coordinate by at most one pixel when the image is at least frame-sized
    back = to_frame(to_original(SegObject((x, y, x, y), ((x, y),)), size=(w, h)), size=(w, h))
    assert abs(back.points[0][0] - x) <= 1 and abs(back.points[0][1] - y) <= 1
    assert abs(back.box[0] - x) <= 1 and abs(back.box[3] - y) <= 1


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 839), st.integers(1, 839))
def test_roundtrip_bound_for_small_images(x, w):
    # smaller images: rounding costs half a frame-pixel per original pixel, clipping at the last pixel one more
    back = to_frame(to_original(SegObject(None, ((x, x),)), size=(w, w)), size=(w, w))
    assert abs(back.points[0][0] - x) <= 0.5 + DEFAULT_FRAME / w + 1e-9
