"""``segzero train``: build the model, run the recipe's stages in order (supervised stages, then GRPO on TRL's
``GRPOTrainer``), save.

What ``train(cfg, output_dir)`` does:

1. model: ``cfg.model`` (hub id / folder), or a registered builder (``segzero.train.registry``): ``"tiny"``, the
   random tiny models in ``OUTPUT_DIR/tiny_models``; ``"shapes"``, a fresh shapes reasoner;
2. data: ``segzero.train.data.build_train_dataset`` (bad rows logged and written to ``bad_rows.jsonl``);
   before any stage runs when the run ends with GRPO, so a bad set or reward plug-in stops it at once;
3. stages (``cfg.stages``, ``segzero.train.stages``): each supervised stage trains from the previous folder into
   ``OUTPUT_DIR/<its folder>`` (kept on ``resume`` when complete); a list without ``grpo`` ends there;
   rewards of the GRPO stage: one TRL reward function per reward term (``segzero.train.rewards``; plus the terms of
   ``cfg.reward_plugins``, ``segzero.train.plugins``), weighted by
   ``cfg.reward_weights``; TRL logs each as ``rewards/<term>/mean``; ``samples.jsonl`` gets completions with
   their per-term rewards every ``cfg.sample_every`` steps;
4. ``trl.GRPOConfig`` from the config (``grpo_config``), LoRA / QLoRA through peft when ``cfg.lora``;
5. ``trainer.train(resume_from_checkpoint=...)``: checkpoints ``OUTPUT_DIR/checkpoint-N`` every
   ``save_steps`` with optimizer, scheduler, RNG and trainer state, each written whole or not at all
   (``segzero.train.checkpoints``); ``resume=True`` continues from the newest complete one (same seed, so the same
   data order: the Trainer skips the batches already seen), logs one line naming it and any incomplete ones
   skipped (renamed ``incomplete-checkpoint-N``), and refuses (``UserError``) when none is complete or when a field
   that changes the training differs from ``OUTPUT_DIR/config.yaml`` (``allow_changed_config=True`` goes on);
6. final model in Hugging Face format at ``OUTPUT_DIR/final`` with the processor files (LoRA merged into the
   weights when ``cfg.merge_lora``, else the adapter is saved), loadable by ``Reasoner.from_pretrained``, plus
   ``segzero.json`` (model frame, prompt kind, reward kind, base model, the ``training`` stages behind it), which
   ``Reasoner.from_pretrained``
   reads, so ``segzero segment`` / ``segzero eval`` drive the model at the frame it was trained on.

TensorBoard event files go to ``OUTPUT_DIR/runs/`` (transformers' default); ``config.yaml`` records the
resolved config of the run's first start and is never rewritten by a resume; a resume whose config differs in any
field (``RESUME_NEUTRAL_FIELDS`` included) writes it to ``config.resumed-K.yaml`` (K = 1, 2, ...), headed by a
comment naming the changed fields and the checkpoint it resumed from. Usage::

    from segzero.train.config import TrainConfig
    from segzero.train.trainer import train
    result = train(TrainConfig.from_yaml("recipes/tiny_cpu.yaml"), "runs/tiny")   # {"final": Path, ...}
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

from segzero.errors import UserError
from segzero.models.reasoner import write_model_info
from segzero.train.checkpoints import (
    AtomicCheckpoints,
    CheckpointChoice,
    ResumeWithKeyConversion,
    pick_checkpoint,
    set_aside,
)
from segzero.train.config import RESUME_NEUTRAL_FIELDS, TrainConfig
from segzero.train.grpo_args import grpo_config, peft_and_quantization
from segzero.train.processes import is_main_process, local_rank, world_size
from segzero.train.stages import GRPO, StageRun, recorded_training, training_record

logger = logging.getLogger("segzero.train")


def resolve_model(cfg: TrainConfig, output_dir: Path) -> str:
    """The policy's path or hub id; a registered builder's name (``segzero.train.registry``: ``tiny``, ``shapes``)
    builds that model under ``output_dir`` (``cfg.model_args``: its keywords) on the main process, once."""
    from segzero.train.registry import is_registered, lookup

    if not is_registered("models", cfg.model):
        return cfg.model
    build = lookup("models", cfg.model)
    if local_rank() == 0:
        path = build(output_dir, seed=cfg.seed, frame=cfg.frame, **cfg.model_args)
    if world_size() > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()
        if local_rank() != 0:
            path = build(output_dir, seed=cfg.seed, frame=cfg.frame, **cfg.model_args)  # built: returns its path
    return str(path)


CONFIG_FILE = "config.yaml"
# A resume with a changed config records it as config.resumed-K.yaml (K = 1, 2, ...) next to config.yaml.
RESUMED_CONFIG = "config.resumed-{}.yaml"


def check_resume_config(cfg: TrainConfig, output_dir: Path, *, allow_changed: bool = False) -> list[str]:
    """The fields in which ``cfg`` differs from ``OUTPUT_DIR/config.yaml`` ([] when equal or when there is none).

    Raises ``UserError`` naming them when any of them changes the training (not in ``RESUME_NEUTRAL_FIELDS``),
    unless ``allow_changed``.
    """
    import yaml

    path = output_dir / CONFIG_FILE
    if not path.is_file():
        return []
    try:
        saved = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"--resume: cannot read {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(saved, dict):
        raise UserError(f"--resume: {path} is not a config mapping")
    changed = cfg.changed_fields(saved)
    training = [k for k in changed if k not in RESUME_NEUTRAL_FIELDS]
    if training and not allow_changed:
        raise UserError(
            f"--resume: {output_dir} was trained with other {', '.join(training)} (see {path}); pass "
            "--allow-changed-config to go on with the new values, or use a new --output-dir"
        )
    return changed


def record_config(
    cfg: TrainConfig, output_dir: Path, *, resume: bool, changed: list[str], resumed_from: Path | None
) -> None:
    """Write ``config.yaml`` at a run's start (a resume only when there is none); on a resume with ``changed``
    fields, write the new config to the next free ``config.resumed-K.yaml`` instead (``config.yaml`` is never
    rewritten by a resume)."""
    import yaml

    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    if not resume or not (output_dir / CONFIG_FILE).is_file():
        (output_dir / CONFIG_FILE).write_text(text)
        return
    if not changed:
        return
    k = 1
    while (output_dir / RESUMED_CONFIG.format(k)).exists():
        k += 1
    origin = resumed_from.name if resumed_from is not None else "the warm-up"
    head = f"# resumed from {origin} with changed {', '.join(changed)}; {CONFIG_FILE} holds the first start's config\n"
    (output_dir / RESUMED_CONFIG.format(k)).write_text(head + text)
    logger.warning("config changed on resume (%s): saved as %s", ", ".join(changed), RESUMED_CONFIG.format(k))


def warmup_started(cfg: TrainConfig, output_dir: Path) -> bool:
    """Whether a supervised stage of ``cfg`` left a folder (a resume then continues the stages)."""
    return any(
        (output_dir / kind.folder).is_dir() or (output_dir / f"{kind.folder}_run").is_dir()
        for kind, _ in cfg.stage_list()
        if kind is not GRPO
    )


def choose_checkpoint(cfg: TrainConfig, output_dir: Path) -> CheckpointChoice:
    """The complete checkpoint ``--resume`` continues from (``pick_checkpoint``); ``UserError`` when there is none
    and no warm-up stage to continue either."""
    choice = pick_checkpoint(output_dir, optimizer=not cfg.grpo_args.get("save_only_model", False))
    if choice.path is None and not warmup_started(cfg, output_dir):
        if choice.skipped:
            none = f"no complete checkpoint-N in {output_dir}"
            raise UserError(f"--resume: {choice.describe(none=none)}; start again without --resume")
        raise UserError(f"--resume: no checkpoint-N folder in {output_dir}")
    return choice


def save_final(trainer, cfg: TrainConfig, model_path: str, final_dir: Path) -> Path:
    """Save the trained policy and its processor in Hugging Face format at ``final_dir``.

    Full fine-tuning: ``trainer.save_model`` (gathers ZeRO-3 / FSDP shards). LoRA: the adapter is saved to
    ``final_dir/adapter``; with ``cfg.merge_lora`` the main process reloads the base model, merges the adapter
    into its weights and saves the merged model in ``final_dir`` (the adapter folder is kept next to it).
    """
    if not cfg.lora:
        trainer.save_model(str(final_dir))
        return final_dir
    adapter_dir = final_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    if cfg.merge_lora and trainer.accelerator.is_main_process:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForImageTextToText

        dtype = torch.float32 if cfg.dtype == "float32" else getattr(torch, cfg.dtype, torch.bfloat16)
        base = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype)
        merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
        merged.save_pretrained(str(final_dir))
        trainer.processing_class.save_pretrained(str(final_dir))
    trainer.accelerator.wait_for_everyone()
    return final_dir


def run_stages(cfg: TrainConfig, model_path: str, output_dir: Path, train_rows, *, resume: bool = False) -> str:
    """Run the supervised stages of ``cfg.stages`` in order, each from the previous one's folder; a stage whose
    folder is complete is kept on ``resume``. Returns the folder the next stage (GRPO) starts from."""
    for kind, config in cfg.stage_list():
        if kind is GRPO:
            break
        out = output_dir / kind.folder
        if not (resume and (out / "config.json").is_file()):
            kind.run(StageRun(cfg, config, model_path, output_dir, resume, train_rows))
        model_path = str(out)
    return model_path


def build_trainer(cfg: TrainConfig, output_dir: Path, model_path: str, dataset, plugins: list):
    """The configured ``GRPOTrainer`` (not yet trained) from ``model_path`` on ``dataset`` (prepared rows), with
    the kind's reward terms and the probed plug-in terms ``plugins``."""
    from trl import GRPOTrainer

    from segzero.train.processing import load_training_processor
    from segzero.train.rewards import VARIANTS, build_reward_functions
    from segzero.train.samples import RecordsSamples, SampleLogger

    mask_reward = None
    if VARIANTS[cfg.reward_variant].mask_iou:  # the segmenter in the loop (segzero.train.mask_reward)
        from segzero.pipeline import default_segmenter_for
        from segzero.train.mask_reward import MaskIoU

        segmenter = cfg.mask_reward.segmenter or default_segmenter_for(model_path)
        mask_reward = MaskIoU(segmenter, frame=cfg.frame, device=cfg.mask_reward.device)
    funcs, weights = build_reward_functions(
        cfg.reward_kind,
        variant=cfg.reward_variant,
        thresholds=cfg.reward_thresholds,
        mask_reward=mask_reward,
        weights=cfg.reward_weights,
        extra_terms=plugins,
    )
    args = grpo_config(cfg, output_dir, reward_weights=weights)
    peft_config, quant = peft_and_quantization(cfg)

    class SegZeroGRPOTrainer(AtomicCheckpoints, ResumeWithKeyConversion, RecordsSamples, GRPOTrainer):
        """TRL's GRPOTrainer whose checkpoints are written whole or not at all, resume with their weights, and
        whose scored batches reach the sample file."""

    try:
        processor = load_training_processor(model_path)
        trainer = SegZeroGRPOTrainer(
            model=model_path,
            reward_funcs=funcs,
            args=args,
            train_dataset=dataset,
            processing_class=processor,
            peft_config=peft_config,
            quantization_config=quant,
        )
    except OSError as err:  # hub unreachable, folder without weights or tokenizer
        raise UserError(f"cannot load the policy model {model_path!r}: {str(err).splitlines()[0]}") from err
    if cfg.sample_every > 0:
        names = [f.__name__ for f in funcs]
        trainer.sample_logger = SampleLogger(
            output_dir / "samples.jsonl",
            every=cfg.sample_every,
            count=cfg.sample_count,
            weights=dict(zip(names, weights, strict=True)),
        )
        trainer.add_callback(trainer.sample_logger)
    return trainer


def train(
    cfg: TrainConfig, output_dir: str | Path, *, resume: bool = False, allow_changed_config: bool = False
) -> dict[str, Any]:
    """Build (or load) the model, run ``cfg.stages`` in order, save; returns ``{"final", "global_step",
    "resumed_from", "log_history"}`` (``final``: ``OUTPUT_DIR/final`` after GRPO, else the last stage's folder).

    ``resume``: continue from the newest complete checkpoint (see the module docstring); refused when a field that
    changes the training differs from ``OUTPUT_DIR/config.yaml`` unless ``allow_changed_config``.
    """
    import functools

    from segzero.train.data import build_train_dataset
    from segzero.train.plugins import plugin_terms

    output_dir = Path(output_dir)
    main_process = is_main_process()
    if cfg.runs_grpo and cfg.use_vllm and importlib.util.find_spec("vllm") is None:
        raise UserError("use_vllm: true needs vLLM: pip install 'segzero[vllm]' (or --set use_vllm=false)")
    changed = check_resume_config(cfg, output_dir, allow_changed=allow_changed_config) if resume else []
    resume_from = None
    if resume and cfg.runs_grpo:
        choice = choose_checkpoint(cfg, output_dir)
        resume_from = choice.path
        if main_process:
            line = choice.describe(none="no complete GRPO checkpoint-N yet: the stages before it resume")
            (logger.warning if choice.skipped or choice.staging else logger.info)("%s", line)
            set_aside(choice)
    output_dir.mkdir(parents=True, exist_ok=True)
    if main_process:
        record_config(cfg, output_dir, resume=resume, changed=changed, resumed_from=resume_from)
    model_path = resolve_model(cfg, output_dir)
    train_rows = functools.cache(lambda: build_train_dataset(cfg, output_dir=output_dir)[0])
    plugins = []
    if cfg.runs_grpo:  # the rows and the reward plug-ins are checked before any stage runs
        plugins = plugin_terms(cfg.reward_plugins, train_rows()[0]) if cfg.reward_plugins else []
    model_path = run_stages(cfg, model_path, output_dir, train_rows, resume=resume)
    if not cfg.runs_grpo:  # supervised stages only (e.g. the SFT arm of a comparison): the last one is the result
        steps = sum(getattr(config, "steps", 0) for _, config in cfg.stage_list())
        return {"final": Path(model_path), "global_step": steps, "resumed_from": None, "log_history": []}
    trainer = build_trainer(cfg, output_dir, model_path, train_rows(), plugins)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    final = save_final(trainer, cfg, model_path, output_dir / "final")
    if trainer.accelerator.is_main_process:  # what inference needs to know about how the model was trained
        write_model_info(final, **final_info(cfg, model_path, final))
    return {
        "final": final,
        "global_step": trainer.state.global_step,
        "resumed_from": resume_from,
        "log_history": trainer.state.log_history,
    }


def final_info(cfg: TrainConfig, model_path: str, final: Path) -> dict[str, Any]:
    """``OUTPUT_DIR/final``'s ``segzero.json``: frame, prompt and reward kind, base model, the ``training`` record,
    the reward plug-ins, the segmenter its start folder names (a path inside the run stays relative, so the run
    folder can move) and, for a registered dataset such as the shapes world, its settings (``segzero demo`` /
    ``serve`` draw their scenes from the model's own world)."""
    import os

    from segzero.models.reasoner import recorded_segmenter

    info: dict[str, Any] = {
        "frame": cfg.frame,
        "prompt": cfg.prompt_kind,
        "reward_kind": cfg.reward_kind,
        "base_model": cfg.model,
        "training": training_record(recorded_training(model_path), GRPO),
    }
    if cfg.reward_plugins:
        info["reward_plugins"] = list(cfg.reward_plugins)
    segmenter = recorded_segmenter(model_path)
    if segmenter and Path(segmenter).is_absolute() and Path(segmenter).is_relative_to(final.parent.resolve()):
        segmenter = os.path.relpath(segmenter, final.resolve())
    if segmenter:
        info["segmenter"] = segmenter
    if "world" in cfg.dataset_args:
        info["world"] = dict(cfg.dataset_args["world"])
    return info
