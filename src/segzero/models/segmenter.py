"""SAM2 / SAM3-tracker segmenter adapter (transformers ``Sam2Model``, ``Sam3TrackerModel``), in the spirit of
segment-anything's predictor.

    from segzero.models.segmenter import Segmenter
    seg = Segmenter.from_pretrained("facebook/sam2-hiera-large")     # or a local folder (e.g. a tiny model)
    seg = Segmenter.from_pretrained("facebook/sam3")                 # SAM3's tracker: the same box / point prompts
    seg.set_image(pil_image)                                          # image embedding computed once
    pred = seg.predict(boxes=[[x1, y1, x2, y2]], points=[[[x, y], [x, y]]])
    pred.mask            # (H, W) bool, OR of the objects' masks, H x W = the original image size
    pred.object_masks    # (N, H, W) bool, one mask per object (the highest-scoring of SAM2's candidates)
    pred.scores          # (N,) float32, SAM2's predicted IoU of each kept mask

All prompt coordinates are in ORIGINAL image pixels (x right, y down): boxes (N, 4) inclusive ``(x1, y1, x2, y2)``,
points (N, P, 2) ``(x, y)``, labels (N, P) (1 foreground, 0 background; default all 1). They are clipped to the
image and mapped to SAM2's input frame (1024 x 1024 for the released checkpoints). Several images: ``embed(images)``
computes embeddings in batches and ``predict(..., embedding=e)`` uses one of them without ``set_image``.

SAM3's tracker (``Sam3TrackerModel``) takes the same prompts and gives the same outputs as SAM2 (its image input is
1008 x 1008, with mean/std 0.5, read from its ``preprocessor_config.json``): a checkpoint whose ``config.json`` is a
``sam3_tracker`` model, or the hub's ``facebook/sam3`` (a ``sam3_video`` checkpoint: its detector's vision backbone
and the tracker's neck and decoder are what loads), is a drop-in for SAM2. SAM3's concept mode (text and box
exemplars) is ``segzero.models.sam3``.

Pre/post-processing is ``segzero.models.sam2_processing`` (no torchvision needed). Device: CUDA when available,
else CPU. Precision (``dtype``): by default as the reference scripts run SAM2, float32 weights, and on a CUDA GPU
with bf16 support the forward passes under ``torch.autocast(dtype=torch.bfloat16)`` (Seg-Zero's inference and
evaluation scripts); ``dtype="float32"`` runs float32 without autocast (VisionReasoner's own scripts),
``dtype="bfloat16"`` stores the weights in bf16 (half the weight memory; masks can differ from the reference's
near object borders). Missing folders, folders without their weights or unreachable hub ids raise
``segzero.errors.UserError`` with one line.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from segzero.errors import UserError
from segzero.models.base import DEFAULT_SEGMENTER, ImageTarget, Prediction, check_prompts
from segzero.models.checkpoint import missing_weights
from segzero.models.sam2_processing import Sam2PreprocessConfig, preprocess_image, to_input_frame, upsample_logits

PREPROCESSOR_CONFIG = "preprocessor_config.json"
# Checkpoint types whose image model is transformers' Sam2Model (the hub's facebook/sam2-* repos are "sam2_video").
SAM2_MODEL_TYPES = ("sam2", "sam2_video")
# Checkpoint types whose promptable image model is transformers' Sam3TrackerModel (the hub's facebook/sam3 is
# "sam3_video": detector + tracker; transformers maps its weights onto the tracker).
SAM3_TRACKER_MODEL_TYPES = ("sam3_tracker", "sam3_tracker_video", "sam3_video")
# model type -> (transformers class, what it is in words): the promptable segmenters this adapter drives.
PROMPTABLE_MODELS = {
    **dict.fromkeys(SAM2_MODEL_TYPES, ("Sam2Model", "SAM2")),
    **dict.fromkeys(SAM3_TRACKER_MODEL_TYPES, ("Sam3TrackerModel", "SAM3 (tracker)")),
}
# Upsampled mask logits held at once by ``predict`` (float32 values: 2**26 = 256 MB; one 12-megapixel mask is 48 MB).
UPSAMPLE_ELEMENTS = 1 << 26
# Images per SAM2 encoder pass in ``embed`` (when not given): on a GPU a batch fills the device; on the CPU one image
# per pass is the fastest per image (larger batches leave the caches).
EMBED_BATCH_CPU = 1
EMBED_BATCH_ACCELERATOR = 4


@dataclass(frozen=True, eq=False)
class ImageEmbedding:
    """SAM2 image features of one image: ``features`` = the model's multi-level maps, each (1, C_l, h_l, w_l) on the
    model's device, in its dtype or its autocast dtype (finest first); ``original_size`` = (H, W) in pixels."""

    features: tuple[torch.Tensor, ...]
    original_size: tuple[int, int]


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def precision_for(
    dtype: str | torch.dtype | None, device_type: str, *, bf16_supported: bool
) -> tuple[torch.dtype, torch.dtype | None]:
    """(weights dtype, autocast dtype or None) for a ``dtype`` request on a device type ("cuda", "cpu", ...).

    None: the reference's, float32 weights with bf16 autocast on a CUDA GPU that supports bf16, plain float32
    elsewhere. A dtype (or its name): the weights in it, no autocast.
    """
    if dtype is None:
        return torch.float32, (torch.bfloat16 if device_type == "cuda" and bf16_supported else None)
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(resolved, torch.dtype):
            raise UserError(f"unknown segmenter dtype {dtype!r} (use float32, bfloat16 or float16)")
        dtype = resolved
    return dtype, None


def _looks_like_path(name: str) -> bool:
    """True for strings that can only be a filesystem path, not a hub id like ``owner/name``."""
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1 or name.endswith("/")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _wrong_model_type(what: str, source: str, model_type: object) -> UserError:
    """The one line for a checkpoint that is not a promptable SAM2 / SAM3 (a SAM3 detector: how to use it)."""
    hint = f" (SAM3's concept detector: use it as concept:{source})" if model_type == "sam3" else ""
    return UserError(f"{what} holds a {model_type!r} model, expected SAM2 or SAM3 (tracker){hint}")


def inference_context(device: torch.device, autocast_dtype: torch.dtype | None) -> contextlib.ExitStack:
    """``torch.inference_mode()``, under ``torch.autocast`` on ``device`` when ``autocast_dtype`` is set (fp32
    weights computed in bf16, the reference's SAM precision)."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if autocast_dtype is not None:
        stack.enter_context(torch.autocast(device_type=device.type, dtype=autocast_dtype))
    return stack


class Segmenter(ImageTarget):
    """A frozen SAM2 (or SAM3 tracker) that embeds an image once and answers box/point prompts any number of times.
    ``description`` names which."""

    description = "SAM2"

    def __init__(
        self,
        model: torch.nn.Module,
        preprocess: Sam2PreprocessConfig,
        *,
        mask_threshold: float = 0.0,
        max_objects_per_call: int = 16,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        """``model``: a transformers ``Sam2Model`` or ``Sam3TrackerModel``; ``preprocess``: its input size /
        normalisation; ``mask_threshold``: logit threshold for a mask pixel (0.0 as in SAM2);
        ``max_objects_per_call``: objects decoded per forward pass (bounds memory for many objects);
        ``autocast_dtype``: run the forward passes under ``torch.autocast`` in this dtype (None: in the weights'
        dtype)."""
        self.model = model.eval()
        self.preprocess = preprocess
        self.mask_threshold = float(mask_threshold)
        self.max_objects_per_call = max(1, int(max_objects_per_call))
        self.autocast_dtype = autocast_dtype
        first = next(model.parameters())
        self.device, self.dtype = first.device, first.dtype
        self.num_embeddings = 0  # image embeddings computed so far (set_image / embed)
        self._embedding: ImageEmbedding | None = None
        self.description = PROMPTABLE_MODELS.get(getattr(model.config, "model_type", None), (None, "SAM2"))[1]

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_SEGMENTER,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        mask_threshold: float = 0.0,
        max_objects_per_call: int = 16,
        local_files_only: bool = False,
    ) -> Segmenter:
        """Load a SAM2 or SAM3 checkpoint (hub id or local folder saved with ``save_pretrained``; its config's
        ``model_type`` picks the model, ``PROMPTABLE_MODELS``) and its ``preprocessor_config.json`` (SAM2 defaults
        when absent). ``dtype``: see the module doc (None: the reference's precision). Raises ``UserError`` when it
        cannot be loaded."""
        source = str(name_or_path)
        path = Path(source).expanduser()
        is_local = path.exists()
        if path.is_file():
            raise UserError(f"segmenter {path} is a file; expected a folder saved with save_pretrained (or a hub id)")
        if is_local:
            config_file = path / "config.json"
            if not config_file.is_file():
                raise UserError(f"segmenter folder {path} has no config.json (not a saved SAM2 or SAM3 model)")
            try:
                model_type = json.loads(config_file.read_text()).get("model_type")
            except (OSError, ValueError, AttributeError) as err:  # unreadable, not JSON, not a JSON object
                raise UserError(f"segmenter folder {path}: unreadable config.json ({_first_line(err)})") from err
            if model_type not in PROMPTABLE_MODELS:
                raise _wrong_model_type(f"segmenter folder {path}", source, model_type)
            if why := missing_weights(path):
                raise UserError(f"segmenter folder {path}: {why}")
            source = str(path)
        elif _looks_like_path(source):
            raise UserError(f"segmenter folder does not exist: {source}")

        import transformers
        from transformers import AutoConfig
        from transformers.utils import cached_file

        device_ = _resolve_device(device)
        bf16 = device_.type == "cuda" and torch.cuda.is_bf16_supported()
        dtype_, autocast_dtype = precision_for(dtype, device_.type, bf16_supported=bf16)
        where = "" if is_local else " (no such local folder; hub download failed: offline or unknown id?)"
        try:
            config = AutoConfig.from_pretrained(source, local_files_only=local_files_only)
        except (OSError, ValueError) as err:  # ValueError: a config.json transformers cannot read
            raise UserError(f"cannot load segmenter {source!r}{where}: {_first_line(err)}") from err
        if config.model_type not in PROMPTABLE_MODELS:
            raise _wrong_model_type(f"segmenter {source!r}", source, config.model_type)
        model_class = getattr(transformers, PROMPTABLE_MODELS[config.model_type][0])
        try:  # a sam2_video / sam3_video checkpoint (the hub's facebook/sam2-*, facebook/sam3) loads its image part
            model = model_class.from_pretrained(source, config=config, dtype=dtype_, local_files_only=local_files_only)
        except OSError as err:
            raise UserError(f"cannot load segmenter {source!r}{where}: {_first_line(err)}") from err
        model.to(device_)

        if is_local:
            pre_file = path / PREPROCESSOR_CONFIG
            pre_path = str(pre_file) if pre_file.is_file() else None
        else:
            pre_path = cached_file(
                source,
                PREPROCESSOR_CONFIG,
                local_files_only=local_files_only,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
            )
        image_size = int(model.config.prompt_encoder_config.image_size)
        if pre_path is None:  # SAM2 defaults at the model's input size
            preprocess = Sam2PreprocessConfig(size=(image_size, image_size))
        else:
            try:
                preprocess = Sam2PreprocessConfig.from_file(pre_path)
            except (ValueError, TypeError) as err:  # json.JSONDecodeError is a ValueError
                raise UserError(f"segmenter {source!r}: bad {PREPROCESSOR_CONFIG}: {_first_line(err)}") from err
        if preprocess.size != (image_size, image_size):
            raise UserError(
                f"segmenter {source!r}: preprocessor size {preprocess.size} does not match the model input "
                f"size {image_size}"
            )
        return cls(
            model,
            preprocess,
            mask_threshold=mask_threshold,
            max_objects_per_call=max_objects_per_call,
            autocast_dtype=autocast_dtype,
        )

    def _forward_context(self) -> contextlib.ExitStack:
        return inference_context(self.device, self.autocast_dtype)

    # ------------------------------------------------------------------ images

    def embed(
        self, images: Sequence[Image.Image | np.ndarray], *, batch_size: int | None = None
    ) -> list[ImageEmbedding]:
        """Compute SAM2 embeddings of ``images`` (PIL, or (H, W, 3) uint8 arrays), ``batch_size`` per encoder pass
        (None: ``EMBED_BATCH_CPU`` on the CPU, ``EMBED_BATCH_ACCELERATOR`` on a GPU); counts one ``num_embeddings``
        per image. Does not change the image set by ``set_image``."""
        if batch_size is None:
            batch_size = EMBED_BATCH_CPU if self.device.type == "cpu" else EMBED_BATCH_ACCELERATOR
        pils = [im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im)) for im in images]
        out: list[ImageEmbedding] = []
        for start in range(0, len(pils), max(1, batch_size)):
            chunk = pils[start : start + max(1, batch_size)]
            prepared = [preprocess_image(im, self.preprocess, device=self.device) for im in chunk]
            pixels = torch.cat([pixel_values for pixel_values, _ in prepared]).to(self.dtype)
            with self._forward_context():
                features = self.model.get_image_embeddings(pixels)
            for i, (_, size) in enumerate(prepared):  # a slice of a one-image batch needs no copy to free the rest
                levels = tuple(f[i : i + 1] if len(chunk) == 1 else f[i : i + 1].clone() for f in features)
                out.append(ImageEmbedding(levels, size))
            self.num_embeddings += len(chunk)
        return out

    # ------------------------------------------------------------------ prompts

    def predict(
        self, boxes=None, points=None, labels=None, *, multimask=True, embedding: ImageEmbedding | None = None
    ) -> Prediction:
        """Segment N objects of the current image (or of ``embedding``).

        ``boxes`` (N, 4) inclusive (x1, y1, x2, y2) and/or ``points`` (N, P, 2) (x, y), in original pixels (clipped
        to the image); ``labels`` (N, P) (1 foreground, 0 background; default all 1). With ``multimask`` SAM2
        proposes 3 candidates per object and the one with the highest predicted IoU is kept (as Seg-Zero does);
        without it SAM2's single-mask output is used. N = 0 (or no prompts) gives an empty mask.
        """
        emb = embedding if embedding is not None else self._embedding
        if emb is None:
            raise RuntimeError("Segmenter.predict() needs an image: call set_image(image) first (or pass embedding=)")
        size = emb.original_size
        box_arr, pt_arr, lab_arr, count = check_prompts(boxes, points, labels, size)
        if count == 0:
            return Prediction.empty(size)

        object_masks = np.zeros((count, *size), dtype=bool)
        scores = np.zeros((count,), dtype=np.float32)
        for start in range(0, count, self.max_objects_per_call):
            stop = min(count, start + self.max_objects_per_call)
            kwargs: dict[str, torch.Tensor] = {}
            if box_arr is not None:
                corners = torch.tensor(box_arr[start:stop], dtype=torch.float32).view(-1, 2, 2)
                kwargs["input_boxes"] = to_input_frame(corners, size, self.preprocess).view(1, -1, 4).to(self.device)
            if pt_arr is not None:
                pts = torch.tensor(pt_arr[start:stop], dtype=torch.float32)
                kwargs["input_points"] = to_input_frame(pts, size, self.preprocess)[None].to(self.device)
                kwargs["input_labels"] = torch.tensor(lab_arr[start:stop], dtype=torch.int64)[None].to(self.device)
            with self._forward_context():
                out = self.model(image_embeddings=list(emb.features), multimask_output=multimask, **kwargs)
                iou = out.iou_scores[0].float()  # (k, M)
                best = iou.argmax(dim=-1)  # (k,)
                rows = torch.arange(best.shape[0], device=best.device)
                logits = out.pred_masks[0][rows, best]  # (k, h, w)
                scores[start:stop] = iou[rows, best].cpu().numpy()
                # as many objects per upsampling as fit UPSAMPLE_ELEMENTS float32 values, one host copy each
                step = max(1, UPSAMPLE_ELEMENTS // (size[0] * size[1]))
                for j in range(0, stop - start, step):
                    full = upsample_logits(logits[j : j + step], size) > self.mask_threshold
                    object_masks[start + j : start + j + full.shape[0]] = full.cpu().numpy()
        return Prediction(mask=object_masks.any(axis=0), object_masks=object_masks, scores=scores)

    def __repr__(self) -> str:
        return (
            f"Segmenter(input_size={self.preprocess.size}, device={self.device}, dtype={self.dtype}, "
            f"autocast_dtype={self.autocast_dtype}, num_embeddings={self.num_embeddings})"
        )


__all__ = [
    "PROMPTABLE_MODELS",
    "SAM2_MODEL_TYPES",
    "SAM3_TRACKER_MODEL_TYPES",
    "ImageEmbedding",
    "Segmenter",
    "precision_for",
]
