"""Named plug-ins of ``segzero train``: model builders, training-row sources and stages, found by entry point.

A recipe names them (``model: shapes``, ``dataset: synthetic``, ``stages: [perception_warmup, grpo]``); the
package that provides one registers it in its ``pyproject.toml``, so ``segzero.train`` never imports it::

    [project.entry-points."segzero.models"]      # name -> build(folder, *, seed, frame, **model_args) -> Path
    shapes = "segzero.shapes.model:build_for_training"
    [project.entry-points."segzero.datasets"]    # name -> rows(*, frame, **dataset_args) -> datasets.Dataset
    synthetic = "segzero.shapes.data:training_rows"
    [project.entry-points."segzero.stages"]      # name -> a segzero.train.stages.StageKind
    perception_warmup = "segzero.shapes.stages:PERCEPTION_WARMUP"

A third-party package registers its own the same way (after ``pip install``, its names work in recipes).

    from segzero.train.registry import lookup, names
    names("stages")          # ['answer_sft', 'format_sft', 'perception_warmup', ...]
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from segzero.errors import UserError

GROUPS: dict[str, str] = {"models": "segzero.models", "datasets": "segzero.datasets", "stages": "segzero.stages"}
"""Kind of plug-in -> its entry-point group."""


def names(kind: str) -> list[str]:
    """The registered names of plug-in ``kind`` (``GROUPS``), sorted."""
    return sorted({ep.name for ep in entry_points(group=GROUPS[kind])})


def is_registered(kind: str, name: str) -> bool:
    return name in names(kind)


def lookup(kind: str, name: str) -> Any:
    """The object registered as ``name`` for ``kind``; ``UserError`` naming the registered ones when there is none
    or when it cannot be imported."""
    found = [ep for ep in entry_points(group=GROUPS[kind]) if ep.name == name]
    if not found:
        known = ", ".join(names(kind)) or "none (is segzero installed with pip?)"
        raise UserError(f"no {kind[:-1]} named {name!r} is registered; registered: {known}")
    try:
        return found[0].load()
    except (ImportError, AttributeError) as err:
        raise UserError(f"the {kind[:-1]} {name!r} ({found[0].value}) cannot be loaded: {err}") from err


def check_arguments(kind: str, name: str, what: str, *args: Any, **kwargs: Any) -> Any:
    """The plug-in ``name`` of ``kind``, after checking that it takes ``args`` / ``kwargs`` (``what`` names them
    in the one-line ``UserError`` when it does not, e.g. ``"model_args"``)."""
    import inspect

    plugin = lookup(kind, name)
    try:
        inspect.signature(plugin).bind(*args, **kwargs)
    except TypeError as err:
        raise UserError(f"{kind[:-1]} {name!r}: bad {what}: {err}") from None
    return plugin
