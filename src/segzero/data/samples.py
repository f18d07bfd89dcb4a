"""Per-image work of the training-data builder: masks -> box + two points -> rows in the model frame.

Runs inside the builder's worker processes (``segzero.data.build``), one ``ImageTask`` at a time, and is
import-light (numpy, PIL, cv2, pycocotools; torch only when the SAM2 filter is on). Coordinates: masks, boxes
and points are first computed in original-image pixels (inclusive boxes, points ``(x, y)``), then scaled
into the model frame (``frame``: int side or ``(w, h)``, 840 by default) with ``segzero.geometry.to_frame``;
the image is resized to the frame with ``cv2.INTER_AREA``.

Row formats (the released layouts):
- single object: ``solution = "<box>(x1,y1),(x2,y2)</box><points>(x1,y1),(x2,y2)</points>"``
- multi object: ``solution = '[{"bbox_2d": [x1, y1, x2, y2], "point_2d": [x, y]}, ...]'`` (point 1 only); a row
  with no object (a "nothing here" query) is ``[]``

With ``SampleOptions.eval_columns`` a row also gets the columns ``segzero eval`` reads (``EVAL_FEATURES``):
``text`` (the query), ``mask`` (PNG, 0/1: the union of the row's objects, resized to the frame with nearest
neighbour, so it indexes the stored image's pixels), ``image_id`` (the task's file name) and ``ann_id`` (the row id).
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from segzero.answer import SegObject
from segzero.data.masks import decode_object
from segzero.data.refer import BadAnnotation
from segzero.geometry import DEFAULT_FRAME, frame_size
from segzero.parsing import format_solution

HIST_BINS = 10  # equal bins over [0, 1] of the frame-normalised quantities below
HIST_KEYS = ("box_width", "box_height", "box_area", "point_x", "point_y", "sam_iou")


@dataclass(frozen=True)
class ObjectTask:
    """One referred annotation: ``segmentation`` is its raw COCO segmentation or a ``segzero.data.masks.MaskFile``
    (original pixels); ``name`` says where it comes from in stats examples (default ``ref <ref_id> ann <ann_id>``)."""

    ref_id: int
    ann_id: int
    segmentation: object = field(repr=False)
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"ref {self.ref_id} ann {self.ann_id}"


@dataclass(frozen=True)
class RowTask:
    """One output row: ``problem`` text and the indices of its objects in ``ImageTask.objects``."""

    row_id: str
    problem: str
    objects: tuple[int, ...]


@dataclass(frozen=True)
class ImageTask:
    """All rows of one image. ``width``/``height`` are the annotated image size in pixels (0: the file's size).
    ``file_name`` is found under ``SampleOptions.images_dir`` (an absolute path is used as it is)."""

    image_id: int
    file_name: str
    width: int
    height: int
    objects: tuple[ObjectTask, ...]
    rows: tuple[RowTask, ...]


@dataclass(frozen=True)
class SampleOptions:
    """Options of the per-image step (shared by all workers)."""

    images_dir: str
    frame: int | tuple[int, int] = DEFAULT_FRAME  # model frame: square side or (w, h)
    layout: str = "single"  # "single" (box + two points) or "multi" (JSON list of bbox_2d/point_2d)
    image_format: str = "JPEG"  # encoding of the resized image stored in the dataset (JPEG or PNG)
    jpeg_quality: int = 95  # JPEG quality when image_format is JPEG
    sam_filter: str | None = None  # Segmenter name/path: drop objects SAM2 cannot reproduce
    min_iou: float = 0.6  # SAM2 filter: keep an object when IoU(SAM2 mask, gt mask) >= min_iou
    sam_device: str | None = None  # torch device of the SAM2 filter (None: the Segmenter's default)
    sam_multimask: bool = False  # SAM2 filter: best of 3 candidates; False: SAM2's single mask (the reference)
    points_border: str = "open"  # segzero.points.mask_to_object's border (open: the reference's transform)
    points_fallback: str = "centroid"  # ... and its fallback for point 2 (centroid: the reference's)
    polygons: str = "once"  # box and points from pixels one polygon covers ("once", the reference) or any ("or")
    eval_columns: bool = False  # also write text, mask, image_id, ann_id (the columns segzero eval reads)


@dataclass
class TaskResult:
    """Rows written and what was dropped, by reason, for rows and for objects."""

    rows: list[dict] = field(default_factory=list)
    dropped_rows: Counter = field(default_factory=Counter)
    dropped_objects: Counter = field(default_factory=Counter)
    warnings: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    hist: dict[str, list[int]] = field(default_factory=lambda: {k: [0] * HIST_BINS for k in HIST_KEYS})
    objects_ok: int = 0

    def note(self, reason: str, text: str, *, limit: int = 5) -> None:
        """Keep up to ``limit`` example messages per reason, for stats.json."""
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < limit:
            bucket.append(text)

    def add_hist(self, key: str, value: float) -> None:
        """Count ``value`` (clipped to [0, 1]) in histogram ``key``."""
        idx = min(HIST_BINS - 1, max(0, int(float(value) * HIST_BINS)))
        self.hist[key][idx] += 1

    def merge(self, other: TaskResult) -> None:
        """Add ``other``'s counts into this one (rows are not merged)."""
        self.dropped_rows.update(other.dropped_rows)
        self.dropped_objects.update(other.dropped_objects)
        self.warnings.update(other.warnings)
        for reason, texts in other.examples.items():
            for text in texts:
                self.note(reason, text)
        for key, counts in other.hist.items():
            self.hist[key] = [a + b for a, b in zip(self.hist.get(key, [0] * HIST_BINS), counts, strict=True)]
        self.objects_ok += other.objects_ok


_SEGMENTERS: dict[tuple[str, str | None], object] = {}


def _segmenter(name: str, device: str | None):
    """One SAM2 ``Segmenter`` per worker process (loaded on first use)."""
    key = (name, device)
    if key not in _SEGMENTERS:
        from segzero.models.segmenter import Segmenter

        _SEGMENTERS[key] = Segmenter.from_pretrained(name, device=device)
    return _SEGMENTERS[key]


def _sam_iou(segmenter, obj: SegObject, gt: np.ndarray, *, multimask: bool) -> float:
    """IoU of SAM2's mask, prompted with the gt box and point 1 (original pixels), against ``gt``; ``multimask``:
    the best-scored of 3 candidates, else SAM2's single-mask output."""
    from segzero.metrics import intersection_union, sample_iou

    pred = segmenter.predict(
        boxes=np.asarray([obj.box], dtype=np.float32),
        points=np.asarray([[obj.points[0]]], dtype=np.float32),
        labels=np.ones((1, 1), dtype=np.int64),
        multimask=multimask,
    )
    return sample_iou(*intersection_union(np.asarray(pred.mask, dtype=bool), gt))


def _find_image(images_dir: str, file_name: str) -> Path:
    """``images_dir/file_name``, else ``images_dir/<COCO split folder>/file_name`` (train2014/val2014/...)."""
    path = Path(images_dir) / file_name
    if not path.is_file() and file_name.startswith("COCO_"):
        alt = Path(images_dir) / file_name.split("_")[1] / file_name
        if alt.is_file():
            return alt
    return path


def _load_image(path: Path, width: int, height: int) -> Image.Image:
    """The image as stored (no EXIF rotation: COCO annotations index the stored pixels), in RGB.

    ``width``/``height`` 0 (not in instances.json) accept the file's size."""
    with Image.open(path) as im:
        image = im.convert("RGB")
    if (width or height) and image.size != (width, height):
        raise BadAnnotation("image_size_mismatch", f"{path.name} is {image.size}, annotated {(width, height)}")
    return image


def _encode(image: Image.Image, opts: SampleOptions) -> bytes:
    buf = io.BytesIO()
    kwargs = {"quality": opts.jpeg_quality} if opts.image_format.upper() == "JPEG" else {}
    image.save(buf, format=opts.image_format.upper(), **kwargs)
    return buf.getvalue()


def process_image(task: ImageTask, opts: SampleOptions) -> TaskResult:
    """Decode masks, compute box + points, scale them to the frame, and build the rows of ``task``.

    Never raises on bad input: an unreadable/missing image drops all rows of the image, a bad annotation
    drops its object and every row that refers to it; each drop is counted by reason.
    """
    from segzero.geometry import to_frame
    from segzero.points import mask_to_object

    result = TaskResult()
    fw, fh = frame_size(opts.frame)
    path = _find_image(opts.images_dir, task.file_name)
    try:
        if not path.is_file():
            raise BadAnnotation("missing_image", str(path))
        image = _load_image(path, task.width, task.height)
        width, height = image.size
    except (BadAnnotation, OSError) as err:
        reason = err.reason if isinstance(err, BadAnnotation) else "unreadable_image"
        result.dropped_rows[reason] += len(task.rows)
        result.dropped_objects[reason] += len(task.objects)
        result.note(reason, f"image {task.image_id} ({task.file_name}): {err}")
        return result

    segmenter = None
    if opts.sam_filter:
        segmenter = _segmenter(opts.sam_filter, opts.sam_device)
        segmenter.set_image(image)
    framed: dict[int, SegObject] = {}
    masks: dict[int, np.ndarray] = {}  # original-pixel masks, kept for the eval columns
    failed: dict[int, str] = {}
    for idx, ot in enumerate(task.objects):
        try:
            covers, skipped = decode_object(ot.segmentation, height, width)
            if skipped:
                result.warnings["polygon_skipped_too_few_points"] += skipped
                result.note("polygon_skipped_too_few_points", f"{ot.label}: {skipped} polygon(s) skipped")
            mask = covers > 0
            counted = covers == 1 if opts.polygons == "once" else None
            obj = mask_to_object(mask, border=opts.points_border, fallback=opts.points_fallback, counted=counted)
            if obj is None:
                raise BadAnnotation("empty_mask", "no point found")
            if segmenter is not None:
                iou = _sam_iou(segmenter, obj, mask, multimask=opts.sam_multimask)
                result.add_hist("sam_iou", iou)
                if iou < opts.min_iou:
                    raise BadAnnotation("sam_iou_below_threshold", f"IoU {iou:.3f} < {opts.min_iou}")
        except BadAnnotation as err:
            failed[idx] = err.reason
            result.dropped_objects[err.reason] += 1
            result.note(err.reason, f"{ot.label}: {err}")
            continue
        framed[idx] = to_frame(obj, size=(width, height), frame=opts.frame)
        if opts.eval_columns:
            masks[idx] = mask
        result.objects_ok += 1

    image_bytes = None
    for row in task.rows:
        bad = [failed[i] for i in row.objects if i in failed]
        if bad:
            result.dropped_rows[bad[0]] += 1
            continue
        objs = [framed[i] for i in row.objects]
        if image_bytes is None:
            resized = cv2.resize(np.asarray(image), (fw, fh), interpolation=cv2.INTER_AREA)
            image_bytes = _encode(Image.fromarray(resized), opts)
        solution = format_solution(objs[:1] if opts.layout == "single" else objs, opts.layout)
        for o in objs:
            x1, y1, x2, y2 = o.box
            result.add_hist("box_width", (x2 - x1 + 1) / fw)
            result.add_hist("box_height", (y2 - y1 + 1) / fh)
            result.add_hist("box_area", (x2 - x1 + 1) * (y2 - y1 + 1) / (fw * fh))
            for px, py in o.points:
                result.add_hist("point_x", px / fw)
                result.add_hist("point_y", py / fh)
        result.rows.append(
            {
                "id": row.row_id,
                "problem": row.problem,
                "solution": solution,
                "image": {"bytes": image_bytes, "path": None},
                "img_height": height,
                "img_width": width,
            }
        )
        if opts.eval_columns:
            union = np.zeros((height, width), dtype=bool)
            for i in row.objects:
                union |= masks[i]
            result.rows[-1].update(
                text=row.problem,
                mask={"bytes": _mask_png(union, (fw, fh)), "path": None},
                image_id=task.file_name,
                ann_id=row.row_id,
            )
    return result


def _mask_png(mask: np.ndarray, frame: tuple[int, int]) -> bytes:
    """A (H, W) bool mask resized (nearest) to ``frame`` = (w, h), as PNG bytes of a 0/1 ``L`` image."""
    resized = cv2.resize(mask.astype(np.uint8), frame, interpolation=cv2.INTER_NEAREST)
    buf = io.BytesIO()
    Image.fromarray(resized).save(buf, format="PNG")  # uint8 (H, W): mode L
    return buf.getvalue()
