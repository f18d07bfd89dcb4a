"""Recipes as mappings: reading a YAML recipe (with its ``base`` chain), ``--set key=value`` overrides, merging.

``segzero.train.config.TrainConfig.from_yaml`` builds on these; they know nothing of the fields themselves::

    from segzero.train.recipes import merge, parse_overrides, read_recipe
    data = merge(read_recipe(Path("recipes/shapes_quick.yaml")), parse_overrides(["stages.answer_sft.steps=5"]))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segzero.errors import UserError


def merge(data: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``update``'s fields; a mapping field is updated entry by entry, not replaced; ``stages`` given
    as a mapping updates the stages of the kinds it names (``_merge_stages``)."""
    out = dict(data)
    for key, value in update.items():
        if key == "stages" and isinstance(value, dict):
            out[key] = _merge_stages(out.get(key, ["grpo"]), value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _merge_stages(stages: list, update: dict[str, Any]) -> list:
    """``stages`` with the fields ``update`` gives by kind: ``{"perception_warmup": {"steps": 2}}`` or, as
    ``--set stages.perception_warmup.steps=2`` reads, ``{"perception_warmup.steps": 2}``.

    >>> _merge_stages(["perception_warmup", "grpo"], {"perception_warmup.steps": 2})
    [{'kind': 'perception_warmup', 'steps': 2}, 'grpo']
    """
    if not isinstance(stages, list):
        raise UserError(f"stages must be a list, got {stages!r}")
    by_kind: dict[str, dict] = {}
    for key, value in update.items():
        kind, _, name = key.partition(".")
        fields = {name: value} if name else value
        if not isinstance(fields, dict):
            raise UserError(f"stages.{key}: give a field (stages.{kind}.FIELD=V) or a mapping of fields")
        by_kind.setdefault(kind, {}).update(fields)
    out = [dict(s) if isinstance(s, dict) else {"kind": s} for s in stages]
    kinds = [s.get("kind") for s in out]
    for kind, fields in by_kind.items():
        if kind not in kinds:
            raise UserError(f"stages.{kind}: the run has no {kind!r} stage (its stages: {kinds})")
        out[kinds.index(kind)].update(fields)
    return [s if set(s) != {"kind"} else s["kind"] for s in out]


def read_recipe(path: Path, *, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The fields of a YAML recipe, its ``base`` recipe (if any) read first; raises ``UserError`` on a bad file."""
    import yaml

    if not path.is_file():
        raise UserError(f"training config not found: {path}")
    if path.resolve() in _seen:
        raise UserError(f"{path}: recipe bases form a cycle")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from err
    if loaded is not None and not isinstance(loaded, dict):
        raise UserError(f"{path}: a training config must be a YAML mapping of field: value")
    data = dict(loaded or {})
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise UserError(f"{path}: base must be a recipe file name, got {base!r}")
    return merge(read_recipe(path.parent / base, _seen=(*_seen, path.resolve())), data)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b=[x, y]", "c=null"]`` -> ``{"a": 1, "b": ["x", "y"], "c": None}`` (values read as YAML).

    Dotted keys set entries of dict fields: ``reward_weights.iou=2`` or ``grpo_args.top_k=50``.
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"override must look like key=value, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise UserError(f"override {item!r}: value is not valid YAML") from err
        if "." in key:
            head, sub = key.split(".", 1)
            if not isinstance(out.setdefault(head, {}), dict):
                raise UserError(f"override {item!r}: {head} was already set to a non-mapping value")
            out[head][sub] = value
        else:
            out[key] = value
    return out
