"""Weight-free segmenters with the ``segzero.models.base.SegmenterProtocol`` interface (as SAM2's ``Segmenter``):
OpenCV GrabCut and an exact colour-region segmenter for the shapes world. No checkpoint, no download, no torch:
they run anywhere.

    from segzero.models.weightfree import load_weightfree
    seg = load_weightfree("color")          # or "grabcut"; also SegZeroPipeline.from_pretrained(segmenter="color")
    seg.set_image(pil_image)                # counts num_embeddings (the "embedding" is the RGB array)
    pred = seg.predict(boxes=[[x1, y1, x2, y2]], points=[[[x, y], [x, y]]])
    pred.mask, pred.object_masks, pred.scores    # (H, W) bool, (N, H, W) bool, (N,) float32 — original pixels

Prompts are in original image pixels: boxes (N, 4) inclusive ``(x1, y1, x2, y2)``, points (N, P, 2) ``(x, y)``,
labels (N, P) (1 foreground, 0 background; default all 1), validated and clipped by ``check_prompts`` as for SAM2.
``scores`` are 1.0 for a non-empty mask and 0.0 otherwise (these segmenters have no confidence model).

- ``ColorRegionSegmenter`` ("color"): the 4-connected region of the colour under each foreground point (within
  ``tolerance``), limited to the box grown by a margin. Exact ONLY for flat-coloured worlds such as
  ``segzero.shapes`` scenes without ``shape_noise`` (each shape one flat colour, same-colour shapes never touching);
  on photographs it returns colour blobs, not objects.
- ``GrabCutSegmenter`` ("grabcut"): ``cv2.grabCut`` initialised with the (grown) box as probable foreground,
  everything outside as background, foreground points as sure foreground discs and background points as sure
  background; then only the connected parts touching a foreground point are kept (when points are given).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from segzero.errors import UserError
from segzero.models.base import ImageTarget, Prediction, check_prompts

FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


@dataclass(frozen=True, eq=False)
class PixelEmbedding:
    """The 'embedding' of a weight-free segmenter: the (H, W, 3) uint8 RGB pixels and ``original_size`` (H, W)."""

    pixels: np.ndarray
    original_size: tuple[int, int]


def _grown_box(box: np.ndarray, size: tuple[int, int], frac: float, px: int) -> tuple[int, int, int, int]:
    """Inclusive integer box grown by ``max(px, frac * box side)`` on each side, clipped to (H, W)."""
    h, w = size
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = max(px, frac * (x2 - x1 + 1)), max(px, frac * (y2 - y1 + 1))
    return (
        int(max(0, np.floor(x1 - mx))),
        int(max(0, np.floor(y1 - my))),
        int(min(w - 1, np.ceil(x2 + mx))),
        int(min(h - 1, np.ceil(y2 + my))),
    )


class _WeightFree(ImageTarget):
    """Shared image handling and prompt loop; subclasses implement ``segment_one``."""

    name = "weightfree"
    description = "a weight-free segmenter"

    def __init__(self) -> None:
        self.num_embeddings = 0  # images "embedded" (converted to arrays) so far, as Segmenter counts them
        self._embedding: PixelEmbedding | None = None

    def embed(
        self, images: Sequence[Image.Image | np.ndarray], *, batch_size: int | None = None
    ) -> list[PixelEmbedding]:
        """RGB arrays of ``images`` (PIL or (H, W, 3) uint8); counts one ``num_embeddings`` per image (``batch_size``
        is accepted for interface parity and ignored)."""
        out = []
        for im in images:
            arr = np.asarray(im.convert("RGB") if isinstance(im, Image.Image) else im)
            if arr.ndim != 3 or arr.shape[2] != 3:
                raise ValueError(f"image must be RGB (H, W, 3), got shape {arr.shape}")
            arr = np.ascontiguousarray(arr.astype(np.uint8))
            out.append(PixelEmbedding(arr, (int(arr.shape[0]), int(arr.shape[1]))))
            self.num_embeddings += 1
        return out

    def predict(
        self, boxes=None, points=None, labels=None, *, multimask=True, embedding: PixelEmbedding | None = None
    ) -> Prediction:
        """Segment N objects (see the module docstring); ``multimask`` is accepted for interface parity and ignored."""
        emb = embedding if embedding is not None else self._embedding
        if emb is None:
            raise RuntimeError(f"{type(self).__name__}.predict() needs an image: call set_image(image) first")
        size = emb.original_size
        box_arr, pt_arr, lab_arr, count = check_prompts(boxes, points, labels, size)
        if count == 0:
            return Prediction.empty(size)
        object_masks = np.zeros((count, *size), dtype=bool)
        for j in range(count):
            box = None if box_arr is None else box_arr[j]
            pts = np.zeros((0, 2)) if pt_arr is None else pt_arr[j]
            labs = np.zeros((0,), dtype=np.int64) if lab_arr is None else lab_arr[j]
            object_masks[j] = self.segment_one(emb.pixels, box, pts, labs)
        scores = object_masks.reshape(count, -1).any(axis=1).astype(np.float32)
        return Prediction(mask=object_masks.any(axis=0), object_masks=object_masks, scores=scores)

    def segment_one(self, pixels: np.ndarray, box, points: np.ndarray, labels: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_embeddings={self.num_embeddings})"


class ColorRegionSegmenter(_WeightFree):
    """Exact colour regions for flat-coloured worlds (see the module docstring; not for photographs)."""

    name = "color"
    description = "the colour segmenter (the flat-colour region under the answer; for the shapes world)"

    def __init__(
        self, *, tolerance: int = 12, margin_frac: float = 0.1, margin_px: int = 2, min_region_px: int = 4
    ) -> None:
        """``tolerance``: largest per-channel difference from the seed colour inside a region; ``margin_frac`` /
        ``margin_px``: the box grows by ``max(margin_px, margin_frac * side)``; ``min_region_px``: smaller seed
        regions (noise speckles) are ignored."""
        super().__init__()
        self.tolerance = int(tolerance)
        self.margin_frac = float(margin_frac)
        self.margin_px = int(margin_px)
        self.min_region_px = int(min_region_px)

    @staticmethod
    def background_colour(pixels: np.ndarray) -> np.ndarray:
        """The most frequent RGB colour on the image border (the background of a shapes scene)."""
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        colours, counts = np.unique(border.reshape(-1, 3), axis=0, return_counts=True)
        return colours[int(counts.argmax())].astype(np.int16)

    def _region(self, roi: np.ndarray, colour: np.ndarray) -> tuple[np.ndarray, int]:
        close = (np.abs(roi.astype(np.int16) - colour.astype(np.int16)) <= self.tolerance).all(axis=2)
        labelled, count = ndimage.label(close, structure=FOUR_CONNECTED)
        return labelled, count

    def segment_one(self, pixels: np.ndarray, box, points: np.ndarray, labels: np.ndarray) -> np.ndarray:
        h, w = pixels.shape[:2]
        x1, y1, x2, y2 = (
            (0, 0, w - 1, h - 1) if box is None else _grown_box(box, (h, w), self.margin_frac, self.margin_px)
        )
        roi = pixels[y1 : y2 + 1, x1 : x2 + 1]
        background = self.background_colour(pixels)
        keep = np.zeros(roi.shape[:2], dtype=bool)
        drop = np.zeros(roi.shape[:2], dtype=bool)
        for (px, py), lab in zip(points, labels, strict=True):
            cx, cy = int(round(px)) - x1, int(round(py)) - y1
            if not (0 <= cx < roi.shape[1] and 0 <= cy < roi.shape[0]):
                continue
            colour = roi[cy, cx]
            if lab == 1 and (np.abs(colour.astype(np.int16) - background) <= self.tolerance).all():
                continue  # a foreground point on the background says nothing about the object's colour
            labelled, _ = self._region(roi, colour)
            region = labelled == labelled[cy, cx]
            if region.sum() < self.min_region_px:
                continue
            (keep if lab == 1 else drop)[region] = True
        if not keep.any():  # no usable point: the largest region of the box's most frequent non-background colour
            keep = self._dominant_region(roi, background)
        out = np.zeros((h, w), dtype=bool)
        out[y1 : y2 + 1, x1 : x2 + 1] = keep & ~drop
        return out

    def _dominant_region(self, roi: np.ndarray, background: np.ndarray) -> np.ndarray:
        colours, counts = np.unique(roi.reshape(-1, 3), axis=0, return_counts=True)
        for k in np.argsort(-counts):
            colour = colours[k]
            if (np.abs(colour.astype(np.int16) - background) <= self.tolerance).all():
                continue
            labelled, count = self._region(roi, colour)
            if count == 0:
                break
            sizes = ndimage.sum_labels(np.ones(labelled.shape), labelled, index=np.arange(1, count + 1))
            best = int(np.argmax(sizes)) + 1
            if sizes[best - 1] >= self.min_region_px:
                return labelled == best
            break
        return np.zeros(roi.shape[:2], dtype=bool)


class GrabCutSegmenter(_WeightFree):
    """OpenCV GrabCut from the box (probable foreground) and points (sure foreground / background discs)."""

    name = "grabcut"
    description = "OpenCV GrabCut"

    def __init__(
        self,
        *,
        iterations: int = 5,
        margin_frac: float = 0.05,
        margin_px: int = 2,
        point_radius: int = 2,
        points_box_frac: float = 0.25,
        keep_point_components: bool = True,
    ) -> None:
        """``iterations``: GrabCut rounds; ``margin_frac``/``margin_px``: box growth (as ``ColorRegionSegmenter``);
        ``point_radius``: radius in pixels of the sure-label disc drawn at each point; ``points_box_frac``: with
        points and no box, the box is the points' extent grown by this fraction of the shorter image side;
        ``keep_point_components``: keep only the connected parts that contain a foreground point."""
        super().__init__()
        self.iterations = int(iterations)
        self.margin_frac = float(margin_frac)
        self.margin_px = int(margin_px)
        self.point_radius = int(point_radius)
        self.points_box_frac = float(points_box_frac)
        self.keep_point_components = bool(keep_point_components)

    def segment_one(self, pixels: np.ndarray, box, points: np.ndarray, labels: np.ndarray) -> np.ndarray:
        import cv2

        h, w = pixels.shape[:2]
        fg_points = [p for p, lab in zip(points, labels, strict=True) if lab == 1]
        if box is None:
            if not fg_points:
                return np.zeros((h, w), dtype=bool)
            pts = np.asarray(fg_points)
            grow = self.points_box_frac * min(h, w)
            box = np.array([pts[:, 0].min() - grow, pts[:, 1].min() - grow, pts[:, 0].max() + grow,
                            pts[:, 1].max() + grow])  # fmt: skip
        x1, y1, x2, y2 = _grown_box(box, (h, w), self.margin_frac, self.margin_px)
        gc = np.full((h, w), cv2.GC_BGD, dtype=np.uint8)
        gc[y1 : y2 + 1, x1 : x2 + 1] = cv2.GC_PR_FGD
        if (gc == cv2.GC_BGD).sum() < 16:  # the box covers (almost) the image: the border is the background sample
            gc[[0, -1], :] = cv2.GC_BGD
            gc[:, [0, -1]] = cv2.GC_BGD
        yy, xx = np.mgrid[0:h, 0:w]
        discs = []
        for (px, py), lab in zip(points, labels, strict=True):
            disc = (xx - px) ** 2 + (yy - py) ** 2 <= self.point_radius**2
            gc[disc] = cv2.GC_FGD if lab == 1 else cv2.GC_BGD
            if lab == 1:
                discs.append(disc)
        fallback = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        bgr = np.ascontiguousarray(pixels[..., ::-1])
        try:
            cv2.grabCut(bgr, gc, None, bgd, fgd, self.iterations, cv2.GC_INIT_WITH_MASK)
        except cv2.error:  # too few pixels of one class for GrabCut's colour models: keep the initial labelling
            return fallback
        out = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
        if self.keep_point_components and discs:
            labelled, _ = ndimage.label(out, structure=FOUR_CONNECTED)
            ids = {int(i) for d in discs for i in np.unique(labelled[d]) if i != 0}
            out = np.isin(labelled, list(ids)) if ids else out
        return out


WEIGHT_FREE: dict[str, type[_WeightFree]] = {
    "color": ColorRegionSegmenter,
    "colour": ColorRegionSegmenter,
    "grabcut": GrabCutSegmenter,
}


def is_weightfree(name: object) -> bool:
    """True when ``name`` names a weight-free segmenter (``color``/``colour``/``grabcut``)."""
    return isinstance(name, str) and name.lower() in WEIGHT_FREE


def load_weightfree(name: str, **kwargs) -> _WeightFree:
    """The weight-free segmenter called ``name`` (``color``/``colour``/``grabcut``), built with ``kwargs``."""
    try:
        cls = WEIGHT_FREE[name.lower()]
    except KeyError:
        raise UserError(f"unknown weight-free segmenter {name!r}; choose {', '.join(WEIGHT_FREE)}") from None
    return cls(**kwargs)


__all__ = [
    "ColorRegionSegmenter",
    "GrabCutSegmenter",
    "PixelEmbedding",
    "WEIGHT_FREE",
    "is_weightfree",
    "load_weightfree",
]
