"""A mask-aware reward for GRPO: run the segmenter on each sampled answer and score the mask the user would get.

Seg-Zero rewards the box and points (thresholded IoU, L1 and point distance), never the mask SAM makes from them;
a box that is 0.5 IoU off can still give a good mask and a "right" box a bad one. ``MaskIoU`` is the TRL reward
function ``mask_iou``: for each completion, the answer is parsed (``segzero.parsing.parse_answer``), its objects
segmented by the pipeline's own code (``SegZeroPipeline.segment_many``: model frame -> image pixels, one segmenter
call per answer, the OR of its objects), and the reward is the mask IoU with the row's gt mask (``segzero.metrics``;
an unparseable answer is an empty mask: IoU 0 unless the target is empty, then 1, the evaluation's convention).

Efficient by construction: the completions of a prompt share their image, and ``segment_many`` embeds each distinct
image once per call (8 completions -> 1 image embedding); the segmenter runs on its own device (``mask_reward.device``),
the weight-free ``color`` segmenter on the CPU for the shapes world.

Training rows must carry the gt mask: a ``mask_rle`` column (``segzero.rle`` code, in the training image's pixels,
i.e. the model frame). The shapes world writes it; a set without it is refused with that message.

Usage (normally through ``segzero train`` with ``reward_variant: mask`` or ``mask_mix``)::

    from segzero.train.mask_reward import MaskIoU
    reward = MaskIoU("color", frame=128)
    reward(completions, solution, image=[...], mask_rle=[...])     # [0.93, 0.0, ...]
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from segzero.errors import UserError
from segzero.metrics import intersection_union, sample_iou
from segzero.parsing import text_of
from segzero.rle import MASK_COLUMN, decode_mask


class MaskIoU:
    """TRL reward function ``mask_iou`` (see the module docstring). ``segmenter``: a loaded segmenter or a name /
    path (``"color"``, ``"grabcut"``, a SAM2 folder or hub id); ``frame``: the model frame of the answers;
    ``device``: where a SAM2 segmenter runs."""

    __name__ = "mask_iou"

    def __init__(self, segmenter: Any, *, frame: int | tuple[int, int], device: str | None = None) -> None:
        from segzero.pipeline import SegZeroPipeline

        # the pipeline's own loading (weight-free names, folders and hub ids checked first), without a reasoner
        pipe = SegZeroPipeline.from_pretrained(reasoner=None, segmenter=segmenter, device=device)
        self.pipe = dataclasses.replace(pipe, answer_frame=frame)

    def __call__(self, completions: list, solution: list, *, image=None, mask_rle=None, **_unused) -> list[float]:
        if image is None or mask_rle is None:
            raise UserError(
                f"reward_variant mask needs training rows with their image and gt mask (a {MASK_COLUMN!r} column); "
                "the shapes world ('dataset: synthetic') has both"
            )
        texts = [text_of(c) for c in completions]
        results = self.pipe.segment_many(list(image), texts)
        out = []
        for result, code in zip(results, mask_rle, strict=True):
            if code is None:
                raise UserError(
                    f"a training row has no gt mask in its {MASK_COLUMN!r} column; reward_variant mask needs one"
                )
            gt = decode_mask(code)
            if gt.shape != result.mask.shape:
                raise UserError(f"gt mask {gt.shape} does not match its image {result.mask.shape} (H, W)")
            out.append(sample_iou(*intersection_union(np.asarray(result.mask, dtype=bool), gt)))
        return out
