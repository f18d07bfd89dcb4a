"""Reward plug-ins: a researcher's own reward function, named by ``FILE.py:FUNC`` or ``package.module:FUNC``.

``segzero train --reward my_reward.py:compute_score`` (or the recipe field ``reward_plugins``) adds the function
to the run's rewards, beside the kind's own terms. The function scores one completion::

    def compute_score(completion: str, solution, **columns) -> float | dict[str, float] | None: ...

- ``completion``: the completion text (``<think>..</think><answer>..</answer>``, coordinates in the model frame);
  ``solution``: the row's gt as stored in the dataset; ``columns``: the row's other dataset columns by name
  (e.g. ``problem``, ``id``, ``image_size``). A function without ``**columns`` gets only the columns it names
  (EasyR1's ``compute_score(predict, ground_truth)`` works as it is).
- It returns a float (logged as ``rewards/<FUNC>/mean``), or a dict of named terms (one reward per key, logged as
  ``rewards/<key>/mean``), or ``None`` for "not judged" (TRL leaves it out of the sum and of the mean). Each term
  weighs 1.0 unless ``reward_weights`` names it.

A plug-in is imported and called once on the first training row when the run starts; a missing file or
function, a wrong signature, an exception or a return value of another type stops the run there with one line
(exit 2), not mid-run. Non-finite values and a dict whose keys change after that first call stop it too.

Usage::

    from segzero.train.plugins import load_plugin
    plugin = load_plugin("my_reward.py:compute_score")
    terms = plugin.terms_for(row)           # [(term name, TRL reward function), ...]
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segzero.errors import UserError
from segzero.parsing import text_of

TRL_EXTRAS: frozenset[str] = frozenset(
    {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}
)
"""Keyword arguments TRL passes to reward functions that are not dataset columns."""


def _import(spec: str) -> Callable:
    """The function ``spec`` names (``FILE.py:FUNC`` or ``module.path:FUNC``); ``UserError`` in one line if not."""
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise UserError(f"reward plug-in {spec!r}: write FILE.py:FUNC or package.module:FUNC")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise UserError(f"reward plug-in {spec!r}: no file {where}")
        mod_spec = importlib.util.spec_from_file_location(f"segzero_reward_plugin_{path.stem}", path)
        module = importlib.util.module_from_spec(mod_spec)  # type: ignore[arg-type]
        try:
            mod_spec.loader.exec_module(module)  # type: ignore[union-attr]
        except Exception as err:  # the user's file: any error it raises on import is reported in one line
            raise UserError(f"reward plug-in {spec!r}: importing {where} failed: {type(err).__name__}: {err}") from err
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as err:
            raise UserError(f"reward plug-in {spec!r}: cannot import {where}: {err}") from err
    func = getattr(module, name, None)
    if not callable(func):
        raise UserError(f"reward plug-in {spec!r}: {where} has no function {name}")
    return func


def _check_value(spec: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"reward plug-in {spec!r} returned {value!r}: a finite float, a dict of them, or None")
    return float(value)


class RewardPlugin:
    """One user reward function, called once per completion; ``terms_for`` wraps it as TRL reward functions."""

    def __init__(self, spec: str, func: Callable):
        self.spec = spec
        self.func = func
        self.name = func.__name__
        params = inspect.signature(func).parameters.values()
        self._all_columns = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        self._named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        self.keys: tuple[str, ...] | None = None  # dict terms, fixed by the first call; None = a scalar reward
        self._cache: tuple[int, list] | None = None

    def score(self, completion: Any, solution: Any, columns: dict[str, Any]) -> float | dict[str, float | None] | None:
        """The checked result of one call (the module docstring says what it may return)."""
        kwargs = {k: v for k, v in columns.items() if self._all_columns or k in self._named}
        value = self.func(text_of(completion), solution, **kwargs)
        if isinstance(value, dict):
            if self.keys is not None and tuple(value) != self.keys:
                raise UserError(f"reward plug-in {self.spec!r} returned keys {list(value)}, first {list(self.keys)}")
            return {str(k): _check_value(self.spec, v) for k, v in value.items()}
        if self.keys is not None:
            raise UserError(f"reward plug-in {self.spec!r} returned {value!r} where it first returned a dict")
        return _check_value(self.spec, value)

    def probe(self, row: dict) -> None:
        """Call the function once on ``row`` (a completion made of its solution) and fix its terms."""
        columns = {k: v for k, v in row.items() if k not in ("solution", "prompt", "image")}
        completion = f"<think>probe</think><answer>{row.get('solution', '')}</answer>"
        try:
            value = self.score(completion, row.get("solution"), columns)
        except UserError:
            raise
        except Exception as err:  # the user's function: whatever it raises is reported in one line
            raise UserError(
                f"reward plug-in {self.spec!r} failed on the first row: {type(err).__name__}: {err}"
            ) from err
        if isinstance(value, dict):
            if not value:
                raise UserError(f"reward plug-in {self.spec!r} returned an empty dict")
            self.keys = tuple(value)

    def batch(self, completions: list, solution: list | None, kwargs: dict) -> list:
        """Results for one generation batch, computed once for all of this plug-in's terms."""
        if self._cache is not None and self._cache[0] == id(completions):
            return self._cache[1]
        n = len(completions)
        cols = {k: v for k, v in kwargs.items() if k not in TRL_EXTRAS and isinstance(v, list) and len(v) == n}
        gts = solution if solution is not None else [None] * n
        out = [self.score(c, gts[i], {k: v[i] for k, v in cols.items()}) for i, c in enumerate(completions)]
        self._cache = (id(completions), out)
        return out

    def terms_for(self, row: dict) -> list[tuple[str, Callable]]:
        """``[(term name, TRL reward function)]`` after probing ``row``: one per dict key, else one named FUNC."""
        self.probe(row)
        if self.keys is None:
            return [(self.name, _term(self, None, self.name))]
        return [(key, _term(self, key, key)) for key in self.keys]


def _term(plugin: RewardPlugin, key: str | None, name: str) -> Callable:
    def reward(completions: list, solution: list | None = None, **kwargs: Any) -> list[float | None]:
        values = plugin.batch(completions, solution, kwargs)
        return values if key is None else [v.get(key) for v in values]

    reward.__name__ = name
    return reward


def load_plugin(spec: str) -> RewardPlugin:
    """The plug-in ``spec`` names, imported (not yet probed)."""
    return RewardPlugin(spec, _import(spec))


def plugin_terms(specs: list[str], row: dict) -> list[tuple[str, Callable]]:
    """Every plug-in's terms, probed on ``row``; ``UserError`` when two terms share a name."""
    terms: list[tuple[str, Callable]] = []
    for spec in specs:
        terms.extend(load_plugin(spec).terms_for(row))
    names = [n for n, _ in terms]
    if len(set(names)) != len(names):
        raise UserError(f"reward plug-ins: term names repeat: {names}")
    return terms
