"""Configs written before ``stages``: the flat ``sft_*`` / ``synthetic_*`` / ``vllm_*`` layout, translated.

A recipe, an override list or a run's ``config.yaml`` (``--resume`` compares against it) may still use the
flat fields of earlier versions. ``translate`` maps them onto today's fields, so such a config trains exactly as
before, and logs one line saying so:

- ``shapes_model`` -> ``model_args``; ``synthetic_samples`` / ``synthetic_seed`` / ``synthetic_world`` ->
  ``dataset_args`` ``samples`` / ``seed`` / ``world``; ``vllm_<x>`` -> ``vllm.<x>``; ``reward_segmenter`` /
  ``reward_device`` -> ``mask_reward.segmenter`` / ``.device``;
- the warm-up fields -> ``stages``: ``sft_steps`` with ``sft_target: answer`` is a ``format_sft`` stage; with
  ``sft_target: perception`` a ``perception_warmup`` stage (``sft_choice: random``) or an ``answer_sft`` stage
  (``sft_choice: gt``); ``sft_answer_steps`` adds an ``answer_sft`` stage; ``grpo`` follows unless ``sft_only``.

Options removed since (each was measured and recorded in ``docs/shapes_recipe.md`` and
``benchmarks/shapes_grounding.md``, and none helped) are refused in one line: ``sft_compare``, ``sft_winner``,
decision drills (``sft_drill_fraction``, ``sft_warmup_drills``), ``sft_warmup_gt_families``,
``sft_answer_loss: decision`` and ``sft_listing`` values other than ``left_to_right`` and ``ranked``. A mapping
that mixes flat warm-up fields with ``stages`` is refused too (say the stage fields as
``stages.KIND.FIELD``).

>>> translate({"sft_steps": 5, "sft_target": "perception", "synthetic_seed": 3}, quiet=True)
{'dataset_args': {'seed': 3}, 'stages': [{'kind': 'perception_warmup', 'steps': 5, 'learning_rate': 0.001, \
'batch_size': 16, 'warmup_steps': 10}, 'grpo']}
"""

from __future__ import annotations

import logging
from typing import Any

from segzero.errors import UserError

logger = logging.getLogger("segzero.train")

RENAMED: dict[str, tuple[str, str | None]] = {
    "shapes_model": ("model_args", None),
    "synthetic_samples": ("dataset_args", "samples"),
    "synthetic_seed": ("dataset_args", "seed"),
    "synthetic_world": ("dataset_args", "world"),
    "vllm_mode": ("vllm", "mode"),
    "vllm_server_base_url": ("vllm", "server_base_url"),
    "vllm_gpu_memory_utilization": ("vllm", "gpu_memory_utilization"),
    "vllm_tensor_parallel_size": ("vllm", "tensor_parallel_size"),
    "reward_segmenter": ("mask_reward", "segmenter"),
    "reward_device": ("mask_reward", "device"),
}
"""Flat field -> (today's field, its key inside it; None = the whole field)."""
# the warm-up fields of that layout and their defaults then
WARMUP_DEFAULTS: dict[str, Any] = {
    "sft_steps": 0,
    "sft_learning_rate": 1e-3,
    "sft_batch_size": 16,
    "sft_think": "I look for {query}.",
    "sft_world": {},
    "sft_samples": None,
    "sft_target": "answer",
    "sft_choice": "random",
    "sft_listing": "left_to_right",
    "sft_no_target": 0.0,
    "sft_warmup_steps": 10,
    "sft_cosine_steps": None,
    "sft_answer_steps": 0,
    "sft_answer_learning_rate": 5e-4,
    "sft_answer_loss": "all",
    "sft_answer_decision_weight": 1.0,
    "sft_only": False,
}
REMOVED: dict[str, Any] = {
    "sft_compare": False,
    "sft_winner": False,
    "sft_drill_fraction": 0.0,
    "sft_warmup_drills": 0.0,
    "sft_warmup_gt_families": [],
}
"""Removed options -> the value that means "off" (a config saying exactly that still translates)."""


def _stages(old: dict[str, Any]) -> list:
    """The ``stages`` list of the flat warm-up fields ``old`` (``WARMUP_DEFAULTS`` filled in)."""
    o = {**WARMUP_DEFAULTS, **old}
    shapes = {"batch_size": o["sft_batch_size"]}
    if o["sft_world"]:
        shapes["world"] = o["sft_world"]
    if o["sft_samples"] is not None:
        shapes["samples"] = o["sft_samples"]
    stages: list = []
    if o["sft_steps"] > 0 and o["sft_target"] == "answer" and (o["sft_world"] or o["sft_samples"] is not None):
        raise UserError(
            "sft_world / sft_samples of the format warm-up were removed: format_sft trains on the run's rows"
        )
    if o["sft_steps"] > 0 and o["sft_target"] == "answer":
        stages.append(
            {
                "kind": "format_sft",
                "steps": o["sft_steps"],
                "learning_rate": o["sft_learning_rate"],
                "batch_size": o["sft_batch_size"],
                "think": o["sft_think"],
            }
        )
    elif o["sft_steps"] > 0:
        first = {
            "kind": "perception_warmup" if o["sft_choice"] == "random" else "answer_sft",
            "steps": o["sft_steps"],
            "learning_rate": o["sft_learning_rate"],
            **shapes,
            "warmup_steps": o["sft_warmup_steps"],
        }
        if o["sft_cosine_steps"] is not None:
            first["cosine_steps"] = o["sft_cosine_steps"]
        if o["sft_choice"] == "gt":
            first.update(listing=o["sft_listing"], no_target=o["sft_no_target"])
        stages.append(first)
    if o["sft_answer_steps"] > 0:
        if any(s["kind"] == "answer_sft" for s in stages):
            raise UserError("sft_choice: gt with sft_answer_steps > 0 asks for two gt-answer stages: use stages")
        stages.append(
            {
                "kind": "answer_sft",
                "steps": o["sft_answer_steps"],
                "learning_rate": o["sft_answer_learning_rate"],
                **shapes,
                "warmup_steps": min(10, o["sft_warmup_steps"]),
                "decision_weight": o["sft_answer_decision_weight"],
                "listing": o["sft_listing"],
                "no_target": o["sft_no_target"],
            }
        )
    if not o["sft_only"]:
        stages.append("grpo")
    return stages


def translate(data: dict[str, Any], *, source: str = "config", quiet: bool = False) -> dict[str, Any]:
    """``data`` with the flat fields of the earlier layout mapped onto today's (module docstring); unchanged when
    it has none. ``UserError`` for a removed option that is on, or flat warm-up fields beside ``stages``."""
    flat = [k for k in data if k in RENAMED or k in WARMUP_DEFAULTS or k in REMOVED]
    if not flat:
        return data
    out = {k: v for k, v in data.items() if k not in flat}
    for key in flat:
        if key in REMOVED:
            if data[key] != REMOVED[key]:
                raise UserError(
                    f"{source}: {key} was removed (it was measured and did not help: docs/shapes_recipe.md)"
                )
            continue
        if key in RENAMED:
            new, sub = RENAMED[key]
            if sub is None:
                out[new] = data[key]
            else:
                out.setdefault(new, {})
                out[new] = {**out[new], sub: data[key]}
    warm = {k: data[k] for k in flat if k in WARMUP_DEFAULTS}
    if warm:
        if "stages" in data:
            raise UserError(
                f"{source}: {sorted(warm)} are warm-up fields of the layout before stages; with "
                "`stages`, set a stage field as stages.KIND.FIELD (e.g. stages.perception_warmup.steps)"
            )
        if warm.get("sft_answer_loss", "all") != "all":
            raise UserError(
                f"{source}: sft_answer_loss 'decision' was removed (the listing drifted: docs/shapes_recipe.md)"
            )
        if warm.get("sft_listing", "left_to_right") not in ("left_to_right", "ranked"):
            raise UserError(
                f"{source}: sft_listing {warm['sft_listing']!r} was removed (it was measured and did "
                "not help: docs/shapes_recipe.md)"
            )
        out["stages"] = _stages(warm)
    if not quiet:
        logger.warning("%s: fields of the layout before stages translated: %s", source, ", ".join(sorted(flat)))
    return out
