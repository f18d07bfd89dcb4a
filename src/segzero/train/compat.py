"""Where segzero adapts to the installed versions of transformers / TRL: one home for renamed arguments.

transformers 5 renamed ``TrainingArguments.gradient_checkpointing`` to ``activation_checkpointing``; TRL's
``GRPOConfig`` inherits whichever name the installed transformers has (the ``[vllm]`` extra can resolve a
transformers that only knows the old one). ``checkpointing_argument`` names the one the installed config class
accepts, so one recipe setting (``gradient_checkpointing``) works on both. transformers 5 also moved checkpoint
rotation (``save_total_limit``) from a Trainer method to ``trainer_utils.rotate_checkpoints``;
``rotate_checkpoints`` calls whichever exists.

Usage::

    from trl import GRPOConfig
    kwargs[checkpointing_argument(GRPOConfig)] = cfg.gradient_checkpointing
    rotate_checkpoints(trainer, trainer.args.output_dir)     # keep at most save_total_limit checkpoint-N folders
"""

from __future__ import annotations

import dataclasses

CHECKPOINTING_NAMES: tuple[str, ...] = ("activation_checkpointing", "gradient_checkpointing")  # newest first


def checkpointing_argument(config_class: type) -> str:
    """The activation-checkpointing field of a ``TrainingArguments`` dataclass (newest name first).

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Old:
    ...     gradient_checkpointing: bool = False
    >>> checkpointing_argument(Old)
    'gradient_checkpointing'
    """
    fields = {f.name for f in dataclasses.fields(config_class)}
    for name in CHECKPOINTING_NAMES:
        if name in fields:
            return name
    raise TypeError(f"{config_class.__name__} has none of {CHECKPOINTING_NAMES}: an unsupported transformers")


def rotate_checkpoints(trainer, run_dir: str) -> None:
    """Delete the oldest ``checkpoint-N`` folders of ``run_dir`` beyond ``trainer.args.save_total_limit``, as the
    installed transformers' Trainer does after a save (its newest and its best checkpoint are kept)."""
    try:
        from transformers.trainer_utils import rotate_checkpoints as rotate
    except ImportError:  # transformers 4: a Trainer method
        trainer._rotate_checkpoints(use_mtime=False, output_dir=run_dir)
        return
    rotate(
        output_dir=run_dir,
        save_total_limit=trainer.args.save_total_limit,
        best_model_checkpoint=trainer.state.best_model_checkpoint,
        use_mtime=True,
    )
