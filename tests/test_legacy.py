"""Configs in the layout before stages (flat ``sft_*`` / ``synthetic_*`` / ``vllm_*`` fields) load as the same run:
``segzero.train.legacy.translate``, through ``TrainConfig.from_dict`` and ``--resume``'s comparison with a saved
``config.yaml``.

Run: ``pytest tests/test_legacy.py -q``
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from segzero.errors import UserError
from segzero.train.config import TrainConfig
from segzero.train.legacy import translate

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {"dataset": "synthetic", "model": "shapes", "frame": 128, "prompt": "compact"}


@pytest.mark.parametrize(
    ("old", "stages"),
    [
        # no warm-up fields: the paper's recipe
        ({"synthetic_samples": 8}, ["grpo"]),
        # a format warm-up (the flat layout's default target) before GRPO
        (
            {"sft_steps": 30, "sft_learning_rate": 5e-4, "sft_batch_size": 4},
            [{"kind": "format_sft", "steps": 30, "learning_rate": 5e-4, "batch_size": 4, "think": "I look for {query}."},
             "grpo"],
        ),
        # the shapes recipe: perception, gt answers (warm-up steps capped at 10 there), GRPO
        (
            {**SHAPES, "sft_target": "perception", "sft_steps": 3300, "sft_cosine_steps": 4500, "sft_learning_rate": 2e-3,
             "sft_batch_size": 32, "sft_warmup_steps": 100, "sft_answer_steps": 2400, "sft_answer_learning_rate": 1e-3,
             "sft_answer_decision_weight": 5.0},
            [{"kind": "perception_warmup", "steps": 3300, "learning_rate": 2e-3, "batch_size": 32, "warmup_steps": 100,
              "cosine_steps": 4500},
             {"kind": "answer_sft", "steps": 2400, "learning_rate": 1e-3, "batch_size": 32, "warmup_steps": 10,
              "decision_weight": 5.0, "listing": "left_to_right", "no_target": 0.0},
             "grpo"],
        ),
        # the SFT arm of a comparison: gt picks in the first stage, nothing after it
        (
            {**SHAPES, "sft_target": "perception", "sft_choice": "gt", "sft_steps": 60, "sft_only": True},
            [{"kind": "answer_sft", "steps": 60, "learning_rate": 1e-3, "batch_size": 16, "warmup_steps": 10,
              "listing": "left_to_right", "no_target": 0.0}],
        ),
        # a continuation: the gt-answer stage alone, its rows from another world
        (
            {**SHAPES, "sft_target": "perception", "sft_answer_steps": 5, "sft_only": True,
             "sft_world": {"families": ["superlative"]}},
            [{"kind": "answer_sft", "steps": 5, "learning_rate": 5e-4, "batch_size": 16, "world": {"families": ["superlative"]},
              "warmup_steps": 10, "decision_weight": 1.0, "listing": "left_to_right", "no_target": 0.0}],
        ),
    ],
)  # fmt: skip
def test_flat_warmup_fields_become_the_same_stages(old, stages):
    assert TrainConfig.from_dict(old).stages == stages  # (and a valid config of today)


def test_renamed_fields_land_in_their_new_homes():
    old = {"shapes_model": {"arch": "qwen3_vl"}, "synthetic_seed": 3, "synthetic_world": {"max_shapes": 2},
           "vllm_mode": "server", "vllm_server_base_url": "http://h:1", "reward_segmenter": "color"}  # fmt: skip
    cfg = TrainConfig.from_dict(old)
    assert cfg.model_args == {"arch": "qwen3_vl"} and cfg.dataset_args == {"seed": 3, "world": {"max_shapes": 2}}
    assert (cfg.vllm.mode, cfg.vllm.server_base_url, cfg.mask_reward.segmenter) == ("server", "http://h:1", "color")


@pytest.mark.parametrize(
    ("old", "message"),
    [
        ({"sft_compare": True}, "sft_compare was removed"),  # measured, did not help
        ({"sft_drill_fraction": 0.5}, "sft_drill_fraction was removed"),  # decision drills
        ({"sft_listing": "orders", "sft_target": "perception"}, "'orders' was removed"),  # a removed listing
        ({"sft_answer_loss": "decision"}, "'decision' was removed"),  # the listing drifted
        ({"sft_steps": 3, "stages": ["grpo"]}, "stages.KIND.FIELD"),  # the two layouts mixed
    ],
)
def test_removed_options_and_mixed_layouts_are_refused(old, message):
    with pytest.raises(UserError, match=message):
        translate(old, quiet=True)


def test_an_off_removed_option_still_translates():
    # a saved config of the flat layout wrote every field, the removed ones at their "off" values
    assert TrainConfig.from_dict({"sft_compare": False, "sft_warmup_gt_families": []}).stages == ["grpo"]


def test_resume_compares_a_flat_saved_config_with_todays_fields():
    # what --resume reads from OUTPUT_DIR/config.yaml of a run started before stages: the same run shows no change
    cfg = TrainConfig.from_yaml(ROOT / "recipes/shapes_grpo.yaml")
    saved = yaml.safe_load((ROOT / "tests/fixtures/flat_layout_config.yaml").read_text())
    assert cfg.changed_fields(saved) == []
    assert TrainConfig.from_yaml(ROOT / "recipes/shapes_grpo.yaml", overrides=["max_steps=7"]).changed_fields(
        saved
    ) == ["max_steps"]
