"""The GRPO training rows of ``dataset: synthetic_video``: moving-shapes clips as video rows (keyframe + clip + gt).

Registered for ``segzero train`` as the dataset source ``synthetic_video`` (entry-point group ``segzero.datasets``);
``dataset_args`` are this function's keywords::

    dataset: synthetic_video
    dataset_args: {samples: 64, seed: 0, frames: 6, world: {max_shapes: 3}}
    reward_plugins: [segzero.train.video_reward:video_reward]

One row per clip of ``segzero.shapes.video`` (its first query, one answer): the image columns of ``dataset:
synthetic`` for the keyframe (``id``, ``problem``, ``solution`` = Seg-Zero's box and points of the keyframe's gt,
``image`` = the keyframe, ``img_height``, ``img_width``, the keyframe's gt mask code) plus the video columns the
video reward reads (``segzero.train.video_reward.VIDEO_COLUMNS``): every frame, every frame's gt code and the
keyframe's index (``segzero.video.keyframe_plan``: the middle frame). Everything is drawn at ``frame`` pixels, the
model frame.
"""

from __future__ import annotations

from typing import Any

from segzero.errors import UserError


def training_rows(
    *, frame: int, samples: int = 64, seed: int = 0, frames: int = 6, world: dict[str, Any] | None = None
):
    """``samples`` video rows (train split, world seed ``seed``, ``frames`` frames, world settings ``world``:
    ``segzero.shapes.world.world_from_spec``) as a ``datasets.Dataset``; rows depend only on (``seed``, index)."""
    import datasets
    import numpy as np

    from segzero.rle import MASK_COLUMN, encode_mask
    from segzero.shapes.video import make_video_sample
    from segzero.shapes.world import solution_string, world_from_spec
    from segzero.video import keyframe_plan

    if not isinstance(samples, int) or samples < 1 or not isinstance(frames, int) or frames < 1:
        raise UserError(f"dataset_args.samples and .frames must be whole numbers >= 1, got {samples!r}, {frames!r}")
    try:
        config, families = world_from_spec(world, size=frame)
    except (ValueError, TypeError) as err:
        raise UserError(f"bad dataset_args.world: {err}") from err
    (keyframe, _, _), *_ = keyframe_plan(frames, 1)
    rows = []
    for index in range(samples):
        sample = make_video_sample(
            index, seed=seed, config=config, split="train", frames=frames, families=families, queries=1
        )
        query = sample["queries"][0]
        gt = sample["masks"][list(query.answers)].any(axis=0)  # (T, H, W)
        rows.append(
            {
                "id": sample["id"],
                "problem": query.text,
                "solution": solution_string(gt[keyframe]),
                "image": sample["frames"][keyframe],
                "img_height": int(gt.shape[1]),
                "img_width": int(gt.shape[2]),
                MASK_COLUMN: encode_mask(gt[keyframe]),
                "video_frames": sample["frames"],
                "video_masks": [encode_mask(m) if np.any(m) else None for m in gt],
                "video_keyframe": keyframe,
            }
        )
    return datasets.Dataset.from_list(rows)
