"""How a reasoner was trained: the ordered stage names a folder's ``segzero.json`` records under ``training``.

Every folder ``segzero train`` writes (a warm-up's, ``final``) records the stages behind it, its base model's
first, then its own::

    "training": {"stages": ["perception_warmup", "grpo"], "supervised_answers": false}

``supervised_answers`` is true when any stage was taught answers from the ground truth (the Seg-Zero recipe
has none: perception only, then rewards alone). A base model without a record (a hub checkpoint, a folder built
from a config) contributes no stages.

>>> training_record([], "perception_warmup", "grpo")
{'stages': ['perception_warmup', 'grpo'], 'supervised_answers': False}
>>> training_record(["perception_warmup"], "answer_sft")["supervised_answers"]
True
"""

from __future__ import annotations

from pathlib import Path

from segzero.errors import UserError

STAGES: dict[str, str] = {
    "perception_warmup": "supervised: list every shape with its box, then a random pick (no answer taught)",
    "answer_sft": "supervised on gt answers (the reasoning names the shape the query means)",
    "format_sft": "supervised on gt answers without reasoning (a fixed think template; TRL SFTTrainer)",
    "grpo": "GRPO on the reward terms alone (TRL GRPOTrainer)",
}
"""Stage name -> what it teaches. The vocabulary of ``training.stages``."""
SUPERVISED_ANSWERS: frozenset[str] = frozenset({"answer_sft", "format_sft"})
"""The stages that supervise answers from the ground truth."""


def training_record(base_stages: list[str], *stages: str) -> dict:
    """The ``training`` entry of a folder trained by ``stages`` (in order) from a base trained by ``base_stages``."""
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown training stage(s) {unknown}; stages are {list(STAGES)}")
    names = [*base_stages, *stages]
    return {"stages": names, "supervised_answers": any(s in SUPERVISED_ANSWERS for s in names)}


def recorded_stages(model: str | Path) -> list[str]:
    """The stages a reasoner folder's ``segzero.json`` records (``[]`` for none, hub ids and built models)."""
    from segzero.models.reasoner import read_model_info

    training = read_model_info(model).get("training") or {}
    stages = training.get("stages", []) if isinstance(training, dict) else None
    if not isinstance(stages, list) or not all(isinstance(s, str) for s in stages):
        raise UserError(f"{model}: segzero.json 'training.stages' must be a list of stage names, got {stages!r}")
    return stages
