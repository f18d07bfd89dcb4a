"""``segzero train``: GRPO training of the reasoning model (TRL ``GRPOTrainer``) from a YAML recipe.

Examples::

    segzero train --config recipes/tiny_cpu.yaml --output-dir runs/tiny          # offline CPU smoke run
    segzero train --config recipes/segzero_7b.yaml --output-dir runs/sz7b --set lora=true --set learning_rate=2e-6
    segzero train --config recipes/segzero_7b.yaml --output-dir runs/sz7b --resume   # newest complete checkpoint
    accelerate launch --config_file accelerate/zero3.yaml -m segzero.cli.main train --config ... --output-dir ...
    segzero train --config recipes/tiny_cpu.yaml --output-dir runs/mine --reward my_reward.py:compute_score
    segzero train --list-fields                                                     # every config field + help

Every ``TrainConfig`` field can be overridden with ``--set key=value`` (value read as YAML; ``a.b=v`` sets one
entry of a dict field or small config, ``stages.KIND.FIELD=v`` one field of a stage) or with its own flag
``--key value``. ``--list-fields`` prints every field, every stage kind with its fields, and the registered model
builders and dataset sources. The run ends with a Hugging Face folder
``OUTPUT_DIR/final`` that ``segzero segment --reasoner OUTPUT_DIR/final`` loads.

``--resume`` continues from the newest complete ``checkpoint-N`` (one line names it and any incomplete ones it
skipped) and refuses, with exit code 2, a config whose training fields differ from ``OUTPUT_DIR/config.yaml``
(logging, checkpoint cadence and resource fields may change: ``segzero.train.config.RESUME_NEUTRAL_FIELDS``);
``--allow-changed-config`` goes on and records the new config as ``OUTPUT_DIR/config.resumed-K.yaml``.
"""

from __future__ import annotations

import argparse
import dataclasses

from segzero.cli.fields import add_fields
from segzero.cli.fields import overrides as fields_given
from segzero.train.config import TrainConfig


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="GRPO-train the reasoning model (TRL) from a YAML recipe",
        description="GRPO training with the Seg-Zero / VisionReasoner rewards on TRL's GRPOTrainer.",
    )
    parser.add_argument("--config", help="YAML recipe (recipes/*.yaml); fields not given keep their defaults")
    parser.add_argument("--output-dir", help="Run folder: checkpoints, logs, samples.jsonl and final/")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="Continue from the newest complete checkpoint-N in --output-dir; refused when a field that changes "
        "the training differs from OUTPUT_DIR/config.yaml",
    )
    parser.add_argument(
        "--allow-changed-config",
        action="store_true",
        help="With --resume: go on although training fields differ from OUTPUT_DIR/config.yaml (it is kept; the "
        "new config is saved as config.resumed-K.yaml). The checkpoint's optimizer and scheduler state are restored, "
        "so a changed learning_rate or weight_decay does not take effect",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="Override a config field"
    )
    parser.add_argument(
        "--reward",
        dest="rewards",
        action="append",
        default=[],
        metavar="FILE.py:FUNC",
        help="Add your own reward function (or package.module:FUNC) to the recipe's reward_plugins; repeatable. "
        "FUNC(completion, solution, **columns) returns a float, a dict of named floats, or None",
    )
    parser.add_argument("--list-fields", action="store_true", help="Print every config field with its help and exit")
    add_fields(parser.add_argument_group("config fields (same as --set KEY=VALUE)"), TrainConfig, raw=True)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import logging

    from segzero.errors import UserError

    if args.list_fields:
        from segzero.train.registry import names
        from segzero.train.stages import describe_stage, stage_kind

        print(TrainConfig().describe())
        print("\nstages (the `stages` list; set one field with --set stages.KIND.FIELD=V):")
        print("\n".join(describe_stage(stage_kind(n)) for n in ["grpo", *names("stages")]))
        print(
            f"\nmodel builders (`model`): {', '.join(names('models'))}; dataset sources (`dataset`): "
            f"{', '.join(names('datasets'))}"
        )
        return 0
    if not args.output_dir:
        raise UserError("--output-dir is required")
    overrides = [*args.overrides, *fields_given(args, TrainConfig.field_names())]
    cfg = TrainConfig.from_yaml(args.config, overrides=overrides)
    if args.rewards:
        cfg = dataclasses.replace(cfg, reward_plugins=[*cfg.reward_plugins, *args.rewards])
        cfg.validate()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")

    from segzero.train.trainer import train

    if args.allow_changed_config and not args.resume:
        raise UserError("--allow-changed-config applies to --resume only")
    result = train(cfg, args.output_dir, resume=args.resume, allow_changed_config=args.allow_changed_config)
    resumed = f" (resumed from {result['resumed_from']})" if result["resumed_from"] else ""
    print(f"trained {result['global_step']} steps{resumed}; final model: {result['final']}")
    return 0
