"""The shapes model's supervised stages, registered for ``segzero train`` (entry-point group ``segzero.stages``).

- ``perception_warmup`` -> ``OUTPUT_DIR/warmup``: every shape listed with its box, points and area, then one named
  **at random** and copied into the answer (``segzero.shapes.perception``, ``choice="random"``). The query is never
  supervised: the model learns to see and copy, as a pretrained VLM already can, and GRPO has to learn what a query
  means from the rewards alone (Seg-Zero's setting). Recorded as a stage that teaches no answers.
- ``answer_sft`` -> ``OUTPUT_DIR/answer_sft``: the same target naming the shape the query means (gt answers;
  supervised fine-tuning, e.g. the SFT arm of a comparison, or the shipped SFT model's stages).

Both draw their rows from the run's shapes world (``dataset: synthetic``, its ``dataset_args``; ``world`` here
updates those settings for the stage's rows only) and need ``reward_kind: segzero`` (a single-object answer)::

    stages:
      - {kind: perception_warmup, steps: 5000, learning_rate: 2.0e-3, batch_size: 32, warmup_steps: 100}
      - {kind: answer_sft, steps: 2400, learning_rate: 1.0e-3, decision_weight: 5.0}
      - grpo
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from segzero.errors import UserError
from segzero.shapes.perception import LISTINGS
from segzero.train.stages import StageKind


def _f(default, help: str):  # noqa: A002 - "help" mirrors argparse/dataclass metadata wording
    if isinstance(default, dict):
        return field(default_factory=dict, metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class ShapesStageConfig:
    """Fields both shapes stages take."""

    steps: int = _f(3300, "Optimizer steps.")
    learning_rate: float = _f(2e-3, "Peak AdamW learning rate (linear warm-up, then cosine).")
    batch_size: int = _f(32, "Rows (scenes) per step; rows are drawn on the fly, none repeated.")
    warmup_steps: int = _f(100, "Linear learning-rate warm-up steps before the cosine decay.")
    cosine_steps: int | None = _f(
        None,
        "The step at which the cosine reaches 0 (None = steps); larger than steps = a stage stopped part-way down "
        "the cosine (a later stage then finishes the decay).",
    )
    world: dict[str, Any] = _f(
        {},
        "Shapes-world settings of this stage's rows, merged over the run's dataset_args.world (e.g. {families: "
        "[attribute, superlative, superlative, affordance]} draws superlatives 2 in 4); {} = the run's world.",
    )
    samples: int | None = _f(None, "Rows to draw at least (None = steps x batch_size).")

    def validate(self, cfg) -> None:
        """``UserError`` for settings that cannot work, or a run that is not on the shapes world."""
        if self.steps < 1 or self.batch_size < 1 or self.warmup_steps < 0:
            raise UserError("shapes stage: steps and batch_size must be >= 1, warmup_steps >= 0")
        if self.cosine_steps is not None and self.cosine_steps < self.steps:
            raise UserError(f"shapes stage: cosine_steps ({self.cosine_steps}) must be >= steps ({self.steps})")
        if self.samples is not None and self.samples < 1:
            raise UserError(f"shapes stage: samples must be >= 1 or null, got {self.samples}")
        if cfg.dataset != "synthetic" or cfg.reward_kind != "segzero":
            raise UserError("the shapes stages need dataset: synthetic and reward_kind: segzero")
        self.world_and_families(cfg)

    def world_and_families(self, cfg):
        """``(ShapesConfig, families)`` of the stage's rows at the run's frame."""
        from segzero.shapes.world import world_from_spec

        try:
            return world_from_spec({**(cfg.dataset_args.get("world") or {}), **self.world}, size=cfg.frame)
        except (TypeError, ValueError) as err:
            raise UserError(f"bad shapes world for the stage's rows: {err}") from err

    def _rows(self, cfg, *, choice: str, listing: str = "left_to_right", no_target: float = 0.0):
        """``ShapesRows`` enough for the whole cosine (``cosine_steps or steps``) x ``batch_size``."""
        from segzero.shapes.warmup import ShapesRows

        config, families = self.world_and_families(cfg)
        size = max((self.cosine_steps or self.steps) * self.batch_size, self.samples or 0)
        seed = int(cfg.dataset_args.get("seed", 0))
        return ShapesRows(config, families, seed=seed, size=size, choice=choice, listing=listing, no_target=no_target)


@dataclass(frozen=True)
class PerceptionWarmupConfig(ShapesStageConfig):
    """The ``perception_warmup`` stage: the defaults of ``recipes/shapes_tiny.yaml``."""

    def stage_rows(self, cfg):
        """The stage's rows: random picks, listed left to right."""
        return self._rows(cfg, choice="random")


@dataclass(frozen=True)
class AnswerSFTConfig(ShapesStageConfig):
    """The ``answer_sft`` stage."""

    learning_rate: float = _f(5e-4, "Peak AdamW learning rate (linear warm-up, then cosine).")
    warmup_steps: int = _f(10, "Linear learning-rate warm-up steps before the cosine decay.")
    decision_weight: float = _f(
        1.0,
        "Loss weight of the tokens from the decision on (a ranking where there is one, else 'The query means', "
        "then the answer), relative to the listing's (1 = the plain mean over the completion).",
    )
    listing: str = _f(
        "left_to_right",
        f"How a target states its decision, one of {LISTINGS}: 'ranked' = a "
        "superlative ranks its candidates in a sentence right before the decision.",
    )
    no_target: float = _f(
        0.0,
        "The share of rows whose query means no shape of the scene ('the red circle' where there is none); their "
        "target decides 'The query means nothing.' and answers [], which segzero eval scores as GRES's N-acc.",
    )

    def validate(self, cfg) -> None:
        super().validate(cfg)
        if self.listing not in LISTINGS:
            raise UserError(f"answer_sft: listing must be one of {LISTINGS}, got {self.listing!r}")
        if not 0.0 <= self.no_target < 1.0:
            raise UserError(f"answer_sft: no_target must be in [0, 1), got {self.no_target!r}")
        if not self.decision_weight > 0:
            raise UserError(f"answer_sft: decision_weight must be > 0, got {self.decision_weight!r}")

    def stage_rows(self, cfg):
        """The stage's rows: gt picks, stated as ``listing``, ``no_target`` of them meaning nothing."""
        return self._rows(cfg, choice="gt", listing=self.listing, no_target=self.no_target)


def _run_perception(run):
    from segzero.shapes.warmup import train_supervised

    return train_supervised(run, PERCEPTION_WARMUP, run.config.stage_rows(run.cfg))


def _run_answers(run):
    from segzero.shapes.warmup import train_supervised

    return train_supervised(
        run, ANSWER_SFT, run.config.stage_rows(run.cfg), decision_weight=run.config.decision_weight
    )


PERCEPTION_WARMUP = StageKind(
    "perception_warmup",
    "warmup",
    PerceptionWarmupConfig,
    False,
    _run_perception,
    "list every shape with its box, points and area, then one AT RANDOM copied into the answer (no answer is "
    "taught) -> OUTPUT_DIR/warmup",
)
ANSWER_SFT = StageKind(
    "answer_sft",
    "answer_sft",
    AnswerSFTConfig,
    True,
    _run_answers,
    "the same target naming the shape the query means (supervised gt answers) -> OUTPUT_DIR/answer_sft",
)
