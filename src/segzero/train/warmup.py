"""The optional format warm-up before GRPO: a short supervised fine-tune (TRL ``SFTTrainer``) on gt answers.

Why: Seg-Zero starts GRPO from an instruct model that already writes text and JSON. A model built from scratch
(``segzero.worlds.reasoner.build_shapes_reasoner``, ``recipes/shapes_tiny.yaml``) writes random tokens, never hits the
``<think>..</think><answer>{..}</answer>`` format by chance, and GRPO then sees all-zero rewards and no signal.
So, for such models only, ``sft_steps > 0`` first teaches the *format* with a few hundred teacher-forced steps.

What is supervised (plainly: this is **not** the paper's "zero" setting): the completion
``<think>{sft_think}</think><answer>{"bbox": [...], "points_1": [...], "points_2": [...]}</answer>`` with the gt
box and points of the row (model frame, integers) and a fixed template in place of reasoning
(``sft_think``, default ``"I look for {query}."``): answers without reasoning. The loss is on the completion
tokens only. The warm-up is kept short (format, coarse localisation) so that GRPO has room to improve it.

Output: ``OUTPUT_DIR/warmup`` (model, processor files, ``segzero.json``), which GRPO then starts from.
Usage (normally called by ``segzero.train.trainer.train``)::

    from segzero.train.warmup import run_warmup
    warm_dir = run_warmup(cfg, model_path, dataset, output_dir)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from segzero.errors import UserError

logger = logging.getLogger("segzero.train")

WARMUP_DIR = "warmup"


def answer_completion(solution: str, query: str, *, think: str = "I look for {query}.") -> str:
    """The supervised completion for one row: think template + the gt as a Seg-Zero answer (strict JSON).

    ``solution`` is the single-object gt (``<box>(x1,y1),(x2,y2)</box><points>(x,y),(x,y)</points>``, model frame);
    ``think`` may contain ``{query}`` (the query, lower-cased, trailing '.' stripped, as the prompt writes it).
    """
    from segzero.answer import segzero_answer_json
    from segzero.parsing import parse_solution

    (obj,) = parse_solution(solution)
    text = think.format(query=query.strip().lower().rstrip("."))
    return f"<think>{text}</think><answer>{segzero_answer_json(obj.box, obj.points)}</answer>"


def warmup_dataset(dataset, *, think: str):
    """GRPO training rows (``prompt``, ``image``, ``solution``, ``problem``) -> SFT prompt-completion rows."""

    def to_sft(row: dict) -> dict:
        text = answer_completion(row["solution"], row["problem"], think=think)
        return {"completion": [{"role": "assistant", "content": [{"type": "text", "text": text}]}]}

    keep = {"prompt", "image", "completion"}
    mapped = dataset.map(to_sft, desc="preparing warm-up answers")
    return mapped.remove_columns([c for c in mapped.column_names if c not in keep])


def sft_config(cfg, output_dir: Path) -> Any:
    """``trl.SFTConfig`` of the warm-up (``cfg.sft_*`` fields; no checkpoints, logs next to GRPO's)."""
    from trl import SFTConfig

    report_to = [r for r in cfg.report_to if r != "none"]
    try:
        return SFTConfig(
            output_dir=str(output_dir / "warmup_run"),
            max_steps=cfg.sft_steps,
            per_device_train_batch_size=cfg.sft_batch_size,
            gradient_accumulation_steps=1,
            learning_rate=cfg.sft_learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=min(10, cfg.sft_steps // 10),
            weight_decay=0.0,
            max_grad_norm=cfg.max_grad_norm,
            completion_only_loss=True,
            max_length=None,
            remove_unused_columns=False,
            dataset_kwargs={"skip_prepare_dataset": True},
            bf16=cfg.bf16,
            use_cpu=cfg.use_cpu,
            seed=cfg.seed,
            data_seed=cfg.seed,
            logging_steps=max(1, cfg.sft_steps // 20),
            save_strategy="no",
            report_to=report_to or "none",
        )
    except (TypeError, ValueError) as err:
        raise UserError(f"invalid warm-up (SFT) settings: {err}") from err


def run_warmup(cfg, model_path: str, dataset, output_dir: str | Path) -> tuple[Path, list[dict]]:
    """Supervise ``model_path`` for ``cfg.sft_steps`` steps on ``dataset``; returns ``(OUTPUT_DIR/warmup, log)``.

    ``dataset`` is the prepared GRPO training set (``segzero.train.data.build_train_dataset``). The result is a
    Hugging Face folder with the processor files and ``segzero.json`` (frame, prompt kind), loadable by
    ``Reasoner.from_pretrained`` and by the GRPO phase. ``log`` is the SFT trainer's log history.
    """
    from trl import SFTTrainer

    from segzero.models.reasoner import write_model_info
    from segzero.train.processing import load_training_processor
    from segzero.train.stages import recorded_stages, training_record

    if cfg.reward_kind != "segzero":
        raise UserError("the format warm-up (sft_steps > 0) supports reward_kind 'segzero' only")
    output_dir = Path(output_dir)
    out = output_dir / WARMUP_DIR
    processor = load_training_processor(model_path)
    processor.tokenizer.padding_side = "right"
    data = warmup_dataset(dataset, think=cfg.sft_think)
    trainer = SFTTrainer(
        model=model_path,
        args=sft_config(cfg, output_dir),
        train_dataset=data,
        processing_class=processor,
    )
    logger.info("format warm-up: %d SFT steps on %d rows (answers without reasoning)", cfg.sft_steps, len(data))
    trainer.train()
    trainer.save_model(str(out))
    processor.tokenizer.padding_side = "left"
    processor.save_pretrained(str(out))
    write_model_info(
        out,
        frame=cfg.frame,
        prompt=cfg.prompt_kind,
        reward_kind=cfg.reward_kind,
        base_model=cfg.model,
        stage="warmup",
        training=training_record(recorded_stages(model_path), "format_sft"),
    )
    return out, list(trainer.state.log_history)
