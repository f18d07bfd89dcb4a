"""Training checkpoints that are whole or absent, and the choice of the one ``--resume`` continues from.

Writing: ``AtomicCheckpoints`` is a mixin for a ``transformers.Trainer`` subclass (transformers 5 has no atomic save
of its own). Its ``_save_checkpoint`` lets the Trainer write everything (weights, optimizer, scheduler, RNG,
trainer state) into ``OUTPUT_DIR/tmp-checkpoint-N/checkpoint-N`` and renames that folder to
``OUTPUT_DIR/checkpoint-N`` once all processes are done, then applies ``save_total_limit``. A kill during a save
leaves only ``tmp-checkpoint-N``, which no resume reads and the next save of step N (or a resume) deletes. The files
are not fsynced: this guards against a killed process, not against a power cut.

Reading: ``checkpoint_problems(path)`` names the parts a resumable checkpoint lacks (trainer state, model weights,
optimizer state, scheduler state; DeepSpeed and FSDP layouts included), which also catches partial folders written
by other tools or older versions. ``pick_checkpoint(output_dir)`` returns the newest complete one and the newer
incomplete ones it skipped; ``set_aside`` renames those to ``incomplete-checkpoint-N`` so that neither the Trainer's
checkpoint rotation nor a later resume mistakes them for the newest.

Loading: ``ResumeWithKeyConversion`` is a second Trainer mixin. transformers 5 saves some models (Qwen2.5-VL among
them) under their hub key names (``visual.*``, ``model.layers.*``) but its Trainer resumes with a plain non-strict
``load_state_dict`` that matches none of them, so a resumed run would silently go on from the weights it started
with. The mixin loads a full-weights checkpoint through ``from_pretrained`` (the model's key conversions applied)
and copies it in strictly; DeepSpeed, FSDP and adapter checkpoints keep the Trainer's own loading.

Usage::

    from trl import GRPOTrainer
    from segzero.train.checkpoints import AtomicCheckpoints, ResumeWithKeyConversion, pick_checkpoint
    class Trainer(AtomicCheckpoints, ResumeWithKeyConversion, GRPOTrainer): ...
    choice = pick_checkpoint("runs/x")     # choice.path (None: none complete), choice.skipped, choice.describe()
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# A save in progress: OUTPUT_DIR/tmp-checkpoint-N/checkpoint-N (renamed to OUTPUT_DIR/checkpoint-N when whole).
STAGING_PREFIX = "tmp-"
# An incomplete checkpoint set aside by a resume: OUTPUT_DIR/incomplete-checkpoint-N.
SET_ASIDE_PREFIX = "incomplete-"

TRAINER_STATE = "trainer_state.json"
# Files that hold a checkpoint's model weights: the full model (one file or a sharded index), or a LoRA adapter.
FULL_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
ADAPTER_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
WEIGHT_FILES = FULL_WEIGHT_FILES + ADAPTER_WEIGHT_FILES
OPTIMIZER_FILES = ("optimizer.pt", "optimizer.bin")
SCHEDULER_FILE = "scheduler.pt"
# Folders of sharded layouts: DeepSpeed (weights, optimizer and scheduler) and FSDP (weights; optimizer).
DEEPSPEED_PREFIX = "global_step"
FSDP_WEIGHTS_PREFIX = "pytorch_model_fsdp"
FSDP_OPTIMIZER_PREFIX = "optimizer_"


def checkpoint_step(path: Path) -> int | None:
    """N of a ``checkpoint-N`` folder name (None for any other name)."""
    m = CHECKPOINT_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def checkpoint_problems(path: str | Path, *, optimizer: bool = True) -> list[str]:
    """The parts a resumable checkpoint needs that ``path`` lacks ([] = complete): ``trainer state`` (a readable
    ``trainer_state.json`` with ``global_step``), ``model weights``, and unless ``optimizer=False`` (checkpoints saved
    with ``save_only_model``) ``optimizer state`` and ``scheduler state``."""
    path = Path(path)
    names = {p.name for p in path.iterdir()} if path.is_dir() else set()
    problems = []
    try:
        state = json.loads((path / TRAINER_STATE).read_text())
        if not isinstance(state, dict) or not isinstance(state.get("global_step"), int):
            problems.append("trainer state")
    except (OSError, ValueError):
        problems.append("trainer state")
    deepspeed = any(n.startswith(DEEPSPEED_PREFIX) and (path / n).is_dir() for n in names)
    if not (names & set(WEIGHT_FILES) or deepspeed or any(n.startswith(FSDP_WEIGHTS_PREFIX) for n in names)):
        problems.append("model weights")
    if optimizer:
        fsdp_optimizer = any(n.startswith(FSDP_OPTIMIZER_PREFIX) and (path / n).is_dir() for n in names)
        if not (names & set(OPTIMIZER_FILES) or deepspeed or fsdp_optimizer):
            problems.append("optimizer state")
        if SCHEDULER_FILE not in names and not deepspeed:
            problems.append("scheduler state")
    return problems


@dataclass
class CheckpointChoice:
    """What ``pick_checkpoint`` found: ``path`` (None when no checkpoint is complete), ``skipped`` (newer incomplete
    checkpoints with their missing parts), ``staging`` (unfinished saves ``tmp-checkpoint-N``)."""

    path: Path | None
    skipped: list[tuple[Path, list[str]]] = field(default_factory=list)
    staging: list[Path] = field(default_factory=list)

    def describe(self, *, none: str = "no complete checkpoint-N") -> str:
        """One line: the checkpoint resumed from (or ``none`` when there is none) and what was passed over."""
        head = f"resuming from {self.path.name}" if self.path else none
        notes = [f"skipped incomplete {p.name} (no {', '.join(missing)})" for p, missing in self.skipped]
        notes += [f"unfinished save {p.name}" for p in self.staging]
        return head + (": " + "; ".join(notes) if notes else "")


def pick_checkpoint(output_dir: str | Path, *, optimizer: bool = True) -> CheckpointChoice:
    """The newest complete ``checkpoint-N`` of ``output_dir`` (``checkpoint_problems`` empty) and the newer
    incomplete ones passed over; ``CheckpointChoice(None)`` when the folder has no checkpoint."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return CheckpointChoice(None)
    entries = [p for p in output_dir.iterdir() if p.is_dir()]
    found = sorted((p for p in entries if checkpoint_step(p) is not None), key=checkpoint_step, reverse=True)
    staging = sorted(p for p in entries if p.name.startswith(STAGING_PREFIX + "checkpoint-"))
    skipped = []
    for path in found:
        missing = checkpoint_problems(path, optimizer=optimizer)
        if not missing:
            return CheckpointChoice(path, skipped, staging)
        skipped.append((path, missing))
    return CheckpointChoice(None, skipped, staging)


def set_aside(choice: CheckpointChoice) -> None:
    """Rename the skipped incomplete checkpoints to ``incomplete-checkpoint-N`` (kept for inspection, out of the
    Trainer's rotation and of later resumes) and delete unfinished saves ``tmp-checkpoint-N``."""
    for path, _ in choice.skipped:
        target = path.with_name(SET_ASIDE_PREFIX + path.name)
        if target.exists():
            shutil.rmtree(target)
        os.replace(path, target)
    for path in choice.staging:
        shutil.rmtree(path, ignore_errors=True)


class AtomicCheckpoints:
    """Trainer mixin (put it before the Trainer class): each checkpoint is written into ``tmp-checkpoint-N`` and
    renamed to ``checkpoint-N`` when whole; ``save_total_limit`` is applied after the rename."""

    _staging_dir: str | None = None

    def _get_output_dir(self, trial) -> str:
        if self._staging_dir is not None:  # during a save every path the Trainer builds lies in the staging folder
            return self._staging_dir
        return super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        run_dir = Path(super()._get_output_dir(trial))
        name = f"checkpoint-{self.state.global_step}"
        staging = run_dir / f"{STAGING_PREFIX}{name}"
        main = self.args.should_save
        if main and staging.exists():  # left by a save that was killed
            shutil.rmtree(staging)
        self.accelerator.wait_for_everyone()
        self._staging_dir = str(staging)
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_dir = None
        self.accelerator.wait_for_everyone()  # every process has written its part
        if main:
            final = run_dir / name
            if final.exists():  # an older save of the same step (e.g. before a resume from an earlier checkpoint)
                shutil.rmtree(final)
            os.replace(staging / name, final)
            shutil.rmtree(staging, ignore_errors=True)
            from segzero.train.compat import rotate_checkpoints

            rotate_checkpoints(self, str(run_dir))
        self.accelerator.wait_for_everyone()


class ResumeWithKeyConversion:
    """Trainer mixin: resuming from a full-weights checkpoint (``FULL_WEIGHT_FILES``) loads it with
    ``from_pretrained`` of the model's class in the model's dtype (key conversions applied) and copies the weights
    in with a strict ``load_state_dict`` (a mismatch raises instead of passing silently)."""

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None) -> None:
        path = Path(resume_from_checkpoint)
        target = self.model if model is None else model
        full = any((path / name).is_file() for name in FULL_WEIGHT_FILES)
        own_loading = self.is_deepspeed_enabled or self.is_fsdp_enabled or target is not self.model
        if not full or own_loading or not hasattr(type(target), "from_pretrained"):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        loaded = type(target).from_pretrained(str(path), dtype=next(target.parameters()).dtype)
        target.load_state_dict(loaded.state_dict(), strict=True)
        del loaded
        return None
