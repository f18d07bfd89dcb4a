"""verl adapter: segzero's rewards as a verl custom reward function, and datasets in verl's VLM parquet layout.

For users who already train with verl (Ray, FSDP/Megatron, vLLM/SGLang rollouts) at cluster scale. verl is not
imported here (nor needed to test this module).

- ``compute_score(data_source, solution_str, ground_truth, extra_info=None)``: verl's custom reward signature
  (``custom_reward_function.path=<this file> custom_reward_function.name=compute_score``). Returns a dict:
  ``score`` (the reward: sum of the reward terms, [0, 5] single-object / [0, 7] multi-object) plus every term,
  which verl logs as reward extra info. The reward kind comes from ``extra_info["reward_kind"]`` when given,
  else from ``data_source`` (``"segzero"`` / ``"visionreasoner"`` or a released hub id), else ``"segzero"``.
- ``export_verl(dataset, out_path, *, kind="segzero")``: writes the parquet layout of verl's Qwen2.5-VL GRPO
  example (``examples/data_preprocess/geo3k.py``): ``data_source``, ``prompt`` (one user message whose content is
  ``IMAGE_PREFIX[prompt kind] + the exact released prompt``: ``"<image>"`` before the Seg-Zero prompt and
  ``"<image>\n"`` before the VisionReasoner one, as each family's training dataset writes it; verl splits it at
  ``<image>``), ``images`` (one image, frame x frame),
  ``ability``, ``reward_model`` (``{"style": "rule", "ground_truth": gt}``), ``extra_info`` (split, index, id,
  question, reward_kind). Rows go through the same preparation and bad-row rule as ``segzero train``.
- ``export_verl_file(data, out)``: the same for a ``segzero data build`` folder (``segzero data export --format
  verl``), the kind from its layout and the frame from its ``stats.json``.

Launch command: docs/verl.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segzero.answer import KINDS
from segzero.errors import UserError
from segzero.geometry import DEFAULT_FRAME

# What comes before the prompt text in the user message, per prompt kind (the families' training datasets).
IMAGE_PREFIX = {"segzero": "<image>", "visionreasoner": "<image>\n", "compact": "<image>", "qwen3vl": "<image>\n"}


def reward_kind_of(data_source: str | None, extra_info: dict | None = None) -> str:
    """The reward kind of a verl row (see the module docstring)."""
    from segzero.train.data import RELEASED_SETS

    if extra_info and extra_info.get("reward_kind") in KINDS:
        return str(extra_info["reward_kind"])
    if data_source in KINDS:
        return str(data_source)
    for kind, hub_id in RELEASED_SETS.items():
        if data_source == hub_id:
            return kind
    return "segzero"


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None) -> dict:
    """verl custom reward: ``{"score": total, <term>: value, ...}`` from ``segzero.rewards.score``."""
    from segzero import rewards

    kind = reward_kind_of(data_source, extra_info)
    terms = rewards.score(kind, solution_str, ground_truth)
    out = {name: float(v) for name, v in terms.items() if name != "total"}
    out["score"] = float(terms["total"])
    return out


def _verl_row(row: dict, idx: int, *, kind: str, prompt_kind: str, data_source: str, split: str) -> dict:
    from segzero.prompts import format_prompt

    return {
        "data_source": data_source,
        "prompt": [
            {"role": "user", "content": IMAGE_PREFIX[prompt_kind] + format_prompt(row["problem"], prompt_kind)}
        ],
        "images": [row["image"]],
        "ability": "segmentation",
        "reward_model": {"style": "rule", "ground_truth": row["solution"]},
        "extra_info": {
            "split": split,
            "index": idx,
            "id": str(row["id"]),
            "question": row["problem"],
            "reward_kind": kind,
        },
    }


def export_verl(
    dataset,
    out_path: str | Path,
    *,
    kind: str = "segzero",
    prompt: str | None = None,
    frame: int = DEFAULT_FRAME,
    split: str = "train",
    data_source: str | None = None,
    tolerance: float = 1.0,
) -> dict:
    """Write ``dataset`` (released layout: ``id, problem, solution, image, ...``) as a verl parquet file.

    ``dataset``: a ``datasets.Dataset``, a list of row dicts, or a source string ``segzero train`` reads (hub
    id, folder, parquet, ``"synthetic"``). ``kind`` picks the gt layout and rewards, ``prompt`` the template
    (default: same as ``kind``), ``frame`` the model frame images and gt are brought to. Returns
    ``{"path", "rows", "dropped": [(id, reason), ...]}``.
    """
    import datasets

    from segzero.train.data import load_raw_dataset, prepare_dataset

    if kind not in KINDS:
        raise UserError(f"kind must be one of {KINDS}, got {kind!r}")
    if isinstance(dataset, str):
        dataset = load_raw_dataset(dataset, split=split, frame=frame)
    elif isinstance(dataset, list):
        dataset = datasets.Dataset.from_list(dataset)
    prepared, dropped = prepare_dataset(
        dataset, kind=kind, prompt_kind=prompt or kind, frame=frame, tolerance=tolerance
    )
    if len(prepared) == 0:
        raise UserError(f"nothing to export: all {len(dropped)} rows were dropped by the bad-row rule")
    source = data_source or kind
    prepared = prepared.remove_columns("prompt")  # else map would cast the new string content to the old type
    verl_ds = prepared.map(
        _verl_row,
        with_indices=True,
        fn_kwargs={"kind": kind, "prompt_kind": prompt or kind, "data_source": source, "split": split},
        remove_columns=prepared.column_names,
        desc="verl layout",
    )
    verl_ds = verl_ds.cast_column("images", datasets.Sequence(datasets.Image()))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    verl_ds.to_parquet(str(out_path))
    return {"path": out_path, "rows": len(verl_ds), "dropped": dropped}


def export_verl_file(data: str | Path, out: str | Path, *, kind: str | None = None, split: str = "train"):
    """Export a ``segzero data build`` folder for veRL/EasyR1 with ``export_verl``.

    ``kind`` defaults from the layout: ``"segzero"`` for single-object rows, ``"visionreasoner"`` for multi.
    The frame is the one recorded in the build's ``stats.json`` (840 when absent). Returns what ``export_verl``
    returns (``{"path", "rows", "dropped"}``).
    """
    from segzero.data.export import built_frame, detect_layout, load_built

    ds = load_built(data, split=split)
    if kind is None:
        kind = "visionreasoner" if detect_layout(ds) == "multi" else "segzero"
    frame = built_frame(data) or (DEFAULT_FRAME, DEFAULT_FRAME)
    if frame[0] != frame[1]:
        raise UserError(f"{data} was built for a {frame[0]}x{frame[1]} frame; the veRL export needs a square one")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return export_verl(ds, out, kind=kind, frame=frame[0], split=split)
