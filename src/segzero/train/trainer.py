"""Run GRPO with TRL's ``GRPOTrainer`` from a ``TrainConfig``: the engine behind ``segzero train``.

What ``train(cfg, output_dir)`` does:

1. model: ``cfg.model`` (hub id / folder), or ``"tiny"``: the random tiny models built into
   ``OUTPUT_DIR/tiny_models`` by ``segzero.models.tiny.build_tiny_models``;
2. data: ``segzero.train.data.build_train_dataset`` (bad rows logged and written to ``bad_rows.jsonl``);
3. rewards: one TRL reward function per reward term (``segzero.train.rewards``; plus the terms of
   ``cfg.reward_plugins``, ``segzero.train.plugins``, imported and probed before any warm-up), weighted by
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
   ``segzero.json`` (model frame, prompt kind, reward kind, base model), which ``Reasoner.from_pretrained``
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
from segzero.models.reasoner import recorded_segmenter, write_model_info
from segzero.train.stages import recorded_stages, training_record
from segzero.train.checkpoints import (
    AtomicCheckpoints,
    CheckpointChoice,
    ResumeWithKeyConversion,
    pick_checkpoint,
    set_aside,
)
from segzero.train.compat import checkpointing_argument
from segzero.train.config import RESUME_NEUTRAL_FIELDS, TrainConfig
from segzero.train.processes import is_main_process, local_rank, world_size

logger = logging.getLogger("segzero.train")


def resolve_model(cfg: TrainConfig, output_dir: Path) -> str:
    """The policy's path or hub id; ``"tiny"`` builds the tiny models (on the main process) and returns the reasoner;
    ``"shapes"`` builds the from-scratch shapes reasoner at ``cfg.frame`` (``cfg.shapes_model``: its builder's
    keyword arguments) into ``OUTPUT_DIR/shapes_model``."""
    if cfg.model not in ("tiny", "shapes"):
        return cfg.model
    tiny_dir = output_dir / ("tiny_models" if cfg.model == "tiny" else "shapes_model")
    reasoner = tiny_dir / "reasoner"
    if not (reasoner / "config.json").exists():
        if local_rank() == 0:
            from segzero.models.tiny import build_tiny_models
            from segzero.worlds.reasoner import build_shapes_reasoner

            if cfg.model == "tiny":
                build_tiny_models(tiny_dir, seed=cfg.seed)
            else:
                try:
                    build_shapes_reasoner(reasoner, seed=cfg.seed, frame=cfg.frame, **cfg.shapes_model)
                except (TypeError, ValueError) as err:  # unknown keyword, unknown arch, frame not a patch multiple
                    raise UserError(
                        f"cannot build the shapes model (shapes_model {cfg.shapes_model}): {err}"
                    ) from None
        if world_size() > 1:
            from accelerate import PartialState

            PartialState().wait_for_everyone()
    return str(reasoner)


def grpo_config(cfg: TrainConfig, output_dir: Path, *, reward_weights: list[float]) -> Any:
    """The ``trl.GRPOConfig`` of a run (``cfg.grpo_args`` applied last, so it can set any TRL argument)."""
    from trl import GRPOConfig

    model_init_kwargs: dict[str, Any] = {"dtype": cfg.dtype}
    if cfg.attn_implementation:
        model_init_kwargs["attn_implementation"] = cfg.attn_implementation
    report_to = [r for r in cfg.report_to if r != "none"]
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        model_init_kwargs=model_init_kwargs,
        remove_unused_columns=False,
        num_generations=cfg.num_generations,
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps(world_size()),
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_steps,
        beta=cfg.beta,
        max_grad_norm=cfg.max_grad_norm,
        loss_type=cfg.loss_type,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        bf16=cfg.bf16,
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=cfg.use_cpu,
        use_vllm=cfg.use_vllm,
        vllm_mode=cfg.vllm_mode,
        vllm_server_base_url=cfg.vllm_server_base_url,
        vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
        vllm_tensor_parallel_size=cfg.vllm_tensor_parallel_size,
        reward_weights=reward_weights,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        save_only_model=False,
        logging_steps=cfg.logging_steps,
        report_to=report_to or "none",
        run_name=cfg.run_name,
        log_completions=False,
        shuffle_dataset=True,
    )
    kwargs[checkpointing_argument(GRPOConfig)] = cfg.gradient_checkpointing  # renamed in transformers 5
    kwargs.update(cfg.grpo_args)
    try:
        return GRPOConfig(**kwargs)
    except (TypeError, ValueError) as err:
        raise UserError(f"invalid GRPO settings: {err}") from err


def peft_and_quantization(cfg: TrainConfig):
    """``(peft LoraConfig | None, BitsAndBytesConfig | None)`` for ``cfg.lora`` / ``cfg.load_in_4bit``."""
    if not cfg.lora:
        return None, None
    try:
        from peft import LoraConfig
    except ImportError as err:
        raise UserError("lora: true needs peft: pip install 'segzero[lora]'") from err
    peft_config = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_target_modules
        if isinstance(cfg.lora_target_modules, str)
        else list(cfg.lora_target_modules),
        task_type="CAUSAL_LM",
    )
    quant = None
    if cfg.load_in_4bit:
        if importlib.util.find_spec("bitsandbytes") is None:
            raise UserError("load_in_4bit (QLoRA) needs bitsandbytes: pip install bitsandbytes")
        import torch
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if cfg.bf16 else torch.float32,
        )
    return peft_config, quant


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
    """Whether ``cfg`` has warm-up stages and one of them left a folder (a resume then continues the warm-up)."""
    if cfg.sft_steps <= 0 and cfg.sft_answer_steps <= 0:
        return False
    from segzero.train.warmup import WARMUP_DIR

    names = [WARMUP_DIR]
    if cfg.sft_target == "perception":
        from segzero.train.perception_warmup import ANSWER_DIR

        names.append(ANSWER_DIR)
    return any((output_dir / n).is_dir() or (output_dir / f"{n}_run").is_dir() for n in names)


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


def run_any_warmup(cfg: TrainConfig, model_path: str, dataset, output_dir: Path, *, resume: bool = False) -> Path:
    """The warm-up of ``cfg.sft_target`` (kept when ``resume`` finds it finished); returns its last stage's folder
    (``OUTPUT_DIR/warmup``, or ``OUTPUT_DIR/answer_sft`` after a gt-answer stage)."""
    from segzero.train.data import build_warmup_dataset
    from segzero.train.warmup import WARMUP_DIR, run_warmup

    if cfg.sft_target == "perception":
        return run_perception_stages(cfg, model_path, output_dir, resume=resume)
    warm = output_dir / WARMUP_DIR
    if resume and (warm / "config.json").is_file():
        return warm
    return run_warmup(cfg, model_path, build_warmup_dataset(cfg, dataset), output_dir)[0]


def run_perception_stages(cfg: TrainConfig, model_path: str, output_dir: Path, *, resume: bool = False) -> Path:
    """The perception warm-up (``OUTPUT_DIR/warmup``), then, when ``sft_answer_steps > 0``, supervised gt answers
    from it (``OUTPUT_DIR/answer_sft``); a stage finished before is kept on ``resume``. Returns the last output."""
    from segzero.train.perception_warmup import answer_stage, perception_stage, rows_for, run_perception_warmup

    stages = [(perception_stage(cfg), cfg.sft_choice)] if cfg.sft_steps > 0 else []
    if cfg.sft_answer_steps > 0:
        stages.append((answer_stage(cfg), "gt"))
    for stage, choice in stages:
        out = output_dir / stage.name
        if not (resume and (out / "config.json").is_file()):
            rows = rows_for(cfg, steps=stage.cosine_steps or stage.steps, choice=choice)  # rows for the whole cosine
            run_perception_warmup(cfg, model_path, rows, output_dir, stage=stage, resume=resume)
        model_path = str(out)
    return Path(model_path)


def build_trainer(cfg: TrainConfig, output_dir: str | Path, *, resume: bool = False):
    """The configured ``GRPOTrainer`` (not yet trained) and the model path it starts from."""
    from trl import GRPOTrainer

    from segzero.train.data import build_train_dataset
    from segzero.train.processing import load_training_processor
    from segzero.train.plugins import plugin_terms
    from segzero.train.rewards import SampleWriter, build_reward_functions

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if cfg.use_vllm and importlib.util.find_spec("vllm") is None:
        raise UserError("use_vllm: true needs vLLM: pip install 'segzero[vllm]' (or --set use_vllm=false)")
    model_path = resolve_model(cfg, output_dir)
    dataset, _bad = build_train_dataset(cfg, output_dir=output_dir)
    plugins = plugin_terms(cfg.reward_plugins, dataset[0]) if cfg.reward_plugins else []  # before any warm-up
    if cfg.sft_steps > 0 or cfg.sft_answer_steps > 0:  # warm-up (segzero.train.warmup / perception_warmup)
        model_path = str(run_any_warmup(cfg, model_path, dataset, output_dir, resume=resume))
    writer = None
    if cfg.sample_every > 0:
        writer = SampleWriter(output_dir / "samples.jsonl", every=cfg.sample_every, count=cfg.sample_count)
    mask_reward = None
    if cfg.reward_variant in ("mask", "mask_mix"):  # the segmenter in the loop (segzero.train.mask_reward)
        from segzero.pipeline import default_segmenter_for
        from segzero.train.mask_reward import MaskIoU

        segmenter = cfg.reward_segmenter or default_segmenter_for(model_path)
        mask_reward = MaskIoU(segmenter, frame=cfg.frame, device=cfg.reward_device)
    funcs, weights = build_reward_functions(
        cfg.reward_kind,
        variant=cfg.reward_variant,
        thresholds=cfg.reward_thresholds,
        mask_reward=mask_reward,
        weights=cfg.reward_weights,
        writer=writer,
        extra_terms=plugins,
    )
    args = grpo_config(cfg, output_dir, reward_weights=weights)
    peft_config, quant = peft_and_quantization(cfg)

    class SegZeroGRPOTrainer(AtomicCheckpoints, ResumeWithKeyConversion, GRPOTrainer):
        """TRL's GRPOTrainer whose checkpoints are written whole or not at all and resume with their weights."""

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
    return trainer, model_path


def train(
    cfg: TrainConfig, output_dir: str | Path, *, resume: bool = False, allow_changed_config: bool = False
) -> dict[str, Any]:
    """Train, save ``OUTPUT_DIR/final``; returns ``{"final", "global_step", "resumed_from", "log_history"}``.

    ``resume``: continue from the newest complete checkpoint (see the module docstring); refused when a field that
    changes the training differs from ``OUTPUT_DIR/config.yaml`` unless ``allow_changed_config``.
    """
    output_dir = Path(output_dir)
    main_process = is_main_process()
    changed = check_resume_config(cfg, output_dir, allow_changed=allow_changed_config) if resume else []
    if cfg.sft_only:  # warm-up only (e.g. the SFT arm of a comparison): its last stage's folder is the result
        from segzero.train.data import build_train_dataset

        output_dir.mkdir(parents=True, exist_ok=True)
        if main_process:
            record_config(cfg, output_dir, resume=resume, changed=changed, resumed_from=None)
        model_path = resolve_model(cfg, output_dir)
        rows = build_train_dataset(cfg, output_dir=output_dir)[0] if cfg.sft_target == "answer" else None
        warm = run_any_warmup(cfg, model_path, rows, output_dir, resume=resume)
        steps = cfg.sft_steps + (cfg.sft_answer_steps if cfg.sft_target == "perception" else 0)
        return {"final": warm, "global_step": steps, "resumed_from": None, "log_history": []}
    resume_from = None
    if resume:
        choice = choose_checkpoint(cfg, output_dir)
        resume_from = choice.path
        if main_process:
            warmup = "no complete GRPO checkpoint-N yet: the warm-up resumes (finished stages are kept)"
            line = choice.describe(none=warmup)
            (logger.warning if choice.skipped or choice.staging else logger.info)("%s", line)
            set_aside(choice)
    output_dir.mkdir(parents=True, exist_ok=True)
    if main_process:
        record_config(cfg, output_dir, resume=resume, changed=changed, resumed_from=resume_from)
    trainer, model_path = build_trainer(cfg, output_dir, resume=resume)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    final = save_final(trainer, cfg, model_path, output_dir / "final")
    if trainer.accelerator.is_main_process:  # what inference needs to know about how the model was trained
        info = {
            "frame": cfg.frame,
            "prompt": cfg.prompt_kind,
            "reward_kind": cfg.reward_kind,
            "base_model": cfg.model,
            "training": training_record(recorded_stages(model_path), "grpo"),
        }
        if cfg.reward_plugins:
            info["reward_plugins"] = list(cfg.reward_plugins)
        # the segmenter that goes with the policy, so `segzero segment --reasoner OUTPUT_DIR/final` needs no flag
        segmenter = {"tiny": "../tiny_models/segmenter", "shapes": "color"}.get(cfg.model) or recorded_segmenter(
            cfg.model
        )
        if cfg.dataset == "synthetic":  # segzero demo / serve draw their scenes from the model's own world
            info["world"] = dict(cfg.synthetic_world)
        write_model_info(final, **info, **({"segmenter": segmenter} if segmenter else {}))
    return {
        "final": final,
        "global_step": trainer.state.global_step,
        "resumed_from": resume_from,
        "log_history": trainer.state.log_history,
    }
