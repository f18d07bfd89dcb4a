"""Box and point geometry shared by rewards, the pipeline and evaluation (stdlib + scipy only).

Conventions (the Seg-Zero answer frame and reward geometry):

- A box is an *inclusive pixel box* ``(x1, y1, x2, y2)``: it covers pixel columns ``x1..x2`` and rows
  ``y1..y2``, so its area is ``(x2 - x1 + 1) * (y2 - y1 + 1)``. Coordinates may be floats; they are used
  as given (no rounding), exactly as the reference rewards do.
- A point is ``(x, y)``. A point on the box edge is inside.
- Model answers live in the *model frame* (``DEFAULT_FRAME`` = 840 x 840 by default; ``frame`` is an int side
  or a ``(width, height)`` pair); pipeline results live in original-image pixels of size ``(W, H)``.
  ``to_original`` maps ``x -> x * W / frame_w`` (and ``y`` likewise), rounds half up to ints, clips to the
  image (``0..W-1``, ``0..H-1``) and orders corners so that ``x1 <= x2`` and ``y1 <= y2``. ``to_frame`` is the
  inverse mapping (clipped to ``0..frame-1``).
- The frame an answer's numbers are in is its *answer frame*. For Seg-Zero and VisionReasoner it is the pixel
  frame the image was resized to (absolute pixels of the 840 x 840 image). A family trained on *relative*
  coordinates has an answer frame of its own, independent of the pixels: Qwen3-VL's grounding answers
  ``0..RELATIVE_FRAME`` (1000) across the image whatever its size, so ``to_original(obj, size=(W, H),
  frame=RELATIVE_FRAME)`` maps ``x -> x * W / 1000``. Which frame a checkpoint answers in is data: its prompt
  family's entry in ``segzero.prompts.ANSWER_FRAMES`` or an ``answer_frame`` entry in its ``segzero.json``
  (``segzero.models.checkpoint.resolve_answer_frame``); every mapping here takes that frame as ``frame``.
- Pixel lengths (reward thresholds, distances) given for one frame hold for another multiplied by
  ``length_scale(frame, reference)`` (``1000 / 840`` from the 840 frame to the relative one).

Usage::

    from segzero.geometry import box_iou, to_original
    box_iou((0, 0, 9, 9), (5, 0, 14, 9))                       # 1/3
    to_original(obj, size=(1280, 720))                         # SegObject in original pixels
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from segzero.answer import SegObject

DEFAULT_FRAME = 840
RELATIVE_FRAME = 1000
"""Side of the answer frame of relative coordinates (Qwen3-VL's grounding): ``0..1000`` across the image, whatever
the size of the image and of the pixels the model was shown."""

Number = int | float


def box_area(box: Sequence[Number]) -> Number:
    """Inclusive-pixel area ``(x2 - x1 + 1) * (y2 - y1 + 1)`` (raw product, as the references compute it)."""
    x1, y1, x2, y2 = box
    return (x2 - x1 + 1) * (y2 - y1 + 1)


def box_iou(a: Sequence[Number], b: Sequence[Number], *, strict_overlap: bool = False) -> float:
    """IoU of two inclusive pixel boxes ``(x1, y1, x2, y2)``, in ``[0, 1]``; symmetric.

    The intersection is ``max(0, min(x2) - max(x1) + 1) * max(0, min(y2) - max(y1) + 1)`` (VisionReasoner's
    reference). With ``strict_overlap=True`` the intersection counts only when ``max(x1) < min(x2)`` and
    ``max(y1) < min(y2)`` strictly, as Seg-Zero's single-object reference reward computes it: boxes that share a
    single pixel column or row then have intersection 0. A union that is not positive (degenerate or inverted
    boxes) gives 0.
    """
    ix1, iy1 = max(a[0], b[0]), max(a[1], b[1])
    ix2, iy2 = min(a[2], b[2]), min(a[3], b[3])
    if strict_overlap:
        inter = (ix2 - ix1 + 1) * (iy2 - iy1 + 1) if (ix1 < ix2 and iy1 < iy2) else 0
    else:
        inter = max(0, ix2 - ix1 + 1) * max(0, iy2 - iy1 + 1)
    union = box_area(a) + box_area(b) - inter
    if not union > 0 or not inter > 0:
        return 0.0
    return min(1.0, float(inter / union))


def box_l1(a: Sequence[Number], b: Sequence[Number]) -> float:
    """Mean absolute difference of the four box coordinates (pixels)."""
    return float((abs(a[0] - b[0]) + abs(a[1] - b[1]) + abs(a[2] - b[2]) + abs(a[3] - b[3])) / 4)


def point_in_box(p: Sequence[Number], box: Sequence[Number]) -> bool:
    """True when ``x1 <= x <= x2`` and ``y1 <= y <= y2`` (edges inside; an inverted box contains nothing)."""
    return bool(box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3])


def point_distance(p: Sequence[Number], q: Sequence[Number]) -> float:
    """Euclidean distance ``sqrt(dx**2 + dy**2)`` (computed as the references do, for bit-equal thresholds).

    ``math.inf`` when the square overflows a float (coordinates near 1e308), where the references raise
    ``OverflowError``: a reward then scores the pair as far apart instead of stopping a training run.
    """
    try:
        return math.sqrt((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2)
    except OverflowError:
        return math.inf


def matched_point_distance(pred_pts: Sequence[Sequence[Number]], gt_pts: Sequence[Sequence[Number]]) -> float:
    """Mean distance between predicted and gt points under the best one-to-one pairing.

    For two point pairs this is Seg-Zero's rule: ``min(d(p0,g0) + d(p1,g1), d(p0,g1) + d(p1,g0)) / 2``. For one
    point each it is the plain distance. In general the pairing minimises the summed distance (Hungarian) and the
    mean is taken over the ``min(len(pred), len(gt))`` matched pairs. Raises ``ValueError`` when either is empty.
    """
    n, m = len(pred_pts), len(gt_pts)
    if n == 0 or m == 0:
        raise ValueError("matched_point_distance needs at least one predicted and one gt point")
    if n == 1 and m == 1:
        return point_distance(pred_pts[0], gt_pts[0])
    if n == 2 and m == 2:
        d1 = point_distance(pred_pts[0], gt_pts[0]) + point_distance(pred_pts[1], gt_pts[1])
        d2 = point_distance(pred_pts[0], gt_pts[1]) + point_distance(pred_pts[1], gt_pts[0])
        return min(d1, d2) / 2
    from scipy.optimize import linear_sum_assignment  # lazy: scipy.optimize costs ~0.7 s to import

    cost = [[point_distance(p, g) for g in gt_pts] for p in pred_pts]
    rows, cols = linear_sum_assignment(cost)
    return float(sum(cost[r][c] for r, c in zip(rows, cols, strict=True)) / len(rows))


def frame_size(frame: int | Sequence[int]) -> tuple[int, int]:
    """``(width, height)`` of the model frame from a side or a ``(w, h)`` pair of positive integers (``840``,
    ``(640, 480)``, numpy integers too); ``ValueError`` naming the frame otherwise (zero, negative, a float, a bool,
    a string). The one frame normaliser: images, data and evaluation all read frames through it.

    >>> frame_size(840), frame_size([640, 480])
    ((840, 840), (640, 480))
    """
    size = (frame, frame) if isinstance(frame, numbers.Number) else frame
    try:
        width, height = size
    except (TypeError, ValueError):  # not a pair
        width = height = None
    for v in (width, height):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
            raise ValueError(f"frame must be a positive int or a (width, height) pair of positive ints, got {frame!r}")
    return int(width), int(height)


def length_scale(frame: int | Sequence[int], reference: int | Sequence[int] = DEFAULT_FRAME) -> float:
    """The factor that turns a length in ``reference`` units into the same fraction of the image in ``frame``
    units: ``sqrt(w * h) / sqrt(w_ref * h_ref)`` (for square frames, the ratio of their sides).

    >>> round(length_scale(1000) * 10, 4), length_scale(840), length_scale(112) * 100
    (11.9048, 1.0, 13.333333333333334)
    """
    fw, fh = frame_size(frame)
    rw, rh = frame_size(reference)
    return math.sqrt(fw * fh) / math.sqrt(rw * rh)


def _round_half_up(v: float) -> int:
    return int(math.floor(v + 0.5))


def _map(obj: SegObject, sx: float, sy: float, w: int, h: int) -> SegObject:
    """Scale by (sx, sy), round half up, clip to ``0..w-1`` / ``0..h-1``, order corners."""
    for v in (*(obj.box or ()), *(c for p in obj.points for c in p)):
        if not math.isfinite(v):
            raise ValueError(f"non-finite coordinate {v!r} in {obj!r}")

    def cx(v: float) -> int:
        return min(max(_round_half_up(v * sx), 0), w - 1)

    def cy(v: float) -> int:
        return min(max(_round_half_up(v * sy), 0), h - 1)

    box = None
    if obj.box is not None:
        x1, y1, x2, y2 = cx(obj.box[0]), cy(obj.box[1]), cx(obj.box[2]), cy(obj.box[3])
        box = (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
    points = tuple((cx(x), cy(y)) for x, y in obj.points)
    return SegObject(box=box, points=points, label=obj.label)


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    w, h = (int(v) for v in size)
    if w <= 0 or h <= 0:
        raise ValueError(f"image size must be positive (W, H), got {size!r}")
    return w, h


def to_original(obj: SegObject, *, size: Sequence[int], frame: int | Sequence[int] = DEFAULT_FRAME) -> SegObject:
    """Map an object from the model frame to original pixels ``size=(W, H)``.

    ``x * W / frame_w``, ``y * H / frame_h``, rounded half up to ints, clipped to ``0..W-1`` / ``0..H-1``, box
    corners ordered so ``x1 <= x2``, ``y1 <= y2``. Round trip frame -> original -> frame moves a coordinate by at
    most one pixel when ``W >= frame``, else by at most ``0.5 + frame / W`` (rounding plus clipping to the last
    pixel). ``ValueError`` on non-finite coordinates.
    """
    w, h = _check_size(size)
    fw, fh = frame_size(frame)
    return _map(obj, w / fw, h / fh, w, h)


def to_frame(obj: SegObject, *, size: Sequence[int], frame: int | Sequence[int] = DEFAULT_FRAME) -> SegObject:
    """Map an object from original pixels ``size=(W, H)`` to the model frame (inverse of ``to_original``).

    ``x * frame_w / W``, rounded half up, clipped to ``0..frame_w-1`` / ``0..frame_h-1``, corners ordered.
    """
    w, h = _check_size(size)
    fw, fh = frame_size(frame)
    return _map(obj, fw / w, fh / h, fw, fh)
