"""A ``TrainConfig``'s GRPO stage as TRL and peft take it: ``trl.GRPOConfig`` and the LoRA / QLoRA configs.

from segzero.train.grpo_args import grpo_config, peft_and_quantization
args = grpo_config(cfg, Path("runs/x"), reward_weights=[1.0] * 5)
peft_config, quantization = peft_and_quantization(cfg)       # (None, None) without lora
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from segzero.errors import UserError
from segzero.train.compat import checkpointing_argument
from segzero.train.config import TrainConfig
from segzero.train.processes import world_size


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
        vllm_mode=cfg.vllm.mode,
        vllm_server_base_url=cfg.vllm.server_base_url,
        vllm_gpu_memory_utilization=cfg.vllm.gpu_memory_utilization,
        vllm_tensor_parallel_size=cfg.vllm.tensor_parallel_size,
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
