"""The optional format warm-up before GRPO: a short supervised fine-tune (TRL ``SFTTrainer``) on gt answers.

Why: Seg-Zero starts GRPO from an instruct model that already writes text and JSON. A model built from scratch
(``segzero.shapes.model.build_shapes_reasoner``, ``recipes/shapes_tiny.yaml``) writes random tokens, never hits the
``<think>..</think><answer>{..}</answer>`` format by chance, and GRPO then sees all-zero rewards and no signal.
So, for such models only, the stage ``format_sft`` first teaches the *format* with a few hundred teacher-forced
steps (``stages: [{kind: format_sft, steps: 300}, grpo]``).

What is supervised (plainly: this is **not** the paper's "zero" setting): the completion
``<think>{think}</think><answer>{"bbox": [...], "points_1": [...], "points_2": [...]}</answer>`` with the gt
box and points of the row (model frame, integers) and a fixed template in place of reasoning
(``think``, default ``"I look for {query}."``): answers without reasoning. The loss is on the completion
tokens only. The warm-up is kept short (format, coarse localisation) so that GRPO has room to improve it.

Output: ``OUTPUT_DIR/warmup`` (model, processor files, ``segzero.json``), which GRPO then starts from.
Registered as the stage ``format_sft`` (``FORMAT_SFT``); ``segzero.train.trainer.train`` runs it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segzero.errors import UserError
from segzero.train.stages import StageKind

logger = logging.getLogger("segzero.train")


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


@dataclass(frozen=True)
class FormatSFTConfig:
    """The fields of the ``format_sft`` stage."""

    steps: int = field(default=300, metadata={"help": "Supervised steps (TRL SFTTrainer, cosine schedule)."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak AdamW learning rate."})
    batch_size: int = field(default=16, metadata={"help": "Rows per step."})
    think: str = field(
        default="I look for {query}.", metadata={"help": "Think text in place of reasoning ({query} = the query)."}
    )

    def validate(self, cfg) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise UserError("format_sft: steps and batch_size must be >= 1")
        if cfg.reward_kind != "segzero":
            raise UserError("format_sft supports reward_kind 'segzero' only (a single-object answer)")


def sft_config(cfg, stage: FormatSFTConfig, output_dir: Path) -> Any:
    """``trl.SFTConfig`` of the stage (no checkpoints, logs next to GRPO's)."""
    from trl import SFTConfig

    report_to = [r for r in cfg.report_to if r != "none"]
    try:
        return SFTConfig(
            output_dir=str(output_dir / f"{FORMAT_SFT_DIR}_run"),
            max_steps=stage.steps,
            per_device_train_batch_size=stage.batch_size,
            gradient_accumulation_steps=1,
            learning_rate=stage.learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=min(10, stage.steps // 10),
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
            logging_steps=max(1, stage.steps // 20),
            save_strategy="no",
            report_to=report_to or "none",
        )
    except (TypeError, ValueError) as err:
        raise UserError(f"invalid format_sft settings: {err}") from err


def run_format_sft(run) -> Path:
    """Supervise ``run.model_path`` for ``run.config.steps`` steps on the run's training rows (a
    ``segzero.train.stages.StageRun``); returns ``OUTPUT_DIR/warmup``, a Hugging Face folder with the processor
    files and ``segzero.json``, loadable by ``Reasoner.from_pretrained`` and by the GRPO stage."""
    from trl import SFTTrainer

    from segzero.train.processing import load_training_processor
    from segzero.train.stages import save_stage

    stage: FormatSFTConfig = run.config
    processor = load_training_processor(run.model_path)
    processor.tokenizer.padding_side = "right"
    data = warmup_dataset(run.train_rows(), think=stage.think)
    trainer = SFTTrainer(
        model=run.model_path,
        args=sft_config(run.cfg, stage, run.output_dir),
        train_dataset=data,
        processing_class=processor,
    )
    logger.info("format warm-up: %d SFT steps on %d rows (answers without reasoning)", stage.steps, len(data))
    trainer.train()
    return save_stage(run, FORMAT_SFT, trainer, processor)


FORMAT_SFT_DIR = "warmup"
FORMAT_SFT = StageKind(
    "format_sft",
    FORMAT_SFT_DIR,
    FormatSFTConfig,
    True,
    run_format_sft,
    "supervised gt answers WITHOUT reasoning (a fixed think template; TRL SFTTrainer), for models built from "
    "scratch that cannot write the answer format yet -> OUTPUT_DIR/warmup",
)
"""The ``format_sft`` stage (entry point ``segzero.stages``)."""
