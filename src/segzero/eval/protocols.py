"""Reference evaluation protocols: score segzero's predictions the way each family's own scripts score them.

segzero's protocol (``segzero.metrics``) never skips a sample, scores an empty target answered with an empty mask as
IoU 1 and excludes LISA's ignore pixels. The published numbers come from three other sets of rules; ``segzero eval
--protocol NAME`` computes one of them on the same completions, next to segzero's own, and counts the samples where
the two differ. What each protocol does, as its script does it:

``seg-zero`` (Seg-Zero's ``evaluation.py`` + ``calculate_iou.py``)
  - the answer is the first ``{...}`` (no nested brace) anywhere in the completion, read by ``json.loads`` (strict
    JSON: single quotes fail); its box is the first key containing ``bbox`` (4 values), its points the first two
    keys containing ``points``; a completion without ``<think>...</think>`` (one or more characters, no ``<``)
    fails, as does a missing box or point;
  - frame -> pixels: ``round(int(v) * W / 840)``: truncate the model's number, scale, round half to even; no
    clipping;
  - SAM2 gets the box and both points (labels 1, 1), 3 candidates, the best-scored kept (segzero does the same);
  - a failed answer counts intersection 0, union = gt pixels; a sample whose union is 0 (empty target, empty mask)
    is **skipped**, as is one whose mask and gt shapes differ;
  - gt: every nonzero pixel is target (the hub copies it reads have no ignore label);
  - per sample IoU = I / U (0 when U = 0: a failed answer on an empty target); gIoU = mean, cIoU = sum I / sum U.
``visionreasoner`` (``evaluation_visionreasoner.py``)
  - the answer is the text between ``<answer>`` and ``</answer>`` (first pair, whitespace trimmed), read by
    ``json.loads`` as a list of ``{"bbox_2d": [...], "point_2d": [...]}``; anything else fails;
  - frame -> pixels: ``int(v * W / 840 + 0.5)`` (round half up; truncation toward 0 below 0); no clipping;
  - each object: SAM2 with its box and its one point, best of 3 candidates; the masks are OR-ed; an empty list
    gives an empty mask;
  - failures, skips, gt and the metrics as for ``seg-zero``.
``lisa`` (LISA's ``validate()``)
  - the mask segzero predicted (LISA predicts masks directly; an unparseable answer is an empty mask);
  - gt pixels 255 are excluded from both counts; per sample IoU = I / (U + 1e-5), plus 1 when U = 0;
    gIoU = mean, cIoU = sum I / (sum U + 1e-10). Nothing is skipped.

Every frame here is the model's (``frame``, 840 for the published checkpoints) and every pixel the original
image's. Usage::

    from segzero.eval.protocols import reference_objects, reference_counts, ReferenceScore

    objects = reference_objects("seg-zero", completion, size=(W, H), frame=840)  # None: the script's failure
    counts = reference_counts("seg-zero", mask_or_None, gt)                        # None: the script skips it
    acc = ReferenceScore("seg-zero"); acc.add(counts); acc.summary()

Light: stdlib and numpy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np

from segzero.answer import SegObject
from segzero.metrics import IGNORE_VALUE

SEGZERO = "segzero"
REFERENCE_PROTOCOLS: tuple[str, ...] = ("seg-zero", "visionreasoner", "lisa")
PROTOCOLS: tuple[str, ...] = (SEGZERO, *REFERENCE_PROTOCOLS)
# Protocols that read the completion themselves (their own parser and pixel mapping, hence maybe another SAM call).
PARSING_PROTOCOLS: tuple[str, ...] = ("seg-zero", "visionreasoner")
LISA_IOU_EPS = 1e-5  # LISA's validate(): intersection / (union + 1e-5) per sample
LISA_CIOU_EPS = 1e-10  # ... and sum(intersection) / (sum(union) + 1e-10)

_SEGZERO_JSON = re.compile(r"{[^}]+}")
_SEGZERO_THINK = re.compile(r"<think>([^<]+)</think>")
_VR_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)


def check_protocol(name: str) -> str:
    """``name`` if it is a known protocol, else ``ValueError`` naming them."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}: choose one of {', '.join(PROTOCOLS)}")
    return name


def _segzero_objects(text: str, fx: float, fy: float) -> list[SegObject] | None:
    match = _SEGZERO_JSON.search(text)
    if match is None or _SEGZERO_THINK.search(text) is None:
        return None
    data = json.loads(match.group(0))
    box_key = next((k for k in data if "bbox" in k.lower()), None)
    point_keys = [k for k in data if "points" in k.lower()][:2]
    if box_key is None or len(data[box_key]) != 4 or len(point_keys) != 2:
        return None
    b = data[box_key]
    box = (round(int(b[0]) * fx), round(int(b[1]) * fy), round(int(b[2]) * fx), round(int(b[3]) * fy))
    points = tuple((round(int(data[k][0]) * fx), round(int(data[k][1]) * fy)) for k in point_keys)
    return [SegObject(box=box, points=points)]


def _visionreasoner_objects(text: str, fx: float, fy: float) -> list[SegObject] | None:
    match = _VR_ANSWER.search(text)
    if match is None:
        return None
    data = json.loads(match.group(1))
    out = []
    for item in data:
        b, p = item["bbox_2d"], item["point_2d"]
        box = (int(b[0] * fx + 0.5), int(b[1] * fy + 0.5), int(b[2] * fx + 0.5), int(b[3] * fy + 0.5))
        out.append(SegObject(box=box, points=((int(p[0] * fx + 0.5), int(p[1] * fy + 0.5)),)))
    return out


def reference_objects(
    protocol: str, completion: str | None, *, size: Sequence[int], frame: int | Sequence[int]
) -> list[SegObject] | None:
    """The SAM prompts (original pixels, unclipped) the ``protocol``'s script derives from ``completion`` for an
    image of ``size=(W, H)`` answered in ``frame``; None where the script takes its failure branch (any exception
    while reading the answer, exactly as its ``try`` does).

    >>> reference_objects("seg-zero", '<think>a</think><answer>{"bbox": [10.7, 1, 105, 3], '
    ...                   '"points_1": [1, 1], "points_2": [2, 2]}</answer>', size=(420, 420), frame=840)
    [SegObject(box=(5, 0, 52, 2), points=((0, 0), (1, 1)))]
    >>> reference_objects("seg-zero", '<answer>{"bbox": [1, 1, 2, 2]}</answer>', size=(840, 840), frame=840) is None
    True
    """
    from segzero.geometry import frame_size

    check_protocol(protocol)
    if protocol not in PARSING_PROTOCOLS:
        raise ValueError(f"protocol {protocol!r} does not read completions")
    w, h = (int(v) for v in size)
    fw, fh = frame_size(frame)
    read = _segzero_objects if protocol == "seg-zero" else _visionreasoner_objects
    try:
        return read(completion or "", w / fw, h / fh)
    # the scripts' bare ``except Exception`` around their reader: malformed JSON, wrong types, missing keys
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
        return None


def reference_counts(protocol: str, pred, gt) -> tuple[int, int] | None:
    """``(intersection, union)`` of one sample under ``protocol``; ``pred`` is the (H, W) mask or None for a failed
    answer; ``gt`` the (H, W) gt (uint8 0/1/255 or bool). None: the script skips the sample.

    >>> gt = np.array([[1, 0], [255, 0]], dtype=np.uint8)
    >>> reference_counts("seg-zero", np.array([[1, 0], [0, 0]], bool), gt)   # 255 counts as target
    (1, 2)
    >>> reference_counts("lisa", np.array([[1, 0], [0, 0]], bool), gt)       # 255 excluded
    (1, 1)
    >>> reference_counts("seg-zero", np.zeros((2, 2), bool), np.zeros((2, 2), np.uint8)) is None  # skipped
    True
    """
    from segzero.metrics import intersection_union

    check_protocol(protocol)
    g = np.asarray(gt)
    if protocol == "lisa" or protocol == SEGZERO:
        p = np.zeros(g.shape, dtype=bool) if pred is None else np.asarray(pred, dtype=bool)
        ignore = IGNORE_VALUE if g.dtype != np.bool_ else None
        return intersection_union(p, g, ignore_value=ignore)
    target = g != 0
    if pred is None:
        return 0, int(np.count_nonzero(target))
    p = np.asarray(pred, dtype=bool)
    if p.shape != target.shape:
        return None
    inter, union = int(np.count_nonzero(p & target)), int(np.count_nonzero(p | target))
    return None if union == 0 else (inter, union)


def reference_iou(protocol: str, intersection: int, union: int) -> float:
    """One sample's IoU as ``protocol`` computes it (see the module docstring)."""
    if protocol == "lisa":
        return intersection / (union + LISA_IOU_EPS) + (1.0 if union == 0 else 0.0)
    if protocol == SEGZERO:
        from segzero.metrics import sample_iou

        return sample_iou(intersection, union)
    return intersection / union if union > 0 else 0.0


def score_reference(protocol: str, result, gt, *, image_size: Sequence[int], segment) -> dict:
    """One sample under a reference ``protocol``: ``{"intersection", "union"}`` (both None when the script skips
    it) and ``resegmented`` (True when its own prompts differ from segzero's, so ``segment(objects)`` made the mask).

    ``result``: the pipeline's ``SegResult`` (None when the model stage failed: the script's failure branch);
    ``gt``: the (H, W) gt, or None when it could not be read (the scripts skip such a sample).
    """
    if gt is None:
        return {"intersection": None, "union": None, "resegmented": False}
    pred, resegmented = None, False
    if result is not None and protocol in PARSING_PROTOCOLS:
        objects = reference_objects(protocol, result.completion, size=image_size, frame=result.frame)
        if objects is not None:
            resegmented = objects != list(result.objects)
            pred = segment(objects) if resegmented else result.mask
    elif result is not None:
        pred = result.mask if result.parse_ok else None
    counts = reference_counts(protocol, pred, gt)
    i, u = counts if counts is not None else (None, None)
    return {"intersection": i, "union": u, "resegmented": resegmented}


class ReferenceScore:
    """Accumulates ``reference_counts`` results (None = skipped) into the protocol's gIoU / cIoU."""

    def __init__(self, protocol: str) -> None:
        self.protocol = check_protocol(protocol)
        self.ious: list[float] = []
        self.intersection = self.union = self.skipped = 0

    def add(self, counts: tuple[int, int] | None) -> None:
        if counts is None:
            self.skipped += 1
            return
        i, u = counts
        self.ious.append(reference_iou(self.protocol, i, u))
        self.intersection += i
        self.union += u

    def summary(self) -> dict:
        """``{"protocol", "gIoU", "cIoU", "n", "skipped"}`` (NaN metrics when every sample was skipped)."""
        eps = LISA_CIOU_EPS if self.protocol == "lisa" else 0.0
        giou = float(np.mean(self.ious)) if self.ious else float("nan")
        ciou = self.intersection / (self.union + eps) if self.union + eps > 0 else float("nan")
        return {"protocol": self.protocol, "gIoU": giou, "cIoU": ciou, "n": len(self.ious), "skipped": self.skipped}


def reference_summary(records: list[dict], protocol: str) -> dict:
    """The reference ``protocol``'s metrics over eval records (their ``reference`` fields, in the given order),
    with ``differs``: samples whose IoU under it is not segzero's (``iou``) or that it skips; ``resegmented``:
    samples whose own prompts needed another SAM call; ``missing``: records without a ``reference`` field."""
    acc, differs, reseg, missing = ReferenceScore(protocol), 0, 0, 0
    for rec in records:
        ref = rec.get("reference")
        if ref is None:
            missing += 1
            continue
        counts = None if ref.get("union") is None else (int(ref["intersection"]), int(ref["union"]))
        acc.add(counts)
        reseg += bool(ref.get("resegmented"))
        if counts is None or abs(reference_iou(protocol, *counts) - float(rec["iou"])) > 1e-9:
            differs += 1
    return {**acc.summary(), "differs": differs, "resegmented": reseg, "missing": missing}


__all__ = [
    "PROTOCOLS",
    "REFERENCE_PROTOCOLS",
    "ReferenceScore",
    "check_protocol",
    "reference_counts",
    "reference_iou",
    "reference_objects",
    "reference_summary",
    "score_reference",
]
