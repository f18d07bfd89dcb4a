"""The GRPO video reward on moving-shapes rows (``dataset: synthetic_video``): box IoU on the keyframe and the IoU of
the answer's mask propagated through the clip, against hand-made answers whose scores follow from the world's
masks; the training data keeps the video columns; one tiny GRPO run with the reward as a plug-in.

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_video_reward.py``
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segzero.answer import segzero_answer_json
from segzero.cli.main import main
from segzero.geometry import box_iou
from segzero.points import mask_to_object
from segzero.rle import decode_mask, encode_mask
from segzero.shapes.video_data import training_rows
from segzero.train.video_reward import VIDEO_COLUMNS, VideoReward, matched_box_iou

ROOT = Path(__file__).resolve().parents[1]
FRAME, FRAMES = 64, 4


@pytest.fixture(scope="module")
def rows():
    return training_rows(frame=FRAME, samples=3, frames=FRAMES)


def _answer(mask: np.ndarray) -> str:
    obj = mask_to_object(mask)
    return f"<think>that one</think><answer>{segzero_answer_json(obj.box, obj.points)}</answer>"


def test_video_rows_hold_the_keyframe_the_clip_and_its_gt(rows):
    row = rows[0]
    key = row["video_keyframe"]
    assert key == 1 and len(row["video_frames"]) == len(row["video_masks"]) == FRAMES  # the middle of 4 frames
    assert (np.asarray(row["image"]) == np.asarray(row["video_frames"][key])).all()
    assert (decode_mask(row["mask_rle"]) == decode_mask(row["video_masks"][key])).all()


def test_the_gt_answer_scores_one_on_both_terms(rows):
    reward = VideoReward()
    for row in rows:
        key = row["video_keyframe"]
        completion = _answer(decode_mask(row["video_masks"][key]))
        columns = {c: row[c] for c in VIDEO_COLUMNS}
        assert reward(completion, row["solution"], **columns) == {"video_box_iou": 1.0, "video_mask_iou": 1.0}


def test_an_answer_on_another_shape_scores_its_box_overlap_and_no_mask():
    # oracle: the world's masks; visible masks of two shapes are disjoint, so the propagated mask IoU is 0
    from segzero.shapes.scene import ShapesConfig
    from segzero.shapes.video import make_video_sample
    from segzero.shapes.world import solution_string

    reward = VideoReward()
    checked = 0
    for index in range(3):
        s = make_video_sample(index, config=ShapesConfig(size=FRAME), split="train", frames=FRAMES, queries=1)
        (target,) = s["queries"][0].answers
        other = next(i for i in range(len(s["shapes"])) if i != target)
        gt = s["masks"][target]
        columns = {
            "video_frames": s["frames"],
            "video_masks": [encode_mask(m) for m in gt],
            "video_keyframe": 1,
        }
        wrong = mask_to_object(s["masks"][other, 1])
        got = reward(_answer(s["masks"][other, 1]), solution_string(gt[1]), **columns)
        assert got["video_mask_iou"] == 0.0
        assert got["video_box_iou"] == pytest.approx(box_iou(wrong.box, mask_to_object(gt[1]).box))
        checked += 1
    assert checked == 3


@pytest.mark.parametrize(
    ("completion", "want"),
    [
        ("no answer at all", {"video_box_iou": 0.0, "video_mask_iou": 0.0}),  # unreadable: nothing predicted
        ("<think>none</think><answer>[]</answer>", {"video_box_iou": 0.0, "video_mask_iou": 0.0}),  # no object
    ],
)
def test_answers_without_an_object_score_zero_on_a_clip_with_a_target(rows, completion, want):
    row = rows[0]
    assert VideoReward()(completion, row["solution"], **{c: row[c] for c in VIDEO_COLUMNS}) == want


@pytest.mark.parametrize(
    ("pred", "gt", "want"),
    [
        ([(0, 0, 9, 9)], [(0, 0, 9, 9)], 1.0),  # the same box
        ([(0, 0, 9, 9)], [(5, 0, 14, 9)], 1 / 3),  # half overlapping: 50 / 150
        ([(5, 0, 14, 9), (0, 0, 9, 9)], [(0, 0, 9, 9), (5, 0, 14, 9)], 1.0),  # two objects, listed in another order
        ([(0, 0, 9, 9)], [(0, 0, 9, 9), (50, 50, 59, 59)], 0.5),  # one of two objects found
        ([], [], 1.0),  # nothing to find, nothing answered
        ([], [(0, 0, 9, 9)], 0.0),  # nothing answered
    ],
)
def test_matched_box_iou(pred, gt, want):
    assert matched_box_iou(pred, gt) == pytest.approx(want)


def test_the_training_data_keeps_the_video_columns(rows):
    from segzero.train.data import prepare_dataset

    prepared, bad = prepare_dataset(rows, kind="segzero", prompt_kind="segzero", frame=FRAME)
    assert bad == [] and set(VIDEO_COLUMNS) <= set(prepared.column_names)
    assert prepared[0]["video_keyframe"] == rows[0]["video_keyframe"]


def test_a_tiny_grpo_run_with_the_video_reward(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--config", str(ROOT / "recipes" / "shapes_video_tiny.yaml"), "--output-dir", str(out)]
    sets = ["max_steps=1", "dataset_args.samples=2", "save_steps=1", "report_to=[none]"]
    assert main([*argv, *[a for s in sets for a in ("--set", s)]]) == 0
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert samples and all({"video_box_iou", "video_mask_iou"} <= set(s["rewards"]) for s in samples)
    assert all(0.0 <= s["rewards"]["video_mask_iou"] <= 1.0 for s in samples)
    assert (out / "final" / "config.json").is_file()
