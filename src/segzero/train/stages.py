"""Training stages: what ``segzero train`` runs, in order, and how a folder records the stages behind it.

``train()`` builds (or loads) the model, then runs ``cfg.stages`` in order, each starting from the previous one's
folder. ``grpo`` is the Seg-Zero stage (TRL ``GRPOTrainer`` with the top-level GRPO fields; written as
checkpoints and ``OUTPUT_DIR/final``); the others are registered ``StageKind`` objects (entry-point group
``segzero.stages``, ``segzero.train.registry``), each with a small config dataclass of its own::

    stages:
      - {kind: perception_warmup, steps: 5000}     # a StageKind's fields (its config dataclass)
      - grpo                                       # a bare name: the stage with its defaults

``--set stages.perception_warmup.steps=200`` sets one field of the stage of that kind.

Every folder ``segzero train`` writes (a stage's folder, ``final``) records the stages behind it in its
``segzero.json``, its base model's first::

    "training": {"stages": ["perception_warmup", "grpo"], "supervised_answers": false}

``supervised_answers`` is true when any stage was taught answers from the ground truth (the Seg-Zero recipe has
none: at most a perception warm-up, then rewards alone). A base without a record (a hub checkpoint, a model built
from a config) contributes no stages.

>>> training_record({}, GRPO)
{'stages': ['grpo'], 'supervised_answers': False}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segzero.errors import UserError


@dataclass(frozen=True)
class StageRun:
    """What a stage's ``run`` gets: the run's ``TrainConfig`` (``cfg``), the stage's own ``config``, the folder
    it starts from (``model_path``), the run folder (its result goes to ``output_dir / kind.folder``), whether to
    resume its own checkpoints, and ``train_rows()``: the run's prepared training rows (built on first use)."""

    cfg: Any
    config: Any
    model_path: str
    output_dir: Path
    resume: bool
    train_rows: Callable[[], Any]


@dataclass(frozen=True)
class StageKind:
    """A kind of training stage: its ``name`` (in recipes and in ``training.stages``), its result ``folder`` under
    the run folder, its ``config`` dataclass (every field with ``metadata["help"]``; an optional
    ``validate(cfg)`` method raises ``UserError``), whether it teaches answers from the gt
    (``supervised_answers``), and ``run(StageRun) -> Path`` (the saved Hugging Face folder, with ``segzero.json``)."""

    name: str
    folder: str
    config: type | None
    supervised_answers: bool
    run: Callable[[StageRun], Path] | None
    help: str = ""


GRPO = StageKind("grpo", "final", None, False, None, "GRPO on the reward terms (TRL GRPOTrainer), top-level fields")
"""The Seg-Zero stage, run by ``segzero.train.trainer`` itself; it is last when present."""


def stage_kind(name: str) -> StageKind:
    """The kind named ``name``: ``grpo`` or a registered one (``UserError`` listing them when unknown)."""
    if name == GRPO.name:
        return GRPO
    from segzero.train.registry import lookup

    kind = lookup("stages", name)
    if not isinstance(kind, StageKind):
        raise UserError(f"stage {name!r} is registered as {type(kind).__name__}, not a segzero StageKind")
    return kind


def parse_stages(entries: list, cfg: Any = None) -> list[tuple[StageKind, Any]]:
    """``cfg.stages`` entries (names or ``{kind: NAME, field: value, ...}``) -> ``[(kind, config), ...]``;
    ``UserError`` for an unknown kind or field, a repeated kind, ``grpo`` not last, or a config its ``validate``
    refuses (given ``cfg``)."""
    if not isinstance(entries, list) or not entries:
        raise UserError(f"stages must be a non-empty list of stage names or mappings, got {entries!r}")
    out: list[tuple[StageKind, Any]] = []
    for entry in entries:
        fields = dict(entry) if isinstance(entry, dict) else {"kind": entry}
        name = fields.pop("kind", None)
        if not isinstance(name, str):
            raise UserError(f"stages: each entry names its kind ('grpo' or {{kind: NAME, ...}}), got {entry!r}")
        kind = stage_kind(name)
        if kind.config is None:
            if fields:
                raise UserError(f"stage {name!r} takes no fields of its own, got {sorted(fields)}")
            config = None
        else:
            known = {f.name for f in dataclasses.fields(kind.config)}
            unknown = sorted(set(fields) - known)
            if unknown:
                raise UserError(f"stage {name!r}: unknown field(s) {unknown}; its fields are {sorted(known)}")
            try:
                config = kind.config(**fields)
            except (TypeError, ValueError) as err:
                raise UserError(f"stage {name!r}: {err}") from err
            if cfg is not None and hasattr(config, "validate"):
                config.validate(cfg)
        out.append((kind, config))
    kinds = [k.name for k, _ in out]
    if len(set(kinds)) != len(kinds):
        raise UserError(f"stages: each kind may appear once, got {kinds}")
    if GRPO.name in kinds[:-1]:
        raise UserError(f"stages: grpo is the last stage when present, got {kinds}")
    return out


def describe_stage(kind: StageKind) -> str:
    """The help of a stage kind and of each of its fields, for ``segzero train --list-fields``."""
    lines = [f"stage {kind.name}: {kind.help}"]
    for f in dataclasses.fields(kind.config) if kind.config else ():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        lines.append(f"  {f.name} = {default!r}  # {f.metadata.get('help', '')}")
    return "\n".join(lines)


def training_record(base: dict, *stages: StageKind) -> dict:
    """The ``training`` entry of a folder trained by ``stages`` (in order) from a base whose record is ``base``."""
    names = [*base.get("stages", []), *(s.name for s in stages)]
    supervised = bool(base.get("supervised_answers")) or any(s.supervised_answers for s in stages)
    return {"stages": names, "supervised_answers": supervised}


def recorded_training(model: str | Path) -> dict:
    """The ``training`` record of a reasoner folder's ``segzero.json`` (``{}`` for none, hub ids, built models)."""
    from segzero.models.reasoner import read_model_info

    training = read_model_info(model).get("training") or {}
    stages = training.get("stages", []) if isinstance(training, dict) else None
    if not isinstance(stages, list) or not all(isinstance(s, str) for s in stages):
        raise UserError(f"{model}: segzero.json 'training.stages' must be a list of stage names, got {stages!r}")
    return training


def save_stage(run: StageRun, kind: StageKind, trainer, processor, **info) -> Path:
    """Save a supervised stage's model and processor to ``run.output_dir / kind.folder`` with its ``segzero.json``
    (frame, prompt, reward kind, base model, the stage, the ``training`` record, any ``info``); returns the folder."""
    from segzero.models.reasoner import write_model_info

    out = run.output_dir / kind.folder
    trainer.save_model(str(out))
    processor.tokenizer.padding_side = "left"  # generation pads on the left
    processor.save_pretrained(str(out))
    cfg = run.cfg
    write_model_info(
        out,
        frame=cfg.frame,
        prompt=cfg.prompt_kind,
        reward_kind=cfg.reward_kind,
        base_model=cfg.model,
        stage=kind.name,
        training=training_record(recorded_training(run.model_path), kind),
        **info,
    )
    return out
