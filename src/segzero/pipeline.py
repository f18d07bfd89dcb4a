"""Seg-Zero inference: the reasoning VLM answers with boxes and points, SAM2 turns them into a mask.

Usage::

    from segzero.pipeline import SegZeroPipeline
    pipe = SegZeroPipeline.from_pretrained()                      # DEFAULT_REASONER + DEFAULT_SEGMENTER
    res = pipe("photo.jpg", "what can I drink if I'm thirsty?")   # -> SegResult
    res.mask                                                      # (H, W) bool, original image pixels
    results = pipe.batch(images, queries, batch_size=8)           # one SAM embedding + decoder call per image
    res = pipe.segment(image, "<answer>{...}</answer>")           # segment a given completion (or Answer)
    results = pipe.segment_many(images, completions)              # same, one SAM embedding per distinct image

Frames: the reasoner sees the image resized to ``frame`` (840 x 840 by default) and answers in that frame
(``SegResult.answer``); ``SegResult.objects``, ``mask`` and ``object_masks`` are in original-image pixels
(``segzero.geometry.to_original``: scaled, rounded, clipped to the image). SAM is prompted per object with its
box and all its points (label 1): Seg-Zero's single-object answer gives the box plus both points,
VisionReasoner's list gives each object's box plus its point; the object masks are OR-ed. An unparseable
completion gives an empty mask, ``parse_ok=False`` and ``parse_error``; it does not raise.

Inputs are checked once, at the pipeline's entry (its public methods): each image is loaded with
``segzero.images.load_image`` unless it already is a loaded one (``is_loaded``: e.g. the CLI loaded it to fail
fast), each query is checked with ``segzero.prompts.check_query`` (as written, any length) unless it already is a
``Query``; the reasoner and segmenter then get the loaded images and checked queries as they are. Model sources are
resolved once (``resolve_model_source``: one hub probe per id) and passed on resolved. The defaults
(``segzero.models.base``): reasoner ``DEFAULT_REASONER``; segmenter the one the reasoner folder's ``segzero.json``
names, else ``DEFAULT_SEGMENTER`` (``default_segmenter_for``, the one place that decides it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segzero.answer import Answer, SegObject
from segzero.models.base import DEFAULT_REASONER, DEFAULT_SEGMENTER, ReasonerProtocol, SegmenterProtocol


@dataclass
class SegResult:
    """One (image, query) result. ``objects``/masks in original pixels; ``answer`` in the model frame.

    ``mask``: (H, W) bool, the OR of ``object_masks`` (each (H, W) bool, one per object in ``objects``);
    ``scores``: the segmenter's confidence per object mask (SAM2 and SAM3's tracker: the predicted IoU; SAM3's concept
    mode: its detection score, 0 when it found nothing); ``reasoning``: the ``<think>`` text (None when absent).
    """

    reasoning: str | None
    objects: list[SegObject]
    mask: np.ndarray
    object_masks: list[np.ndarray]
    scores: list[float]
    completion: str
    answer: Answer
    parse_ok: bool
    parse_error: str = ""
    frame: tuple[int, int] = (840, 840)

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) of the original image."""
        return int(self.mask.shape[1]), int(self.mask.shape[0])

    def to_json(self) -> dict:
        """JSON-ready summary (no mask arrays): objects in original pixels, the frame answer, scores, status."""
        return {
            "reasoning": self.reasoning,
            "objects": [o.to_dict() for o in self.objects],
            "scores": [float(s) for s in self.scores],
            "image_size": list(self.size),
            "mask_area": int(self.mask.sum()),
            "parse_ok": self.parse_ok,
            "parse_error": self.parse_error,
            "completion": self.completion,
            "answer": {
                "frame": list(self.frame),
                "layout": self.answer.layout,
                "objects": [o.to_dict() for o in self.answer.objects],
            },
        }


def default_segmenter_for(reasoner: Any) -> str:
    """The segmenter to pair with ``reasoner`` when none is named: its folder's recorded one, else
    ``DEFAULT_SEGMENTER``."""
    from segzero.models.reasoner import recorded_segmenter

    recorded = recorded_segmenter(reasoner) if isinstance(reasoner, str | Path) else None
    return recorded or DEFAULT_SEGMENTER


def image_key(image) -> str:
    """A content hash of a PIL image (mode, size and pixels): equal images share one SAM embedding."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.mode}:{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


@dataclass
class SegZeroPipeline:
    """A ``Reasoner`` plus a ``Segmenter``; see the module docstring."""

    reasoner: ReasonerProtocol | None
    segmenter: SegmenterProtocol
    batch_size: int = field(default=8, metadata={"help": "(image, query) pairs per reasoner generate batch"})
    answer_frame: Any = field(
        default=None,
        metadata={
            "help": "frame of the completions given to segment / segment_many when there is no reasoner "
            "(reasoner=None: a segmenter-only pipeline, e.g. a mask-aware reward); None = the reasoner's"
        },
    )

    @classmethod
    def from_pretrained(
        cls,
        reasoner: Any = DEFAULT_REASONER,
        segmenter: Any = None,
        *,
        device: str | None = None,
        dtype: Any = None,
        segmenter_dtype: Any = None,
        batch_size: int = 8,
        **reasoner_kwargs,
    ) -> SegZeroPipeline:
        """Load both models (ids / folders, or already loaded ``Reasoner`` / ``Segmenter`` objects).

        ``reasoner_kwargs`` go to ``Reasoner.from_pretrained`` (``prompt``, ``frame``, ``max_new_tokens``,
        ``temperature``, ``top_p``, ...). ``dtype`` is the reasoner's; ``segmenter_dtype`` the segmenter's
        (default: the adapter's own choice). ``segmenter=None``: the one the reasoner folder's ``segzero.json`` names,
        else ``DEFAULT_SEGMENTER`` (``default_segmenter_for``). ``segmenter="color"`` / ``"grabcut"`` selects a
        weight-free segmenter (``segzero.models.weightfree``; shapes world); a SAM2 or SAM3 id / folder the promptable
        ``Segmenter`` (its config's model type picks the model); ``"concept:ID_OR_FOLDER"`` SAM3's concept mode
        (``segzero.models.sam3``). Both sources are resolved once, before either loads, and passed on resolved.
        Missing folders / unreachable ids raise ``UserError``.
        """
        from segzero.models.reasoner import Reasoner, resolve_model_source
        from segzero.models.sam3 import CONCEPT_PREFIX, ConceptSegmenter
        from segzero.models.segmenter import Segmenter
        from segzero.models.weightfree import is_weightfree, load_weightfree

        if segmenter is None:
            segmenter = default_segmenter_for(reasoner)
        if is_weightfree(segmenter):  # "color" / "grabcut": no checkpoint, checked before hub/folder resolution
            segmenter = load_weightfree(segmenter)
        concept = isinstance(segmenter, str) and segmenter.startswith(CONCEPT_PREFIX)
        if concept:
            segmenter = segmenter.removeprefix(CONCEPT_PREFIX)

        # resolve both sources before loading either, so a bad second id fails fast and before any progress output;
        # the resolved ``ModelSource`` is what loads (no second resolution, no second hub probe)
        load_reasoner = isinstance(reasoner, str) or hasattr(reasoner, "__fspath__")
        load_segmenter = isinstance(segmenter, str) or hasattr(segmenter, "__fspath__")
        if load_reasoner:
            reasoner = resolve_model_source(reasoner, what="reasoner")
        if load_segmenter:
            segmenter = resolve_model_source(segmenter, what="segmenter")
        if load_reasoner:
            reasoner = Reasoner.from_pretrained(
                reasoner, device=device, dtype=dtype, batch_size=batch_size, **reasoner_kwargs
            )
        elif reasoner_kwargs:
            raise TypeError(f"reasoner settings {sorted(reasoner_kwargs)} need a reasoner id, not a loaded Reasoner")
        if load_segmenter:
            loader = ConceptSegmenter if concept else Segmenter
            segmenter = loader.from_pretrained(segmenter, device=device, dtype=segmenter_dtype)
        return cls(reasoner=reasoner, segmenter=segmenter, batch_size=batch_size)

    @property
    def frame(self):
        """The frame of the completions' coordinates: ``answer_frame`` when set, else the reasoner's answer frame
        (``segzero.models.checkpoint.answer_frame_of``: its pixel frame, or its family's relative one)."""
        from segzero.models.checkpoint import answer_frame_of

        return answer_frame_of(self.reasoner) if self.answer_frame is None else self.answer_frame

    def __call__(self, image, query: str) -> SegResult:
        """Segment what ``query`` refers to in ``image`` (path, PIL image, numpy array or bytes)."""
        return self.batch([image], [query])[0]

    def batch(self, images: list, queries: list[str], *, batch_size: int | None = None) -> list[SegResult]:
        """Many (image, query) pairs -> results in input order.

        Pairs are grouped so equal images (by content, ``image_key``) are adjacent, then processed in chunks of
        ``batch_size``: one batched ``generate`` and one SAM embedding per distinct image of the chunk (an image
        spanning two chunks keeps its embedding). All images are decoded up front (to group equal ones), so
        for a large dataset call this per slice of the dataset. Raises ``UserError`` for unreadable images,
        empty queries or mismatched lengths.
        """
        pil, queries = self._entry(images, queries)
        keys = [image_key(im) for im in pil]
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        order = sorted(range(len(pil)), key=lambda i: (first[keys[i]], i))
        size = max(1, int(batch_size or self.batch_size))
        results: list[SegResult | None] = [None] * len(pil)
        carry: dict = {}
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            completions = self.reasoner.generate([pil[i] for i in idx], [queries[i] for i in idx], batch_size=size)
            chunk = self._segment_loaded([pil[i] for i in idx], completions, [keys[i] for i in idx], carry)
            for i, res in zip(idx, chunk, strict=True):
                results[i] = res
        return results  # type: ignore[return-value]

    @staticmethod
    def _load(images: list) -> list:
        """The entry's images, each loaded once: as it is when it already is a loaded one (``is_loaded``), else
        through ``load_image`` (``UserError`` when unreadable)."""
        from segzero.images import ensure_loaded

        return [ensure_loaded(im) for im in images]

    @classmethod
    def _entry(cls, images: list, queries: list[str]) -> tuple[list, list]:
        """The entry's (image, query) pairs as the layers after it take them: loaded images (``_load``) and
        checked queries (``check_query`` as written, any length; a ``Query`` is taken as it is). ``UserError`` for
        unreadable images, empty queries or mismatched lengths."""
        from segzero.errors import UserError
        from segzero.prompts import Query, check_query

        if len(images) != len(queries):
            raise UserError(f"got {len(images)} images but {len(queries)} queries")
        checked = [q if isinstance(q, Query) else check_query(q, max_chars=None, strip=False) for q in queries]
        return cls._load(images), checked

    def generate(self, images: list, queries: list[str], *, batch_size: int | None = None) -> list[str]:
        """The reasoner's raw completions of (image, query) pairs, in input order, in ``generate`` calls of
        ``batch_size`` pairs; the first half of ``batch`` (``segment_many`` is the second), for callers that run the
        two halves apart (the evaluation runner segments one chunk while the next one generates)."""
        pil, queries = self._entry(images, queries)
        size = max(1, int(batch_size or self.batch_size))
        out: list[str] = []
        for start in range(0, len(pil), size):
            out += self.reasoner.generate(pil[start : start + size], queries[start : start + size], batch_size=size)
        return out

    def segment(self, image, completion: str | Answer) -> SegResult:
        """Turn one completion (raw text, parsed tolerantly) or ``Answer`` (model-frame coordinates) into masks."""
        return self.segment_many([image], [completion])[0]

    def embed_images(self, images: list) -> dict:
        """SAM embeddings of the distinct ``images`` (path, PIL image, numpy array or bytes), keyed by
        ``image_key``: to compute ahead of ``segment_many(..., embeddings=)``, e.g. while the reasoner is still
        generating those images' completions (the evaluation runner does)."""
        distinct: dict[str, Any] = {}
        for pil in self._load(images):
            distinct.setdefault(image_key(pil), pil)
        return dict(zip(distinct, self.segmenter.embed(list(distinct.values())), strict=True))

    def segment_many(self, images: list, completions: list, *, embeddings: dict | None = None) -> list[SegResult]:
        """Segment given completions (text or ``Answer``), one SAM embedding per distinct image that needs one.

        Images with no usable answer (parse failure, no objects) are not embedded. ``embeddings``
        (``image_key`` -> embedding, e.g. from ``embed_images``) are used where present; the dict is updated in
        place: the images embedded here are added and those this call does not need are dropped (how ``batch``
        carries an image's embedding into the next chunk without keeping every one).
        """
        from segzero.errors import UserError

        if len(images) != len(completions):
            raise UserError(f"got {len(images)} images but {len(completions)} completions")
        pil = self._load(images)
        return self._segment_loaded(pil, completions, [image_key(im) for im in pil], embeddings)

    def _segment_loaded(
        self, pil: list, completions: list, keys: list[str], embeddings: dict | None
    ) -> list[SegResult]:
        """``segment_many`` of loaded images whose ``image_key``s are ``keys``."""
        prepared = [self._prepare(im, c) for im, c in zip(pil, completions, strict=True)]
        cache = embeddings if embeddings is not None else {}
        needed = {k: im for k, im, (res, objs) in zip(keys, pil, prepared, strict=True) if objs}
        fresh = [k for k in needed if k not in cache]
        for k in list(cache):
            if k not in needed:
                del cache[k]
        if fresh:
            cache.update(zip(fresh, self.segmenter.embed([needed[k] for k in fresh]), strict=True))
        per_image: dict[str, list[tuple[SegResult, list[SegObject]]]] = {}
        for key, (res, objs) in zip(keys, prepared, strict=True):
            if objs:
                per_image.setdefault(key, []).append((res, objs))
        for key, items in per_image.items():
            self._fill(items, cache[key])
        return [res for res, _ in prepared]

    def _prepare(self, image, completion) -> tuple[SegResult, list[SegObject]]:
        """Parse and map to original pixels: (result with an empty mask, objects to segment ([] = nothing))."""
        from segzero.geometry import frame_size, to_original
        from segzero.parsing import parse_answer

        if isinstance(completion, Answer):
            answer, text = completion, completion.raw
        else:
            text = str(completion)
            answer = parse_answer(text)
        w, h = image.size
        frame = frame_size(self.frame)
        result = SegResult(
            reasoning=answer.think,
            objects=[],
            mask=np.zeros((h, w), dtype=bool),
            object_masks=[],
            scores=[],
            completion=text,
            answer=answer,
            parse_ok=bool(answer.ok),
            parse_error="" if answer.ok else (answer.reason or "unparseable answer"),
            frame=frame,
        )
        if not answer.ok or not answer.objects:
            return result, []
        try:
            objects = [to_original(o, size=(w, h), frame=frame) for o in answer.objects]
        except ValueError as err:  # non-finite coordinates: report like any unusable answer
            result.parse_ok, result.parse_error = False, f"unusable coordinates: {err}"
            return result, []
        result.objects = objects
        if not any(o.box is not None or o.points for o in objects):
            result.object_masks = [result.mask.copy() for _ in objects]
            result.scores = [0.0 for _ in objects]
            return result, []
        return result, objects

    def mask_for(self, image, objects: list[SegObject]) -> np.ndarray:
        """The OR-ed SAM mask ((H, W) bool) of ``objects`` given in original pixels, used as they are (no rounding,
        no clipping): how a reference protocol segments prompts it derived itself. Embeds ``image`` afresh."""
        (pil,) = self._load([image])
        w, h = pil.size
        masks, _ = self._predict(objects, self.segmenter.embed([pil])[0], (h, w))
        return np.logical_or.reduce(masks, axis=0) if masks else np.zeros((h, w), dtype=bool)

    def _fill(self, items: list[tuple[SegResult, list[SegObject]]], embedding) -> None:
        """SAM masks for the objects (original pixels) of every result of one image on its ``embedding``, decoded
        together (all queries of the image in one ``predict`` where ``_predict`` can): each result's per-object
        masks, scores and OR-ed mask."""
        objects = [o for _, objs in items for o in objs]
        masks, scores = self._predict(objects, embedding, items[0][0].mask.shape)
        start = 0
        for result, objs in items:
            stop = start + len(objs)
            result.object_masks, result.scores = masks[start:stop], scores[start:stop]
            result.mask = np.logical_or.reduce(result.object_masks, axis=0) if objs else result.mask
            start = stop

    def _predict(self, objects: list[SegObject], embedding, shape: tuple[int, int]):
        """(per-object (H, W) bool masks, scores) of ``objects`` on ``embedding``.

        One ``predict`` call when every object has a box and the same number of points, else one per object.
        """
        h, w = shape
        if all(o.box is not None for o in objects) and len({len(o.points) for o in objects}) == 1:
            groups = [objects]
        else:
            groups = [[o] for o in objects]
        masks: list[np.ndarray] = []
        scores: list[float] = []
        for group in groups:
            if group[0].box is None and not group[0].points:
                masks.append(np.zeros((h, w), dtype=bool))
                scores.append(0.0)
                continue
            boxes = np.asarray([o.box for o in group], dtype=np.float32) if group[0].box is not None else None
            points = labels = None
            if group[0].points:
                points = np.asarray([o.points for o in group], dtype=np.float32)  # (N, P, 2)
                labels = np.ones(points.shape[:2], dtype=np.int64)  # (N, P), all foreground
            phrases = {"phrases": [o.label for o in group]} if getattr(self.segmenter, "takes_phrases", False) else {}
            pred = self.segmenter.predict(boxes=boxes, points=points, labels=labels, embedding=embedding, **phrases)
            masks.extend(np.asarray(m, dtype=bool) for m in pred.object_masks)
            scores.extend(float(v) for v in np.asarray(pred.scores).reshape(-1))
        return masks, scores
