"""The mask-aware reward (segzero.train.mask_reward) and the reward sets built around it (segzero.train.rewards).

Run: ``OMP_NUM_THREADS=1 pytest tests/test_mask_reward.py -q``
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from segzero.errors import UserError
from segzero.metrics import intersection_union, sample_iou
from segzero.rle import MASK_COLUMN, decode_mask


def _answer(obj) -> str:
    from segzero.answer import segzero_answer_json

    return f"<think>t</think><answer>{segzero_answer_json(obj.box, obj.points)}</answer>"


@pytest.fixture(scope="module")
def rows():
    from segzero.shapes.scene import ShapesConfig
    from segzero.shapes.world import generate_rows, make_sample

    out = generate_rows(4, seed=3, size=96, with_mask=True)
    samples = [make_sample(i, seed=3, config=ShapesConfig(size=96)) for i in range(4)]
    return out, samples


def test_rows_carry_their_gt_mask(rows):
    out, samples = rows
    for row, sample in zip(out, samples, strict=True):
        assert np.array_equal(decode_mask(row[MASK_COLUMN]), sample["mask"])  # the answer's exact visible mask


def test_mask_iou_scores_the_mask_the_segmenter_makes(rows):
    from segzero.points import mask_to_object
    from segzero.train.mask_reward import MaskIoU

    out, samples = rows
    reward = MaskIoU("color", frame=96)
    sample, row = samples[0], out[0]
    (want,) = sample["answers"]
    other = next(i for i in range(len(sample["shape_masks"])) if i != want)
    right = _answer(mask_to_object(sample["shape_masks"][want]))
    wrong = _answer(mask_to_object(sample["shape_masks"][other]))
    got = reward(
        [right, wrong, "no answer"], [row["solution"]] * 3, image=[row["image"]] * 3, mask_rle=[row[MASK_COLUMN]] * 3
    )
    # oracle: the colour segmenter's own mask for each answer, IoU with the gt mask by the metric's definition
    from segzero.models.weightfree import load_weightfree
    from segzero.pipeline import SegZeroPipeline

    pipe = SegZeroPipeline(reasoner=None, segmenter=load_weightfree("color"), answer_frame=96)
    gt = decode_mask(row[MASK_COLUMN])
    for value, text in zip(got[:2], (right, wrong), strict=True):
        assert value == sample_iou(*intersection_union(pipe.segment(row["image"], text).mask, gt))
    assert got[0] > 0.9 and got[1] < 0.1  # the right shape's mask, then another shape's
    assert got[2] == 0.0  # unparseable: an empty mask on a non-empty target


@pytest.mark.parametrize(
    "masks",
    [
        None,  # the rows have no mask column at all
        [None],  # a row of a set with the column lacks its mask
    ],
)
def test_mask_iou_needs_the_gt_mask(rows, masks):
    from segzero.train.mask_reward import MaskIoU

    out, _ = rows
    with pytest.raises(UserError, match=MASK_COLUMN):
        MaskIoU("color", frame=96)(["x"], [out[0]["solution"]], image=[out[0]["image"]], mask_rle=masks)


@pytest.mark.parametrize(
    ("variant", "names"),
    [
        ("hard", ["think_format", "answer_format", "box_iou", "box_l1", "points"]),  # the paper's
        ("soft", ["think_format", "answer_format", "box_iou", "box_l1", "points"]),  # same names, soft box terms
        ("mask", ["think_format", "answer_format", "mask_iou"]),  # format + the mask's IoU
        ("mask_mix", ["think_format", "answer_format", "box_iou", "box_l1", "points", "mask_iou"]),
    ],
)
def test_reward_sets_by_variant(variant, names):
    from segzero.train.rewards import build_reward_functions

    funcs, weights = build_reward_functions(
        "segzero", variant=variant, mask_reward=lambda c, s, **k: [0.5] * len(c), weights={names[-1]: 2.0}
    )
    assert [f.__name__ for f in funcs] == names and weights == [1.0] * (len(names) - 1) + [2.0]


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"variant": "mask"}, "segmenter"),  # the mask term needs a segmenter
        ({"variant": "median"}, "variant"),  # unknown variant
        ({"variant": "hard", "weights": {"mask_iou": 1.0}}, "mask_iou"),  # a weight for a term the set lacks
    ],
)
def test_bad_reward_sets_are_refused(kwargs, word):
    from segzero.train.rewards import build_reward_functions

    with pytest.raises(UserError, match=word):
        build_reward_functions("segzero", **kwargs)


def test_training_rows_keep_the_mask_in_the_frame(tmp_path):
    from segzero.train.config import TrainConfig
    from segzero.train.data import build_train_dataset

    cfg = TrainConfig.from_yaml("recipes/tiny_cpu.yaml", overrides=["dataset_args.samples=3"])
    ds, _ = build_train_dataset(cfg, output_dir=tmp_path)
    for row in ds:
        mask = decode_mask(row[MASK_COLUMN])
        assert mask.shape == (cfg.frame, cfg.frame) and mask.any() and row["image"].size == (cfg.frame, cfg.frame)
    assert json.dumps(ds[0][MASK_COLUMN])  # JSON-ready
