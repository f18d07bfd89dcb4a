"""Video propagation: object masks on a keyframe carried to every other frame of a clip.

    from segzero.models.video import load_propagator
    prop = load_propagator("facebook/sam2-hiera-large")     # SAM2's video model (a sam2_video checkpoint)
    prop = load_propagator("color")                           # weight-free colour tracking (the shapes world)
    masks = prop.propagate(frames, keyframe=3, masks=object_masks)   # (N, H, W) bool -> (N, T, H, W) bool

Every propagator takes the clip's frames (T PIL RGB images of one size, original pixels), the keyframe's index and
its N object masks ((N, H, W) bool, e.g. ``SegResult.object_masks`` of the image pipeline), and returns each
object's mask on every frame, the keyframe's as given.

- ``VideoPropagator``: SAM2's video model through transformers (``Sam2VideoModel``, the hub's ``facebook/sam2-*``
  checkpoints are ``sam2_video``), or SAM3's tracker (``Sam3TrackerVideoModel``, the same interface; ``facebook/sam3``
  holds it): the clip's frames are preprocessed as the image segmenter does
  (``segzero.models.sam2_processing``, no torchvision), each object's keyframe mask is its input on that frame (as
  ``Sam2VideoProcessor.add_inputs_to_inference_session`` passes a mask: resized to the model input, >= 0.5), and
  the model tracks it forwards to the last frame and backwards to the first; mask logits are upsampled to the model
  input and then to the frame size (as ``Sam2VideoProcessor.post_process_masks`` does) and thresholded at 0. The
  preprocessed clip is kept on the CPU (a 1024 x 1024 frame is 12 MB), each frame moved to the device when tracked.
  Precision as ``segzero.models.segmenter``: float32 weights, bf16 autocast on a CUDA GPU with bf16.
- ``ColorTracker``: for flat-coloured worlds only: each object keeps the keyframe mask's most frequent colour and is
  followed frame by frame as the region of that colour that overlaps its previous mask most (else the nearest one).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from scipy import ndimage

from segzero.errors import UserError

PREPROCESSOR_CONFIG = "preprocessor_config.json"
# Checkpoint types whose video model tracks objects: model type -> (model class, inference session class) in
# transformers. A "sam2" (image-only) checkpoint has no memory modules; facebook/sam3 ("sam3_video": detector and
# tracker) loads its tracker through Sam3TrackerVideoModel.
SAM3_TRACKER = ("Sam3TrackerVideoModel", "Sam3TrackerVideoInferenceSession")
VIDEO_MODEL_TYPES: dict[str, tuple[str, str]] = {
    "sam2_video": ("Sam2VideoModel", "Sam2VideoInferenceSession"),
    "sam3_tracker_video": SAM3_TRACKER,
    "sam3_video": SAM3_TRACKER,
}
FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


@runtime_checkable
class PropagatorProtocol(Protocol):
    """Carries keyframe masks through a clip; ``description`` says what it is, in words."""

    description: str

    def propagate(self, frames: Sequence, keyframe: int, masks: np.ndarray) -> np.ndarray:
        """(N, H, W) bool masks on ``frames[keyframe]`` -> (N, T, H, W) bool on every frame."""
        ...


def check_inputs(frames: Sequence, keyframe: int, masks) -> np.ndarray:
    """The masks as (N, H, W) bool after checking them against the frames; ``ValueError`` naming what is off."""
    if not frames:
        raise ValueError("no frames to propagate over")
    if not 0 <= keyframe < len(frames):
        raise ValueError(f"keyframe {keyframe} is outside the clip's {len(frames)} frames")
    sizes = {im.size for im in frames}
    if len(sizes) != 1:
        raise ValueError(f"frames of a clip must share one size, got {sorted(sizes)}")
    width, height = frames[0].size
    arr = np.asarray(masks, dtype=bool)
    if arr.ndim != 3 or arr.shape[1:] != (height, width):
        raise ValueError(f"masks must have shape (N, {height}, {width}), got {arr.shape}")
    return arr


class ColorTracker:
    """Weight-free tracking by colour for the shapes world (see the module docstring; not for photographs)."""

    name = "color"
    description = "colour tracking (the flat-colour region each object keeps; for the shapes world)"

    def __init__(self, *, tolerance: int = 12, min_region_px: int = 4, max_jump_frac: float = 0.25) -> None:
        """``tolerance``: largest per-channel difference from the object's colour; ``min_region_px``: smaller
        regions are ignored; ``max_jump_frac``: a region that does not overlap the previous mask is taken only when
        its centroid is within this fraction of the shorter frame side of the previous mask's."""
        self.tolerance = int(tolerance)
        self.min_region_px = int(min_region_px)
        self.max_jump_frac = float(max_jump_frac)

    def propagate(self, frames: Sequence, keyframe: int, masks) -> np.ndarray:
        masks = check_inputs(frames, keyframe, masks)
        pixels = [np.asarray(im.convert("RGB"), dtype=np.int16) for im in frames]
        out = np.zeros((masks.shape[0], len(frames), *masks.shape[1:]), dtype=bool)
        for j, mask in enumerate(masks):
            out[j, keyframe] = mask
            if not mask.any():
                continue
            colours, counts = np.unique(pixels[keyframe][mask], axis=0, return_counts=True)
            colour = colours[int(counts.argmax())]
            for order in (range(keyframe + 1, len(frames)), range(keyframe - 1, -1, -1)):
                last = mask
                for t in order:
                    out[j, t] = self._follow(pixels[t], colour, last)
                    last = out[j, t] if out[j, t].any() else last  # a lost object is looked for where it was
        return out

    def _follow(self, pixels: np.ndarray, colour: np.ndarray, last: np.ndarray) -> np.ndarray:
        """The region of ``colour`` in ``pixels`` that continues ``last`` (empty when none does)."""
        close = (np.abs(pixels - colour) <= self.tolerance).all(axis=2)
        labelled, count = ndimage.label(close, structure=FOUR_CONNECTED)
        if count == 0:
            return np.zeros_like(last)
        index = np.arange(1, count + 1)
        sizes = ndimage.sum_labels(close, labelled, index=index)
        overlap = ndimage.sum_labels(last, labelled, index=index) * (sizes >= self.min_region_px)
        if overlap.max() > 0:
            return labelled == int(index[overlap.argmax()])
        centres = np.asarray(ndimage.center_of_mass(close, labelled, index=index)).reshape(-1, 2)
        distance = np.hypot(*(centres - np.asarray(ndimage.center_of_mass(last))).T)
        distance[sizes < self.min_region_px] = np.inf
        best = int(distance.argmin())
        if distance[best] > self.max_jump_frac * min(last.shape):
            return np.zeros_like(last)
        return labelled == int(index[best])

    def __repr__(self) -> str:
        return f"ColorTracker(tolerance={self.tolerance})"


class VideoPropagator:
    """SAM2's video model (or SAM3's tracker), frozen, tracking keyframe masks through a clip (module docstring)."""

    description = "SAM2 video"

    def __init__(self, model, session_class, preprocess, *, mask_threshold: float = 0.0, autocast_dtype=None):
        """``model``: a transformers ``Sam2VideoModel`` / ``Sam3TrackerVideoModel``; ``session_class``: its
        inference session class; ``preprocess``: its input size / normalisation (``Sam2PreprocessConfig``);
        ``mask_threshold``: logit threshold of a mask pixel; ``autocast_dtype``: run under ``torch.autocast`` in this
        dtype (None: none)."""
        self.model = model.eval()
        self.description = "SAM3 tracker video" if type(model).__name__.startswith("Sam3") else "SAM2 video"
        self.session_class = session_class
        self.preprocess = preprocess
        self.mask_threshold = float(mask_threshold)
        self.autocast_dtype = autocast_dtype
        first = next(model.parameters())
        self.device, self.dtype = first.device, first.dtype

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, *, device=None, dtype=None, mask_threshold: float = 0.0):
        """Load a video checkpoint (``VIDEO_MODEL_TYPES``; hub id or local folder) and its preprocessor config
        (SAM2 defaults at the model's input size when absent). ``UserError`` when it cannot be loaded."""
        import torch
        import transformers

        from segzero.models.checkpoint import missing_weights
        from segzero.models.sam2_processing import Sam2PreprocessConfig
        from segzero.models.segmenter import precision_for

        source = str(name_or_path)
        path = Path(source).expanduser()
        if path.exists():
            if not (path / "config.json").is_file():
                raise UserError(f"video segmenter folder {path} has no config.json (not a saved SAM2 video model)")
            if why := missing_weights(path):
                raise UserError(f"video segmenter folder {path}: {why}")
        try:
            config = transformers.AutoConfig.from_pretrained(source)
        except (OSError, ValueError) as err:
            raise UserError(f"cannot load video segmenter {source!r}: {str(err).splitlines()[0]}") from err
        if config.model_type not in VIDEO_MODEL_TYPES:
            raise UserError(
                f"{source!r} is a {config.model_type!r} checkpoint without a video model; video propagation needs "
                f"one of {', '.join(VIDEO_MODEL_TYPES)} (e.g. facebook/sam2-hiera-large), or --propagator color"
            )
        model_name, session_name = VIDEO_MODEL_TYPES[config.model_type]
        device_ = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        bf16 = device_.type == "cuda" and torch.cuda.is_bf16_supported()
        weights_dtype, autocast_dtype = precision_for(dtype, device_.type, bf16_supported=bf16)
        try:  # the class reads its own part of the checkpoint's config (facebook/sam3's holds two models)
            model = getattr(transformers, model_name).from_pretrained(source, dtype=weights_dtype)
        except OSError as err:
            raise UserError(f"cannot load video segmenter {source!r}: {str(err).splitlines()[0]}") from err
        model.to(device_)
        image_size = model.config.image_size
        size = int(image_size) if isinstance(image_size, int) else int(image_size[0])
        pre_file = path / PREPROCESSOR_CONFIG if path.exists() else _cached(source, PREPROCESSOR_CONFIG)
        try:
            preprocess = (
                Sam2PreprocessConfig.from_file(pre_file)
                if pre_file is not None and Path(pre_file).is_file()
                else Sam2PreprocessConfig(size=(size, size))
            )
        except (ValueError, TypeError) as err:
            raise UserError(f"video segmenter {source!r}: bad {PREPROCESSOR_CONFIG}: {err}") from err
        session_class = getattr(_module_of(model_name), session_name)
        return cls(model, session_class, preprocess, mask_threshold=mask_threshold, autocast_dtype=autocast_dtype)

    def _context(self):
        import torch

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.autocast_dtype is not None:
            stack.enter_context(torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype))
        return stack

    def propagate(self, frames: Sequence, keyframe: int, masks) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        from segzero.models.sam2_processing import preprocess_image

        masks = check_inputs(frames, keyframe, masks)
        height, width = masks.shape[1:]
        out = np.zeros((masks.shape[0], len(frames), height, width), dtype=bool)
        tracked = [j for j in range(masks.shape[0]) if masks[j].any()]  # an empty mask stays empty
        for j in range(masks.shape[0]):
            out[j, keyframe] = masks[j]
        if not tracked:
            return out
        # the preprocessed clip waits on the CPU; the session moves one frame at a time to the model's device
        pixels = torch.cat([preprocess_image(im, self.preprocess, device=self.device)[0].cpu() for im in frames])
        session = self.session_class(
            video=pixels.to(self.dtype), video_height=height, video_width=width, inference_device=self.device,
            inference_state_device=self.device, video_storage_device="cpu", dtype=self.dtype,
        )  # fmt: skip
        target = tuple(self.preprocess.size)
        for j in tracked:
            mask = torch.from_numpy(masks[j]).to(self.device, torch.float32)[None, None]
            mask = F.interpolate(mask, size=target, mode="bilinear", align_corners=False, antialias=True) >= 0.5
            session.add_mask_inputs(session.obj_id_to_idx(j), keyframe, mask.to(self.dtype))
        session.obj_with_new_inputs = list(tracked)
        with self._context():
            self.model(session, frame_idx=keyframe)
            for reverse in (False, True):
                for step in self.model.propagate_in_video_iterator(session, start_frame_idx=keyframe, reverse=reverse):
                    if step.frame_idx == keyframe:
                        continue
                    logits = F.interpolate(step.pred_masks.float(), size=target, mode="bilinear", align_corners=False)
                    logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
                    found = (logits[:, 0] > self.mask_threshold).cpu().numpy()
                    for obj_id, m in zip(step.object_ids, found, strict=True):
                        out[obj_id, step.frame_idx] = m
        return out

    def __repr__(self) -> str:
        return f"VideoPropagator(input_size={self.preprocess.size}, device={self.device}, dtype={self.dtype})"


def _module_of(model_name: str):
    """The transformers module that defines ``model_name`` (its inference session class lives beside it)."""
    import importlib

    import transformers

    return importlib.import_module(getattr(transformers, model_name).__module__)


def _cached(source: str, filename: str) -> str | None:
    from transformers.utils import cached_file

    return cached_file(
        source, filename, _raise_exceptions_for_missing_entries=False, _raise_exceptions_for_connection_errors=False
    )


WEIGHT_FREE_PROPAGATORS = {"color": ColorTracker, "colour": ColorTracker}


def default_propagator_for(segmenter: str) -> str:
    """The propagator paired with a keyframe ``segmenter``: colour tracking for the colour segmenter, else the
    segmenter's own checkpoint (the hub's SAM2 checkpoints hold the video model). ``UserError`` for GrabCut, which
    has no video counterpart."""
    name = str(segmenter)
    if name.lower() in WEIGHT_FREE_PROPAGATORS:
        return "color"
    if name.lower() == "grabcut":
        raise UserError("the grabcut segmenter has no video model: name one with --propagator (color or a SAM2 id)")
    return name


def load_propagator(name: str | Path, *, device=None, dtype=None):
    """The propagator ``name`` names: ``color`` (``ColorTracker``) or a video checkpoint (``VideoPropagator``; the
    source resolved as every model is, ``resolve_model_source``: a folder's files, or one probe of the hub)."""
    if str(name).lower() in WEIGHT_FREE_PROPAGATORS:
        return WEIGHT_FREE_PROPAGATORS[str(name).lower()]()
    from segzero.models.reasoner import resolve_model_source

    source = resolve_model_source(name, what="video segmenter")
    return VideoPropagator.from_pretrained(source, device=device, dtype=dtype)


__all__ = [
    "VIDEO_MODEL_TYPES",
    "ColorTracker",
    "PropagatorProtocol",
    "VideoPropagator",
    "check_inputs",
    "default_propagator_for",
    "load_propagator",
]
