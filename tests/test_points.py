"""Tests for segzero.points: box + two distance-transform points from a mask (Seg-Zero's training targets).

Run: ``pytest tests/test_points.py -q``. Hand-made masks with known answers, a slow per-pixel reference
implementation on random masks, and hypothesis for the invariants (points on the mask, inside the box).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.ndimage import distance_transform_edt

from segzero.answer import SegObject
from segzero.points import mask_to_object, mask_to_objects


def reference(mask):
    """The rule written out plainly on the full padded image, with Python loops for the selection."""
    m = np.asarray(mask) != 0
    if not m.any():
        return None
    dist = distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
    pixels = [(y, x) for y in range(m.shape[0]) for x in range(m.shape[1]) if m[y, x]]  # row-major
    best = max(dist[p] for p in pixels)
    y1, x1 = next(p for p in pixels if dist[p] == best)
    d = [((x - x1) ** 2 + (y - y1) ** 2) ** 0.5 for y, x in pixels]
    med = float(np.median(d))
    cands = [p for p, dd in zip(pixels, d, strict=True) if dd > med] or [
        p for p, dd in zip(pixels, d, strict=True) if dd == max(d)
    ]
    best2 = max(dist[p] for p in cands)
    y2, x2 = next(p for p in cands if dist[p] == best2)
    ys, xs = zip(*pixels, strict=True)
    return SegObject(box=(min(xs), min(ys), max(xs), max(ys)), points=((x1, y1), (x2, y2)))


def canvas(h, w, *rects):
    """A uint8 mask with filled inclusive rectangles (x1, y1, x2, y2)."""
    m = np.zeros((h, w), np.uint8)
    for x1, y1, x2, y2 in rects:
        m[y1 : y2 + 1, x1 : x2 + 1] = 1
    return m


PLUS = canvas(5, 5, (2, 1, 2, 3), (1, 2, 3, 2))

CASES = [
    # one pixel: box is that pixel, both points on it
    (canvas(4, 6, (3, 2, 3, 2)), (3, 2, 3, 2), ((3, 2), (3, 2))),
    # two pixels side by side: point 1 is the first in row-major order, point 2 the other one
    (canvas(3, 5, (1, 1, 2, 1)), (1, 1, 2, 1), ((1, 1), (2, 1))),
    # 5x5 square: centre first; the far half is the ring at distance > median; its first DT max (1, 1)
    (canvas(7, 7, (1, 1, 5, 5)), (1, 1, 5, 5), ((3, 3), (1, 1))),
    # dumbbell: a 7x7 blob on the left and a 5x5 blob on the right joined by a 1-px bar;
    # point 1 in the bigger blob's centre, point 2 in the smaller blob's centre
    (canvas(9, 20, (1, 1, 7, 7), (8, 4, 12, 4), (13, 2, 17, 6)), (1, 1, 17, 7), ((4, 4), (15, 4))),
    # plus shape: no pixel is farther than the median (all arms at 1), so the farthest pixels are candidates;
    # all have DT 1, the first in row-major order (2, 1) wins
    (PLUS, (1, 1, 3, 3), ((2, 2), (2, 1))),
    # mask touching the image border: the border counts as background, so the centre of the 4x4 block
    # is not pulled onto the edge (without padding the whole block has no background at all); point 2 is the
    # first row-major pixel farther than the median distance sqrt(2), all candidates having DT 1
    (canvas(4, 4, (0, 0, 3, 3)), (0, 0, 3, 3), ((1, 1), (3, 0))),
    # bool input works like uint8
    (canvas(7, 7, (1, 1, 5, 5)).astype(bool), (1, 1, 5, 5), ((3, 3), (1, 1))),
]


@pytest.mark.parametrize(("mask", "box", "points"), CASES)
def test_known_masks(mask, box, points):
    obj = mask_to_object(mask)
    assert obj == SegObject(box=box, points=points)
    assert obj == reference(mask)
    assert all(type(v) is int for v in obj.box) and all(type(v) is int for p in obj.points for v in p)


@pytest.mark.parametrize(
    "mask",
    [
        np.zeros((5, 5), np.uint8),  # empty mask: nothing to describe
        np.zeros((0, 0), bool),  # zero-size mask
    ],
)
def test_empty_mask_gives_none(mask):
    assert mask_to_object(mask) is None


def test_rejects_non_2d():
    # a stack of masks must go through mask_to_objects
    with pytest.raises(ValueError, match="2-D"):
        mask_to_object(np.ones((2, 3, 3), bool))


def test_mask_to_objects_stack():
    # one entry per mask, None kept in place for an empty one
    stack = np.stack([canvas(5, 5, (1, 1, 3, 3)), np.zeros((5, 5), np.uint8)])
    objs = mask_to_objects(stack)
    assert objs[0] == mask_to_object(stack[0]) and objs[1] is None


@pytest.mark.parametrize("seed", range(6))
def test_random_blobs_match_reference(seed):
    # random irregular masks (smoothed noise) of varying size, compared with the plain reference
    rng = np.random.default_rng(seed)
    h, w = rng.integers(8, 40, size=2)
    noise = rng.random((h, w))
    smooth = (noise + np.roll(noise, 1, 0) + np.roll(noise, 1, 1) + np.roll(noise, (1, 1), (0, 1))) / 4
    mask = smooth > rng.uniform(0.4, 0.6)
    assert mask_to_object(mask) == reference(mask)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 14).flatmap(lambda h: st.integers(1, 14).flatmap(lambda w: arrays(np.bool_, (h, w)))))
def test_invariants(mask):
    obj = mask_to_object(mask)
    if not mask.any():
        assert obj is None
        return
    x1, y1, x2, y2 = obj.box
    ys, xs = np.nonzero(mask)
    assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max(), ys.max())
    assert len(obj.points) == 2
    for x, y in obj.points:
        assert mask[y, x]  # on the mask
        assert x1 <= x <= x2 and y1 <= y <= y2  # inside the box
    assert obj == reference(mask)


def test_large_mask_is_fast_enough():
    # a COCO-sized mask (vectorised path): a disc of radius 150 in a 480 x 640 image; the centre is point 1
    yy, xx = np.mgrid[:480, :640]
    mask = (xx - 320) ** 2 + (yy - 240) ** 2 <= 150**2
    obj = mask_to_object(mask)
    assert obj.points[0] == (320, 240)
    assert obj.box == (170, 90, 470, 390)
    px, py = obj.points[1]
    assert (px - 320) ** 2 + (py - 240) ** 2 > (150 / 2**0.5 - 1) ** 2  # in the outer half (median radius)


def notebook_points(m):
    """Seg-Zero's data notebook's two points on its summed polygon mask ``m`` (0 / 1 / 2 ...), as
    ``benchmarks/data_points.py`` writes the notebook's function out (and times it): box and candidates from the
    pixels equal to 1, the distance transform of the unpadded mask, its first row-major maximum; point 2 the first
    maximum among candidates strictly farther than the median, else the maximum in the window [c - 10, c + 10) at
    the centroid, moved to the nearest candidate when off the mask."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "data_points.py"
    spec = importlib.util.spec_from_file_location("data_points_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    box, p1, p2 = module.notebook_two_points(np.asarray(m))
    return SegObject(box=box, points=(p1, p2))


def _notebook_cases():
    """(name, summed polygon mask) pairs: blobs touching the edges, masks without far pixels, overlaps."""
    rng = np.random.default_rng(100)
    cases = []
    for k in range(6):  # random blobs filling most of the image, so that they touch its edges
        h, w = rng.integers(8, 30, size=2)
        blob = (rng.random((h, w)) > rng.uniform(0.1, 0.3)).astype(np.uint8)
        blob[0, :] |= k % 2 == 0  # every other case: a full top row
        cases.append((f"blob{k}", blob))
    cases.append(("plus", canvas(30, 30, (14, 13, 14, 15), (13, 14, 15, 14))))  # no far pixel: the centroid window
    cases.append(("pixel", canvas(25, 25, (20, 3, 20, 3))))  # one pixel near an edge: the window is clipped
    two = canvas(20, 24, (2, 2, 12, 10)) + canvas(20, 24, (8, 6, 20, 16))  # two polygons overlapping (value 2)
    cases.append(("overlap", two))
    return cases


@pytest.mark.parametrize(("name", "summed"), _notebook_cases(), ids=[n for n, _ in _notebook_cases()])
def test_notebook_options_match_the_notebook(name, summed):
    obj = mask_to_object(summed != 0, border="open", fallback="centroid", counted=summed == 1)
    assert obj == notebook_points(summed)


@pytest.mark.parametrize(
    ("mask", "points"),
    [
        # the 4x4 block filling its image has no background at all: scipy then measures from just before the
        # first row and column, so the distance grows towards the bottom-right corner (the notebook's points)
        (canvas(4, 4, (0, 0, 3, 3)), ((3, 3), (0, 3))),
        # away from the edges both borders give the same points
        (canvas(7, 7, (1, 1, 5, 5)), ((3, 3), (1, 1))),
    ],
)
def test_open_border_known_masks(mask, points):
    assert mask_to_object(mask, border="open").points == points


def test_unknown_border_is_refused():
    with pytest.raises(ValueError, match="border"):
        mask_to_object(canvas(3, 3, (1, 1, 1, 1)), border="wrap")
