"""What every reasoner and segmenter shares: the default checkpoints, the two interfaces, a segmenter's result.

    from segzero.models.base import DEFAULT_REASONER, DEFAULT_SEGMENTER, ReasonerProtocol, SegmenterProtocol
    isinstance(reasoner, ReasonerProtocol)     # Reasoner (transformers), VLLMReasoner (vLLM)
    isinstance(segmenter, SegmenterProtocol)   # Segmenter (SAM2), the weight-free "color" and "grabcut"

``SegZeroPipeline`` is typed with these protocols: anything with the same members plugs in. A reasoner's
``generate`` gets RGB PIL images as ``segzero.images.load_image`` returns them and queries ``check_query`` accepted
(the pipeline loads and checks each once); it answers in its ``frame``. A segmenter embeds images once
(``embed``) and decodes box / point prompts on an embedding (``predict``), all coordinates in original-image pixels
(x right, y down). ``ImageTarget`` gives a segmenter the current-image members (``set_image`` ...) from its
``embed``; ``check_prompts`` validates and clips prompts the same way for every segmenter. Light: numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_REASONER = "Ricky06662/Seg-Zero-7B"
"""The reasoner loaded when none is named (``segzero segment``, ``segzero eval``, ``SegZeroPipeline``)."""
DEFAULT_SEGMENTER = "facebook/sam2-hiera-large"
"""The segmenter loaded when none is named and the reasoner folder's ``segzero.json`` names none."""


@runtime_checkable
class Embedding(Protocol):
    """What a segmenter's ``embed`` returns per image: anything with the image's ``original_size`` (H, W)."""

    original_size: tuple[int, int]


@dataclass(frozen=True, eq=False)
class Prediction:
    """Masks for one image at its original size: ``mask`` (H, W) bool = OR of ``object_masks`` (N, H, W) bool;
    ``scores`` (N,) float32 = the segmenter's confidence in each object's mask (SAM2: its predicted IoU)."""

    mask: np.ndarray
    object_masks: np.ndarray
    scores: np.ndarray

    @classmethod
    def empty(cls, size: tuple[int, int]) -> Prediction:
        """No objects: an all-False (H, W) mask, (0, H, W) object masks and (0,) scores."""
        height, width = size
        return cls(
            mask=np.zeros((height, width), dtype=bool),
            object_masks=np.zeros((0, height, width), dtype=bool),
            scores=np.zeros((0,), dtype=np.float32),
        )


@runtime_checkable
class ReasonerProtocol(Protocol):
    """A reasoning VLM: ``generate`` answers each (image, query) with ``<think>...</think><answer>...</answer>``.

    ``name``: the model's id or folder; ``prompt``: its prompt family (``segzero.prompts.PROMPT_KINDS``);
    ``frame``: the side (int) or (w, h) images are resized to, the frame its answers' coordinates are in unless
    it has an ``answer_frame`` (not a required member: ``segzero.models.checkpoint.answer_frame_of`` reads it, or
    resolves it from ``name`` and ``prompt``); ``max_new_tokens``: its generation limit.
    """

    name: str
    prompt: str
    frame: int | tuple[int, int]
    max_new_tokens: int

    def generate(self, images: list, queries: list[str], **overrides: Any) -> list[str]:
        """Raw completions, one per (image, query), in input order; ``overrides`` replace generation settings
        (``max_new_tokens``, ``temperature``, ``batch_size``, ...) for this call."""
        ...


@runtime_checkable
class SegmenterProtocol(Protocol):
    """A promptable segmenter: embeds each image once, then decodes any number of box / point prompts on it.

    ``description``: what it is, in words (the web demo names it); ``num_embeddings``: images embedded so far.
    """

    description: str
    num_embeddings: int

    def embed(self, images: Sequence[Image.Image | np.ndarray], *, batch_size: int | None = None) -> list[Any]:
        """One ``Embedding`` per image (PIL RGB or (H, W, 3) uint8), ``batch_size`` per pass (None: its own)."""
        ...

    def predict(self, boxes=None, points=None, labels=None, *, multimask=True, embedding: Any = None) -> Prediction:
        """Masks of N objects on ``embedding`` (default: the current image's): ``boxes`` (N, 4) inclusive
        ``(x1, y1, x2, y2)``, ``points`` (N, P, 2) ``(x, y)``, ``labels`` (N, P) (1 foreground, 0 background)."""
        ...

    def set_image(self, image: Image.Image | np.ndarray) -> None:
        """Embed ``image`` and make it the target of later ``predict`` calls."""
        ...

    def set_embedding(self, embedding: Any) -> None:
        """Make a precomputed embedding the target of later ``predict`` calls."""
        ...

    def reset_image(self) -> None:
        """Forget the current image."""
        ...

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(H, W) of the current image, or None."""
        ...


class ImageTarget:
    """The current-image state shared by every segmenter: ``embed`` (defined by each) + these four members.

    ``_embedding`` holds the current image's embedding (anything with ``original_size`` (H, W)), or None.
    """

    _embedding = None
    description = "a segmenter"  # what turns answers into masks, in words (the web demo names it)

    def set_image(self, image: Image.Image | np.ndarray) -> None:
        """Embed ``image`` (once) and make it the target of later ``predict`` calls."""
        self._embedding = self.embed([image])[0]

    def set_embedding(self, embedding) -> None:
        """Make a precomputed embedding (from ``embed``) the target of later ``predict`` calls."""
        self._embedding = embedding

    def reset_image(self) -> None:
        """Forget the current image."""
        self._embedding = None

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(H, W) of the current image, or None before ``set_image``."""
        return None if self._embedding is None else self._embedding.original_size


def check_prompts(
    boxes: object, points: object, labels: object, size: tuple[int, int]
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, int]:
    """Validate and clip prompts: boxes (N, 4), points (N, P, 2), labels (N, P) -> arrays in original pixels.

    Returns ``(boxes (N, 4) float64 with x1 <= x2, y1 <= y2, points (N, P, 2) float64, labels (N, P) int64 (default
    all 1), N)``, each clipped to the (H, W) ``size``; None for what was not given (points with P = 0 count as
    none). ``ValueError`` for wrong shapes, different object counts, labels without points or non-finite values.
    """
    height, width = size
    box_arr = pt_arr = lab_arr = None
    counts = []
    if boxes is not None:
        box_arr = np.asarray(boxes, dtype=np.float64)
        if box_arr.size == 0:
            box_arr = box_arr.reshape(0, 4)
        if box_arr.ndim != 2 or box_arr.shape[1] != 4:
            raise ValueError(f"boxes must have shape (N, 4), got {box_arr.shape}")
        counts.append(box_arr.shape[0])
    if points is not None:
        pt_arr = np.asarray(points, dtype=np.float64)
        if pt_arr.size == 0 and pt_arr.ndim != 3:
            pt_arr = pt_arr.reshape(0, 0, 2)
        if pt_arr.ndim != 3 or pt_arr.shape[2] != 2:
            raise ValueError(f"points must have shape (N, P, 2), got {pt_arr.shape}")
        if labels is None:
            lab_arr = np.ones(pt_arr.shape[:2], dtype=np.int64)
        else:
            lab_arr = np.asarray(labels, dtype=np.int64)
            if lab_arr.size == 0 and pt_arr.size == 0:
                lab_arr = lab_arr.reshape(pt_arr.shape[:2])
            if lab_arr.shape != pt_arr.shape[:2]:
                raise ValueError(f"labels must have shape (N, P) = {pt_arr.shape[:2]}, got {lab_arr.shape}")
        if pt_arr.shape[1] == 0:  # no points per object: boxes alone (or nothing)
            if box_arr is None and pt_arr.shape[0] > 0:
                raise ValueError(f"points {pt_arr.shape} give no point per object and no boxes were given")
            if box_arr is None:
                counts.append(0)
            pt_arr = lab_arr = None
        else:
            counts.append(pt_arr.shape[0])
    elif labels is not None:
        raise ValueError("labels given without points")
    if len(set(counts)) > 1:
        raise ValueError(f"boxes and points describe different numbers of objects: {counts}")
    for name, arr in (("boxes", box_arr), ("points", pt_arr)):
        if arr is not None and not np.isfinite(arr).all():
            raise ValueError(f"{name} contain non-finite coordinates")
    if box_arr is not None:
        x1, x2 = np.minimum(box_arr[:, 0], box_arr[:, 2]), np.maximum(box_arr[:, 0], box_arr[:, 2])
        y1, y2 = np.minimum(box_arr[:, 1], box_arr[:, 3]), np.maximum(box_arr[:, 1], box_arr[:, 3])
        box_arr = np.stack([x1, y1, x2, y2], axis=1)
        box_arr[:, 0::2] = box_arr[:, 0::2].clip(0, width - 1)
        box_arr[:, 1::2] = box_arr[:, 1::2].clip(0, height - 1)
    if pt_arr is not None:
        pt_arr = pt_arr.copy()
        pt_arr[..., 0] = pt_arr[..., 0].clip(0, width - 1)
        pt_arr[..., 1] = pt_arr[..., 1].clip(0, height - 1)
    return box_arr, pt_arr, lab_arr, (counts[0] if counts else 0)


__all__ = [
    "DEFAULT_REASONER",
    "DEFAULT_SEGMENTER",
    "Embedding",
    "ImageTarget",
    "Prediction",
    "ReasonerProtocol",
    "SegmenterProtocol",
    "check_prompts",
]
