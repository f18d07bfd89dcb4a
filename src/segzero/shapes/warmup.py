"""The shapes model's supervised stages, run with ``transformers.Trainer`` on rows drawn on the fly.

Each training row is shapes-world sample ``index`` (``make_sample``, the train split, drawn at the model frame)
with its target in the reasoning format of ``segzero.shapes.perception``; a row is built in the data-loader
worker when it is needed, so a stage can run for tens of thousands of rows without building or storing a dataset.
The loss is teacher-forced cross-entropy on the completion tokens only (prompt, image and padding tokens are
masked with -100), a weighted mean in which the tokens from the decision on (a ranking where there is one, else
"The query means ...", then the answer) may weigh ``decision_weight`` times the listing's: the name of the
picked shape is 2 tokens of ~150. Checkpoints (the run's ``save_steps``) keep the optimizer, scheduler and RNG
state, so an interrupted stage resumes where it stopped.

The stage kinds and their fields: ``segzero.shapes.stages``. Usage (normally through ``segzero train``)::

    from segzero.shapes.warmup import ShapesRows
    rows = ShapesRows(config, families, seed=0, size=64, choice="random")
    rows[0]        # {"image": PIL, "query": "...", "completion": "<think>I see 1 ..."}
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from transformers import Trainer

from segzero.shapes.perception import DECISION, RANKED, perception_completion

logger = logging.getLogger("segzero.train")


class ShapesRows:
    """A map-style dataset of ``size`` rows ``{"image": PIL, "query": str, "completion": str}``: sample ``index``
    of the shapes world ``config`` / ``families`` (train split, world seed ``seed``) with its target picking
    ``choice`` (``segzero.shapes.perception.CHOICES``) and stating it as ``listing``; ``no_target``: the share of
    rows whose query means no shape of the scene (drawn among the queries that can mean a shape in the world, so
    the scene decides; the ``"gt"`` target answers ``[]``). The random pick of row ``index`` and whether it is a
    "nothing" row depend only on (``seed``, ``index``), so a resumed stage draws the same rows."""

    def __init__(
        self,
        config,
        families,
        *,
        seed: int,
        size: int,
        choice: str,
        listing: str = "left_to_right",
        no_target: float = 0.0,
    ) -> None:
        self.config, self.families, self.seed, self.size, self.choice = config, tuple(families), seed, size, choice
        self.listing, self.no_target = listing, no_target

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        from segzero.shapes.world import make_sample

        rng = np.random.default_rng([self.seed, 7, int(index)])
        nothing = bool(self.no_target) and rng.random() < self.no_target
        sample = make_sample(
            int(index),
            seed=self.seed,
            config=self.config,
            split="train",
            layout="eval" if nothing else "single",
            answers="none" if nothing else None,
            families=self.families,
            answerable_only=nothing,  # a "nothing" the scene decides, not the query's words alone
        )
        completion = perception_completion(sample, choice=self.choice, rng=rng, listing=self.listing)
        return {"image": sample["image"], "query": sample["problem"], "completion": completion}


class CompletionCollator:
    """Rows -> model inputs with ``labels`` on the completion (and its end token) only, and ``loss_weights``
    (float, same shape): ``decision_weight`` from the decision on (its ranking, ``RANKED``, where it has one, else
    ``DECISION``), 1 before it; right padding."""

    def __init__(self, processor, *, prompt_kind: str, decision_weight: float = 1.0) -> None:
        self.processor, self.prompt_kind, self.decision_weight = processor, prompt_kind, decision_weight
        self.end = processor.tokenizer.eos_token or "<|im_end|>"

    def _tokens_before(self, completion: str, text: str) -> int:
        """Completion tokens before ``text`` (0 when absent)."""
        cut = completion.find(text)
        tok = self.processor.tokenizer
        return len(tok(completion[:cut].rstrip(), add_special_tokens=False)["input_ids"]) if cut > 0 else 0

    def __call__(self, rows: list[dict]):
        from segzero.prompts import build_messages

        tok = self.processor.tokenizer
        prompts = [
            self.processor.apply_chat_template(
                build_messages(None, r["query"], kind=self.prompt_kind), tokenize=False, add_generation_prompt=True
            )
            for r in rows
        ]
        completions = [r["completion"] + self.end for r in rows]
        tok.padding_side = "right"
        batch = self.processor(
            text=[p + c for p, c in zip(prompts, completions, strict=True)],
            images=[r["image"] for r in rows],
            padding=True,
            return_tensors="pt",
        )
        labels = batch["input_ids"].clone()
        weights = torch.ones(labels.shape, dtype=torch.float32)
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        for i, c in enumerate(completions):
            start = lengths[i] - len(tok(c, add_special_tokens=False)["input_ids"])
            decides = RANKED if RANKED in c else DECISION
            labels[i, :start] = -100
            labels[i, lengths[i] :] = -100
            weights[i, start + self._tokens_before(c, decides) :] = self.decision_weight
        batch["labels"] = labels
        batch["loss_weights"] = weights
        return batch


class WeightedLossTrainer(Trainer):
    """``transformers.Trainer`` whose loss is the ``loss_weights``-weighted mean of the next-token cross-entropy over
    the supervised tokens (labels != -100); weights of 1 give the plain mean (Trainer's own loss)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weights = inputs.pop("loss_weights")[:, 1:]
        labels = inputs.pop("labels")[:, 1:]
        outputs = model(**inputs)
        logits = outputs.logits[:, :-1].float()
        ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")
        weights = weights.to(ce.device) * (labels != -100)
        loss = (ce * weights).sum() / weights.sum().clamp(min=1e-8)
        return (loss, outputs) if return_outputs else loss


def num_cycles(steps: int, warmup_steps: int, cosine_steps: int | None) -> float:
    """``transformers``' cosine ``num_cycles`` (0.5 = to 0 at ``steps``) whose curve over ``steps`` is the first
    part of a cosine to 0 at ``cosine_steps`` (None = ``steps``).

    >>> num_cycles(100, 10, None), num_cycles(100, 10, 190)
    (0.5, 0.25)
    """
    horizon = cosine_steps or steps
    return 0.5 * (steps - warmup_steps) / max(1, horizon - warmup_steps)


def train_supervised(run, kind, rows: ShapesRows, *, decision_weight: float = 1.0) -> Path:
    """Teacher-force ``run.model_path`` on ``rows`` for the stage's ``steps`` (a ``segzero.train.stages.StageRun``
    of stage ``kind``); checkpoints in ``OUTPUT_DIR/<folder>_run``, continued when ``run.resume``; returns the
    saved folder ``OUTPUT_DIR/<folder>``. Settings: the stage's ``steps``, ``learning_rate``, ``batch_size``,
    ``warmup_steps``, ``cosine_steps``; the run's ``max_grad_norm``, ``save_steps``, ``save_total_limit``, ``seed``."""
    from transformers import AutoModelForImageTextToText, TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    from segzero.train.processing import load_training_processor
    from segzero.train.stages import save_stage

    cfg, stage = run.cfg, run.config
    run_dir = run.output_dir / f"{kind.folder}_run"
    processor = load_training_processor(run.model_path)
    model = AutoModelForImageTextToText.from_pretrained(run.model_path, dtype="float32")
    args = TrainingArguments(
        output_dir=str(run_dir),
        max_steps=stage.steps,
        per_device_train_batch_size=stage.batch_size,
        learning_rate=stage.learning_rate,
        lr_scheduler_type="cosine",
        lr_scheduler_kwargs={"num_cycles": num_cycles(stage.steps, stage.warmup_steps, stage.cosine_steps)},
        warmup_steps=stage.warmup_steps,
        weight_decay=0.0,
        max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        use_cpu=cfg.use_cpu,
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=1,
        remove_unused_columns=False,
        report_to=[r for r in cfg.report_to if r != "none"] or "none",
    )
    collator = CompletionCollator(processor, prompt_kind=cfg.prompt_kind, decision_weight=decision_weight)
    trainer = WeightedLossTrainer(
        model=model,
        args=args,
        train_dataset=rows,
        data_collator=collator,
        processing_class=processor,  # checkpoints carry the processor files: each one loads like the result
    )
    last = get_last_checkpoint(str(run_dir)) if run.resume and run_dir.is_dir() else None
    logger.info("%s: %d steps x %d rows (choice: %s)", kind.name, stage.steps, stage.batch_size, rows.choice)
    trainer.train(resume_from_checkpoint=last)
    world = dict(cfg.dataset_args.get("world") or {})  # segzero demo / serve draw scenes from the model's world
    return save_stage(run, kind, trainer, processor, segmenter="color", world=world)
