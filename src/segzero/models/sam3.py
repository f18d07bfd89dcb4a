"""SAM3's concept mode (transformers ``Sam3Model``): segment what a phrase names, the answer's box as an exemplar.

    from segzero.models.sam3 import ConceptSegmenter
    seg = ConceptSegmenter.from_pretrained("facebook/sam3")      # a sam3 or sam3_video checkpoint (hub id or folder)
    seg.set_image(pil_image)
    pred = seg.predict(boxes=[[x1, y1, x2, y2]], phrases=["red mug"])
    pred.mask, pred.object_masks, pred.scores   # (H, W) bool, (N, H, W) bool, (N,) float32: SAM3's confidence
    SegZeroPipeline.from_pretrained(reasoner=..., segmenter="concept:facebook/sam3")   # --segmenter concept:ID

SAM3 detects every instance of a concept: a short noun phrase and / or image exemplars (boxes). For each object the
reasoner answered, this segmenter prompts SAM3 with the object's phrase (its ``label``: the pipeline passes each
object's ``SegObject.label`` as ``phrases``; ``default_phrase`` when it has none, "visual" as SAM3's processor names a
box-only prompt) and, with ``box_exemplars``, its box as a positive exemplar. Of the instances SAM3 finds, those
scoring above ``score_threshold`` (score = detection probability x presence probability, as transformers'
``post_process_instance_segmentation`` computes it) are candidates; ``select="box"`` keeps the candidate whose box
overlaps the answer's box most (the best-scoring one when the object has no box), ``select="all"`` the union of
them all (every instance of the phrase). The object's score is the kept instance's (the best kept one's for
"all"); an object with no candidate gets an empty mask and score 0.0: SAM3 found nothing. Points are not concept
prompts: they are accepted (the segmenter interface) and not used.

Box exemplars go through SAM3's geometry encoder, which needs torchvision (``roi_align``); ``box_exemplars=None``
uses them when torchvision is installed, else the phrases alone (the answer's box then still selects the instance).
Coordinates in and out are original-image pixels; the image is resized to SAM3's 1008 x 1008 input as in
``segzero.models.sam2_processing`` (settings from the checkpoint's ``preprocessor_config.json``). Precision as
``segzero.models.segmenter`` (float32 weights, bf16 autocast on a CUDA GPU with bf16). Missing folders, folders
without weights, a checkpoint without a concept detector or an unreachable hub id raise ``UserError`` in one line.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from segzero.errors import UserError
from segzero.geometry import box_iou
from segzero.models.base import ImageTarget, Prediction, check_prompts
from segzero.models.checkpoint import missing_weights
from segzero.models.sam2_processing import Sam2PreprocessConfig, preprocess_image
from segzero.models.segmenter import (
    PREPROCESSOR_CONFIG,
    _first_line,
    _resolve_device,
    inference_context,
    precision_for,
)

CONCEPT_PREFIX = "concept:"
"""``--segmenter concept:ID_OR_FOLDER`` (``SegZeroPipeline.from_pretrained(segmenter=...)``) picks concept mode."""
# Checkpoint types that hold SAM3's concept detector (the hub's facebook/sam3 is "sam3_video": detector + tracker).
CONCEPT_MODEL_TYPES = ("sam3", "sam3_video")
DEFAULT_PHRASE = "visual"  # SAM3's processor's text for a prompt of exemplar boxes alone
TEXT_TOKENS = 32  # SAM3's text length: phrases are padded (and here truncated) to it, as its processor pads them
SELECTIONS = ("box", "all")
# An instance is a candidate above this score (transformers' instance post-processing defaults to 0.3; stricter here,
# where one object is wanted), a mask pixel above this probability (that post-processing's own default).
SCORE_THRESHOLD = 0.5
MASK_THRESHOLD = 0.5


@dataclass(frozen=True, eq=False)
class ConceptEmbedding:
    """SAM3's vision features of one image (``vision``: the ``Sam3VisionEncoderOutput`` of a one-image batch, on the
    model's device) and the image's ``original_size`` (H, W)."""

    vision: Any
    original_size: tuple[int, int]


def pick_instances(
    scores: np.ndarray, boxes: np.ndarray, box: Sequence[float] | None, *, threshold: float, select: str
) -> list[int]:
    """Which of SAM3's instances make one object's mask: the indices into ``scores`` (Q,) / ``boxes`` (Q, 4) (pixels).

    Candidates score above ``threshold``. ``select="box"``: the candidate whose box has the largest IoU with ``box``
    (ties: the better score; no ``box``: the best score), as a one-element list; ``"all"``: every candidate, best
    score first. ``[]`` when no instance scores above ``threshold``.

    >>> pick_instances(np.array([0.9, 0.6, 0.2]), np.array([[0, 0, 9, 9], [20, 20, 29, 29], [20, 20, 29, 29]]),
    ...                (21, 21, 30, 30), threshold=0.5, select="box")
    [1]
    """
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {SELECTIONS}, got {select!r}")
    candidates = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > threshold]
    if not candidates or select == "all":
        return candidates
    if box is None:
        return candidates[:1]
    overlaps = [box_iou(boxes[i], box) for i in candidates]
    return [candidates[int(np.argmax(overlaps))]]  # argmax keeps the first (best-scoring) of equal overlaps


class ConceptSegmenter(ImageTarget):
    """SAM3 in concept mode behind the segmenter interface (``segzero.models.base.SegmenterProtocol``); see the
    module doc. ``takes_phrases``: the pipeline passes each object's label as ``phrases``."""

    description = "SAM3 (concept mode)"
    takes_phrases = True

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        preprocess: Sam2PreprocessConfig,
        *,
        score_threshold: float = SCORE_THRESHOLD,
        mask_threshold: float = MASK_THRESHOLD,
        select: str = "box",
        box_exemplars: bool = False,
        default_phrase: str = DEFAULT_PHRASE,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        """``model``: a transformers ``Sam3Model``; ``tokenizer``: its text tokenizer; ``preprocess``: its input
        size / normalisation; the rest: see the module doc (``autocast_dtype``: run under ``torch.autocast``)."""
        if select not in SELECTIONS:
            raise UserError(f"select must be one of {', '.join(SELECTIONS)}, got {select!r}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.score_threshold = float(score_threshold)
        self.mask_threshold = float(mask_threshold)
        self.select = select
        self.box_exemplars = bool(box_exemplars)
        self.default_phrase = default_phrase
        self.autocast_dtype = autocast_dtype
        first = next(model.parameters())
        self.device, self.dtype = first.device, first.dtype
        self.num_embeddings = 0
        self._embedding: ConceptEmbedding | None = None

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        box_exemplars: bool | None = None,
        local_files_only: bool = False,
        **settings: Any,
    ) -> ConceptSegmenter:
        """Load SAM3's concept detector, its tokenizer and ``preprocessor_config.json`` from a hub id or a folder
        (a ``sam3`` or ``sam3_video`` checkpoint). ``box_exemplars``: see the module doc (None: when torchvision is
        installed); ``settings``: ``score_threshold``, ``mask_threshold``, ``select``, ``default_phrase``."""
        from transformers import AutoConfig, AutoTokenizer, Sam3Model

        has_torchvision = importlib.util.find_spec("torchvision") is not None
        if box_exemplars and not has_torchvision:
            raise UserError(
                "SAM3's box exemplars need torchvision (its geometry encoder uses torchvision's roi_align): install "
                "the torchvision of your torch, or use phrases alone (box_exemplars=False)"
            )
        if box_exemplars is None:
            box_exemplars = has_torchvision
        source = str(name_or_path).removeprefix(CONCEPT_PREFIX)
        path = Path(source).expanduser()
        is_local = path.is_dir()
        if is_local and (why := missing_weights(path)):
            raise UserError(f"segmenter folder {path}: {why}")
        where = "" if is_local else " (no such local folder; hub download failed: offline or unknown id?)"
        try:
            config = AutoConfig.from_pretrained(source, local_files_only=local_files_only)
        except (OSError, ValueError) as err:
            raise UserError(f"cannot load segmenter {source!r}{where}: {_first_line(err)}") from err
        if config.model_type not in CONCEPT_MODEL_TYPES:
            raise UserError(
                f"segmenter {source!r} holds a {config.model_type!r} model; concept mode needs SAM3's detector "
                f"({' or '.join(CONCEPT_MODEL_TYPES)})"
            )
        device_ = _resolve_device(device)
        bf16 = device_.type == "cuda" and torch.cuda.is_bf16_supported()
        dtype_, autocast_dtype = precision_for(dtype, device_.type, bf16_supported=bf16)
        try:
            model = Sam3Model.from_pretrained(source, config=config, dtype=dtype_, local_files_only=local_files_only)
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
        except OSError as err:
            raise UserError(f"cannot load segmenter {source!r}{where}: {_first_line(err)}") from err
        model.to(device_)
        preprocess = _preprocess_config(source, is_local, model, local_files_only=local_files_only)
        return cls(
            model, tokenizer, preprocess, box_exemplars=box_exemplars, autocast_dtype=autocast_dtype, **settings
        )

    def _forward_context(self) -> contextlib.ExitStack:
        return inference_context(self.device, self.autocast_dtype)

    def embed(
        self, images: Sequence[Image.Image | np.ndarray], *, batch_size: int | None = None
    ) -> list[ConceptEmbedding]:
        """SAM3 vision features of each image (PIL, or (H, W, 3) uint8), one image per encoder pass (``batch_size``
        is accepted for interface parity); counts one ``num_embeddings`` per image."""
        out = []
        for image in images:
            pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
            pixels, size = preprocess_image(pil, self.preprocess, device=self.device)
            with self._forward_context():
                vision = self.model.get_vision_features(pixel_values=pixels.to(self.dtype))
            out.append(ConceptEmbedding(vision, size))
            self.num_embeddings += 1
        return out

    def predict(
        self,
        boxes=None,
        points=None,
        labels=None,
        *,
        multimask: bool = True,
        embedding: ConceptEmbedding | None = None,
        phrases=None,
    ) -> Prediction:
        """Masks of N objects on ``embedding`` (default: the current image's): ``boxes`` (N, 4) inclusive pixels (the
        exemplars and the selection), ``phrases`` N phrases (None entries: ``default_phrase``); with no boxes or
        points, one object per phrase. ``points`` / ``labels`` are checked and not used, ``multimask`` is ignored.
        """
        emb = embedding if embedding is not None else self._embedding
        if emb is None:
            raise RuntimeError("ConceptSegmenter.predict() needs an image: call set_image(image) first")
        size = emb.original_size
        box_arr, _, _, count = check_prompts(boxes, points, labels, size)
        if box_arr is None and points is None and phrases is not None:
            count = len(phrases)
        if phrases is not None and len(phrases) != count:
            raise ValueError(f"{len(phrases)} phrases for {count} objects")
        object_masks = np.zeros((count, *size), dtype=bool)
        scores = np.zeros((count,), dtype=np.float32)
        for j in range(count):
            phrase = (phrases[j] if phrases is not None else None) or self.default_phrase
            box = None if box_arr is None else box_arr[j]
            object_masks[j], scores[j] = self._segment_one(emb, phrase, box)
        return Prediction(mask=object_masks.any(axis=0), object_masks=object_masks, scores=scores)

    def _segment_one(self, emb: ConceptEmbedding, phrase: str, box: np.ndarray | None) -> tuple[np.ndarray, float]:
        """One object's (H, W) bool mask and score (see the module doc)."""
        height, width = emb.original_size
        text = self.tokenizer(
            [phrase], padding="max_length", max_length=TEXT_TOKENS, truncation=True, return_tensors="pt"
        ).to(self.device)
        exemplar = {}
        if self.box_exemplars and box is not None:
            x1, y1, x2, y2 = (float(v) for v in box)
            cxcywh = [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height]
            exemplar = {
                "input_boxes": torch.tensor([[cxcywh]], dtype=torch.float32, device=self.device),
                "input_boxes_labels": torch.ones((1, 1), dtype=torch.long, device=self.device),
            }
        with self._forward_context():
            out = self.model(
                vision_embeds=emb.vision,
                input_ids=text["input_ids"],
                attention_mask=text["attention_mask"],
                **exemplar,
            )
            probs = out.pred_logits[0].float().sigmoid()
            if out.presence_logits is not None:
                probs = probs * out.presence_logits[0].float().sigmoid()
            scale = torch.tensor([width, height, width, height], dtype=torch.float32, device=probs.device)
            found = (out.pred_boxes[0].float() * scale).cpu().numpy()
            keep = pick_instances(probs.cpu().numpy(), found, box, threshold=self.score_threshold, select=self.select)
            if not keep:
                return np.zeros((height, width), dtype=bool), 0.0
            masks = out.pred_masks[0, keep].float().sigmoid()  # (k, h, w) probabilities, as transformers resizes them
            full = F.interpolate(masks[None], size=[height, width], mode="bilinear", align_corners=False)[0]
            mask = (full > self.mask_threshold).any(dim=0).cpu().numpy()
        return mask, float(probs[keep[0]])

    def __repr__(self) -> str:
        return (
            f"ConceptSegmenter(input_size={self.preprocess.size}, select={self.select!r}, "
            f"box_exemplars={self.box_exemplars}, device={self.device}, num_embeddings={self.num_embeddings})"
        )


def _preprocess_config(source: str, is_local: bool, model, *, local_files_only: bool) -> Sam2PreprocessConfig:
    """The checkpoint's image settings (``preprocessor_config.json``; SAM3's own when absent), checked against the
    model's input size."""
    from transformers.utils import cached_file

    image_size = int(model.config.vision_config.backbone_config.image_size)
    if is_local:
        file = Path(source).expanduser() / PREPROCESSOR_CONFIG
        found = str(file) if file.is_file() else None
    else:
        found = cached_file(
            source,
            PREPROCESSOR_CONFIG,
            local_files_only=local_files_only,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
    if found is None:
        return Sam2PreprocessConfig(size=(image_size, image_size), image_mean=(0.5,) * 3, image_std=(0.5,) * 3)
    try:
        preprocess = Sam2PreprocessConfig.from_dict(json.loads(Path(found).read_text()))
    except (ValueError, TypeError) as err:
        raise UserError(f"segmenter {source!r}: bad {PREPROCESSOR_CONFIG}: {_first_line(err)}") from err
    if preprocess.size != (image_size, image_size):
        raise UserError(f"segmenter {source!r}: preprocessor size {preprocess.size} is not the model's {image_size}")
    return preprocess


__all__ = [
    "CONCEPT_MODEL_TYPES",
    "CONCEPT_PREFIX",
    "ConceptEmbedding",
    "ConceptSegmenter",
    "pick_instances",
]
