"""A GRPO reward for video rows: the answer's box on the keyframe, and the mask it gives once propagated to every frame.

A video training row is an image row (``id``, ``problem``, ``solution``, ``image`` = the keyframe, ...) plus
``VIDEO_COLUMNS``: ``video_frames`` (the clip's T frames, PIL, in the pixels of the model frame, as the keyframe
image is), ``video_masks`` (the gt of each frame as a ``segzero.rle`` code, None for an empty one) and
``video_keyframe`` (the keyframe's index). The shapes world's ``dataset: synthetic_video`` writes such rows.

``VideoReward`` scores one completion with two terms (a reward plug-in returning a dict, ``segzero.train.plugins``):

- ``video_box_iou``: the IoU of the answer's boxes with the gt boxes on the keyframe (``solution``), objects
  matched greedily by IoU and the sum divided by the larger count (one object each: their box IoU; no answer and
  no gt: 1; an unreadable answer: 0);
- ``video_mask_iou``: the answer segmented on the keyframe (``SegZeroPipeline.segment_many``, as ``mask_iou`` does)
  and carried to every frame by a propagator (``segzero.models.video``), then the mean over frames of the IoU with
  each frame's gt (``segzero.metrics``; an empty prediction on an empty gt scores 1).

Use it by name: ``--reward segzero.train.video_reward:video_reward`` (the weight-free colour segmenter and colour
tracking, for the shapes world), or make your own with a SAM2 checkpoint in a file of yours::

    from segzero.train.video_reward import VideoReward
    reward = VideoReward(segmenter="facebook/sam2-hiera-large", propagator="facebook/sam2-hiera-large")
    # segzero train ... --reward my_video_reward.py:reward

The segmenter and the propagator load on the first call. A completion's keyframe embedding is computed once per
keyframe image, and equal keyframe masks (the completions of a prompt often agree) are propagated once.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np

from segzero.geometry import box_iou
from segzero.metrics import intersection_union, sample_iou
from segzero.parsing import parse_answer, parse_solution, text_of
from segzero.rle import decode_mask

VIDEO_COLUMNS: tuple[str, ...] = ("video_frames", "video_masks", "video_keyframe")
"""The columns a video training row adds to an image row (the training data keeps them for the reward)."""
PROPAGATION_CACHE = 32  # keyframe masks whose propagation is kept (least recently used dropped first)


def matched_box_iou(pred: list, gt: list) -> float:
    """Greedy one-to-one matching of predicted and gt boxes by IoU, the sum over pairs / max(len(pred), len(gt))
    (1.0 when both are empty).

    >>> matched_box_iou([(0, 0, 9, 9)], [(0, 0, 9, 9)]), matched_box_iou([], []), matched_box_iou([(0, 0, 9, 9)], [])
    (1.0, 1.0, 0.0)
    >>> round(matched_box_iou([(0, 0, 9, 9), (50, 50, 59, 59)], [(0, 0, 9, 9)]), 3)   # an extra box halves it
    0.5
    """
    if not pred and not gt:
        return 1.0
    pairs = sorted(((box_iou(p, g), i, j) for i, p in enumerate(pred) for j, g in enumerate(gt)), reverse=True)
    used_p, used_g, total = set(), set(), 0.0
    for iou, i, j in pairs:
        if i not in used_p and j not in used_g:
            used_p.add(i)
            used_g.add(j)
            total += iou
    return total / max(len(pred), len(gt))


class VideoReward:
    """The reward plug-in of the module docstring. ``segmenter``: what segments the keyframe (``color``, a SAM2
    folder or hub id); ``propagator``: what carries its masks through the clip (``color`` or a SAM2 video
    checkpoint); ``device``: where the models run."""

    __name__ = "video_reward"

    def __init__(self, *, segmenter: str = "color", propagator: str = "color", device: str | None = None) -> None:
        self.segmenter, self.propagator, self.device = segmenter, propagator, device
        self._pipe = None
        self._tracker = None
        self._embeddings: dict = {}
        self._propagated: OrderedDict[str, np.ndarray] = OrderedDict()

    def _load(self) -> None:
        from segzero.models.video import load_propagator
        from segzero.pipeline import SegZeroPipeline

        self._pipe = SegZeroPipeline.from_pretrained(reasoner=None, segmenter=self.segmenter, device=self.device)
        self._tracker = load_propagator(self.propagator, device=self.device)

    def __call__(
        self, completion: Any, solution: Any, *, video_frames, video_masks, video_keyframe, **_unused
    ) -> dict[str, float]:
        text = text_of(completion)
        answer = parse_answer(text)
        gt_boxes = [o.box for o in parse_solution(solution) if o.box is not None]
        pred_boxes = [o.box for o in answer.objects if o.box is not None] if answer.ok else None
        box = 0.0 if pred_boxes is None else matched_box_iou(pred_boxes, gt_boxes)
        return {"video_box_iou": box, "video_mask_iou": self.mask_iou(text, video_frames, video_masks, video_keyframe)}

    def mask_iou(self, completion: str, frames: list, masks: list, keyframe: int) -> float:
        """Mean over frames of the IoU of the propagated answer mask with each frame's gt (see the module doc)."""
        import dataclasses

        if self._pipe is None:
            self._load()
        key = int(keyframe)
        frames = list(frames)
        width, height = frames[key].size
        pipe = dataclasses.replace(self._pipe, answer_frame=(width, height))  # the frames are in the model frame
        (result,) = pipe.segment_many([frames[key]], [completion], embeddings=self._embeddings)
        objects = np.asarray(result.object_masks, dtype=bool).reshape(-1, height, width)
        if objects.any():
            from segzero.pipeline import image_key

            clip = "".join(image_key(im) for im in frames)  # by content: the rows of one prompt are separate copies
            digest = hashlib.blake2b(np.packbits(objects).tobytes() + f"{key}:{clip}".encode()).hexdigest()
            if digest not in self._propagated:
                self._propagated[digest] = self._tracker.propagate(frames, key, objects).any(axis=0)
                while len(self._propagated) > PROPAGATION_CACHE:
                    self._propagated.popitem(last=False)
            self._propagated.move_to_end(digest)
            pred = self._propagated[digest]
        else:
            pred = np.zeros((len(frames), height, width), dtype=bool)
        ious = []
        for t, code in enumerate(masks):
            gt = decode_mask(code) if code is not None else np.zeros((height, width), dtype=bool)
            ious.append(sample_iou(*intersection_union(pred[t], gt)))
        return float(np.mean(ious))


video_reward = VideoReward()
"""The shapes world's video reward: the colour segmenter on the keyframe, colour tracking through the clip."""


__all__ = ["PROPAGATION_CACHE", "VIDEO_COLUMNS", "VideoReward", "matched_box_iou", "video_reward"]
