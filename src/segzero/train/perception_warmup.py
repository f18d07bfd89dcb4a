"""Run the perception warm-up (``segzero.train.perception``) with ``transformers.Trainer``: rows drawn on the fly.

Each training row is shapes-world sample ``index`` (``make_sample``, the train split, drawn at the model frame)
with its perception target; a row is built in the data-loader worker when it is needed, so the warm-up can run
for tens of thousands of rows without building or storing a dataset first. The loss is teacher-forced
cross-entropy on the completion tokens only (prompt, image and padding tokens are masked with -100), a weighted
mean in which the tokens from the decision on ("The query means ...", then the answer) may weigh more than the
listing (``Stage.decision_weight``): the name of the picked shape is 2 tokens of ~150.
Checkpoints (``save_steps``) keep the optimizer, scheduler and RNG state, so an interrupted warm-up resumes where
it stopped (``resume=True``); the result is a Hugging Face folder with the processor files and ``segzero.json``.

Usage (normally through ``segzero train`` with ``sft_target: perception``)::

    from segzero.train.perception_warmup import perception_stage, rows_for, run_perception_warmup
    rows = rows_for(cfg, steps=cfg.sft_steps, choice=cfg.sft_choice)
    out, log = run_perception_warmup(cfg, model_path, rows, output_dir, stage=perception_stage(cfg))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import Trainer

from segzero.train.perception import COMPARE, DECISION, ORDERS, RANKED, WINNER, perception_completion

logger = logging.getLogger("segzero.train")

PERCEPTION_DIR = "warmup"
ANSWER_DIR = "answer_sft"


class PerceptionRows:
    """A map-style dataset of ``size`` rows: ``{"image": PIL, "query": str, "completion": str}`` for sample
    ``index`` of the shapes world ``config`` / ``families`` (train split, world seed ``seed``); the
    ``"random"`` pick of row ``index`` depends only on (``seed``, ``index``); ``compare``: superlative targets
    carry their comparison chain (``segzero.train.perception.comparison``); ``winner_first``: their winner sentence
    (``segzero.train.perception.winner``); ``drill_fraction``: the share of rows that are decision drills
    (``segzero.train.drills``, listed as ``listing`` lists the scenes); whether row ``index`` is one depends only
    on (``seed``, ``index``), so a resumed run draws the same rows; ``listing``: ``segzero.train.perception.LISTINGS``;
    ``no_target``: the share of (non-drill) rows whose query means no shape of the scene (drawn with
    ``answers="none"`` among the queries that can mean a shape in the world, so the scene decides; the ``"gt"``
    target answers ``[]``), again fixed by (``seed``, ``index``); ``gt_families``: query families whose rows pick
    the ``"gt"`` shape whatever ``choice`` says."""

    def __init__(
        self,
        config,
        families,
        *,
        seed: int,
        size: int,
        choice: str,
        compare: bool = False,
        drill_fraction: float = 0.0,
        listing: str = "left_to_right",
        no_target: float = 0.0,
        winner_first: bool = False,
        gt_families: tuple[str, ...] = (),
    ) -> None:
        self.config, self.families, self.seed, self.size, self.choice = config, tuple(families), seed, size, choice
        self.compare, self.drill_fraction, self.listing = compare, drill_fraction, listing
        self.no_target, self.winner_first, self.gt_families = no_target, winner_first, tuple(gt_families)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        from segzero.worlds.shapes import make_sample

        rng = np.random.default_rng([self.seed, 7, int(index)])
        if self.drill_fraction and rng.random() < self.drill_fraction:
            from segzero.train.drills import drill_row

            return drill_row(rng, config=self.config, listing=self.listing)
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
        completion = perception_completion(
            sample,
            choice="gt" if sample["family"] in self.gt_families else self.choice,
            rng=rng,
            compare=self.compare,
            listing=self.listing,
            winner_first=self.winner_first,
        )
        return {"image": sample["image"], "query": sample["problem"], "completion": completion}


def rows_for(cfg, *, steps: int, choice: str) -> PerceptionRows:
    """The perception rows of a ``TrainConfig``: its ``synthetic_world`` (updated by ``sft_world``) at ``frame``,
    world seed ``synthetic_seed``, the pick ``choice``, and enough rows for ``steps * sft_batch_size`` (no
    repeats)."""
    from segzero.errors import UserError
    from segzero.worlds.shapes import world_from_spec

    try:
        config, families = world_from_spec({**cfg.synthetic_world, **cfg.sft_world}, size=cfg.frame)
    except ValueError as err:
        raise UserError(f"bad synthetic_world / sft_world: {err}") from err
    size = max(steps * cfg.sft_batch_size, cfg.sft_samples or 0)
    # comparison chains, winner sentences and "nothing" rows supervise the pick: gt-answer rows only; drills have
    # their own share in each stage
    gt = choice == "gt"
    drills = cfg.sft_drill_fraction if gt else cfg.sft_warmup_drills
    return PerceptionRows(
        config,
        families,
        seed=cfg.synthetic_seed,
        size=size,
        choice=choice,
        compare=cfg.sft_compare and gt,
        drill_fraction=drills,
        listing=cfg.sft_listing,
        no_target=cfg.sft_no_target if gt else 0.0,
        winner_first=cfg.sft_winner and gt,
        gt_families=() if gt else tuple(cfg.sft_warmup_gt_families),
    )


class CompletionCollator:
    """Rows -> model inputs with ``labels`` on the completion (and its end token) only, and ``loss_weights``
    (float, same shape: ``decision_weight`` from the decision on (its comparison chain, ``COMPARE``, winner
    sentence, ``WINNER``, scene orders, ``ORDERS``, or ranking, ``RANKED``, where it has one, else ``DECISION``),
    1 before it); right padding.

    ``supervise_from``: a text in the completion from which on the loss applies (None = the whole completion);
    e.g. ``DECISION`` keeps the perception listing out of the loss, so that the tokens that decide (the comparison
    chain where there is one, the pick) are not a 1-in-150 share of it. A row's own ``"supervise_from"`` (a
    decision drill's ``DECISION``: its listing is made up) wins over the collator's."""

    def __init__(
        self, processor, *, prompt_kind: str, supervise_from: str | None = None, decision_weight: float = 1.0
    ) -> None:
        self.processor, self.prompt_kind, self.supervise_from = processor, prompt_kind, supervise_from
        self.decision_weight = decision_weight
        self.end = processor.tokenizer.eos_token or "<|im_end|>"

    def _tokens_before(self, completion: str, text: str | None) -> int:
        """Completion tokens before ``text`` (0 when ``text`` is None or absent)."""
        cut = completion.find(text) if text else -1
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
        for i, (c, row) in enumerate(zip(completions, rows, strict=True)):
            start = lengths[i] - len(tok(c, add_special_tokens=False)["input_ids"])
            # a superlative's comparison chain, winner sentence or ranking, or the scene's orders, decide too
            decides = next((m for m in (COMPARE, WINNER, ORDERS, RANKED) if m in c), DECISION)
            supervise_from = row.get("supervise_from", self.supervise_from)
            supervise_from = decides if supervise_from == DECISION else supervise_from
            labels[i, : start + self._tokens_before(c, supervise_from)] = -100
            labels[i, lengths[i] :] = -100
            weights[i, start + self._tokens_before(c, decides) :] = self.decision_weight
        batch["labels"] = labels
        batch["loss_weights"] = weights
        return batch


@dataclass(frozen=True)
class Stage:
    """One supervised stage: ``steps`` optimizer steps at peak ``learning_rate`` (linear over ``warmup_steps``,
    then cosine to 0); the result goes to ``OUTPUT_DIR/<name>``, checkpoints to ``OUTPUT_DIR/<name>_run``."""

    name: str
    steps: int
    learning_rate: float
    warmup_steps: int
    cosine_steps: int | None = None  # the cosine's horizon when the stage stops before its end (None = ``steps``)
    supervise_from: str | None = None  # ``CompletionCollator``: loss from this text on (None = whole completion)
    decision_weight: float = 1.0  # ``CompletionCollator``: loss weight from DECISION on, relative to the listing

    def num_cycles(self) -> float:
        """``transformers``' cosine ``num_cycles`` (0.5 = to 0 at ``steps``) whose curve over ``steps`` is the first
        part of a cosine to 0 at ``cosine_steps``."""
        horizon = self.cosine_steps or self.steps
        return 0.5 * (self.steps - self.warmup_steps) / max(1, horizon - self.warmup_steps)


def perception_stage(cfg) -> Stage:
    """Stage 1 of the shapes recipe: the perception warm-up (``sft_steps``, ``sft_learning_rate``) -> ``warmup``."""
    return Stage(PERCEPTION_DIR, cfg.sft_steps, cfg.sft_learning_rate, cfg.sft_warmup_steps, cfg.sft_cosine_steps)


def answer_stage(cfg) -> Stage:
    """The optional stage after it: gt answers (``sft_answer_steps``, ``sft_answer_learning_rate``) -> ``answer_sft``."""
    decision = DECISION if cfg.sft_answer_loss == "decision" else None
    return Stage(
        ANSWER_DIR,
        cfg.sft_answer_steps,
        cfg.sft_answer_learning_rate,
        min(10, cfg.sft_warmup_steps),
        None,
        decision,
        cfg.sft_answer_decision_weight,
    )


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


def run_perception_warmup(
    cfg, model_path: str, rows: PerceptionRows, output_dir: str | Path, *, stage: Stage, resume: bool = False
):
    """Teacher-force ``model_path`` on ``rows`` for ``stage.steps`` steps; returns ``(OUTPUT_DIR/<stage>, log)``.

    Settings besides ``stage``: ``cfg.sft_batch_size``, ``cfg.max_grad_norm``, ``cfg.save_steps`` /
    ``cfg.save_total_limit`` (checkpoints in ``OUTPUT_DIR/<stage>_run``), ``cfg.seed``. ``resume``: continue
    from the last complete checkpoint of ``OUTPUT_DIR/<stage>_run``.
    """
    from transformers import AutoModelForImageTextToText, TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    from segzero.models.reasoner import write_model_info
    from segzero.train.processing import load_training_processor
    from segzero.train.stages import recorded_stages, training_record

    output_dir = Path(output_dir)
    run_dir = output_dir / f"{stage.name}_run"
    out = output_dir / stage.name
    processor = load_training_processor(model_path)
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype="float32")
    args = TrainingArguments(
        output_dir=str(run_dir),
        max_steps=stage.steps,
        per_device_train_batch_size=cfg.sft_batch_size,
        learning_rate=stage.learning_rate,
        lr_scheduler_type="cosine",
        lr_scheduler_kwargs={"num_cycles": stage.num_cycles()},
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
    collator = CompletionCollator(
        processor,
        prompt_kind=cfg.prompt_kind,
        supervise_from=stage.supervise_from,
        decision_weight=stage.decision_weight,
    )
    trainer = WeightedLossTrainer(
        model=model,
        args=args,
        train_dataset=rows,
        data_collator=collator,
        processing_class=processor,  # checkpoints carry the processor files: each one loads like the result
    )
    last = get_last_checkpoint(str(run_dir)) if resume and run_dir.is_dir() else None
    logger.info("%s: %d steps x %d rows (choice: %s)", stage.name, stage.steps, cfg.sft_batch_size, rows.choice)
    trainer.train(resume_from_checkpoint=last)
    trainer.save_model(str(out))
    processor.tokenizer.padding_side = "left"
    processor.save_pretrained(str(out))
    perception_only = rows.choice == "random" and not (rows.gt_families or rows.drill_fraction)
    taught = "perception_warmup" if perception_only else "answer_sft"  # drills and gt families teach answers
    write_model_info(
        out,
        frame=cfg.frame,
        prompt=cfg.prompt_kind,
        reward_kind=cfg.reward_kind,
        base_model=cfg.model,
        stage=stage.name,
        training=training_record(recorded_stages(model_path), taught),
        segmenter="color",  # the shapes world's exact colour segmenter
        world=dict(cfg.synthetic_world),  # segzero demo / serve draw their scenes from the model's own world
    )
    return out, list(trainer.state.log_history)
