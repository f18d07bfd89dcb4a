"""Command-line flags from a dataclass: one ``--flag`` per field, its help from ``field.metadata["help"]``.

The one helper ``segzero train``, ``segzero eval`` and ``segzero segment`` build their flags with, so a setting's
name, type, default, choices and help are written once, on the dataclass field:

- ``typed`` flags (eval, segment): the type from the annotation (``int``, ``float``, ``str`` and their
  ``| None``), ``metadata["choices"]`` as argparse choices, a ``bool`` as ``--flag`` / ``--no-flag``, a field
  without a default as a required flag; ``values(args, names)`` reads them back by field name;
- ``raw`` flags (train): every value a string ``V`` read later as YAML, default ``None`` (= not given), so that
  ``--learning-rate 2e-6`` and ``--set learning_rate=2e-6`` are one thing (``overrides(args, names)``).

>>> import argparse, dataclasses
>>> @dataclasses.dataclass
... class Opts:
...     size: int = dataclasses.field(default=8, metadata={"help": "rows per batch"})
...     mode: str = dataclasses.field(default="a", metadata={"help": "how", "choices": ("a", "b")})
...     report: bool = dataclasses.field(default=True, metadata={"help": "write the report"})
>>> p = argparse.ArgumentParser()
>>> names = add_fields(p, Opts)
>>> values(p.parse_args(["--size", "3", "--no-report"]), names)
{'size': 3, 'mode': 'a', 'report': False}
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any


def _flag(name: str, flags: dict[str, str]) -> str:
    return "--" + flags.get(name, name).replace("_", "-")


def _scalar_type(hint: Any) -> type | None:
    """``int`` / ``float`` / ``str`` / ``bool`` of a field's annotation (``X | None`` -> ``X``); None otherwise."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else None
    return hint if hint in (int, float, str, bool) else None


def add_fields(
    parser, cls, *, names: list[str] | None = None, flags: dict[str, str] | None = None, raw: bool = False
) -> list[str]:
    """Add a flag for each field of dataclass ``cls`` (or only ``names``, in that order) to ``parser`` (a parser or
    an argument group); ``flags`` renames some (field name -> flag name). Returns the field names added."""
    flags = dict(flags or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = list(fields) if names is None else list(names)
    for name in names:
        f = fields[name]
        text = f.metadata.get("help", "").replace("%", "%%")  # prose, not an argparse template
        if raw:
            parser.add_argument(_flag(name, flags), dest=f"field_{name}", metavar="V", default=None, help=text)
            continue
        kind = _scalar_type(hints[name])
        if kind is None:
            raise TypeError(f"{cls.__name__}.{name}: no command-line form for {hints[name]}")
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        default = f.default if f.default is not dataclasses.MISSING else None
        kwargs: dict[str, Any] = {"dest": name, "help": text}
        if kind is bool:
            kwargs.update(action=argparse.BooleanOptionalAction, default=default)
        else:
            kwargs.update(type=kind, default=default, choices=f.metadata.get("choices"), metavar=None)
            if not has_default:
                kwargs["required"] = True
            if has_default and default is not None:
                kwargs["help"] = f"{text} (default: %(default)s)"
        parser.add_argument(_flag(name, flags), **{k: v for k, v in kwargs.items() if v is not None or k == "default"})
    return names


def values(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """The typed flags' values by field name."""
    return {name: getattr(args, name) for name in names}


def overrides(args: argparse.Namespace, names: list[str]) -> list[str]:
    """The raw flags given, as ``name=value`` overrides (``segzero.train.recipes.parse_overrides`` reads them)."""
    return [f"{n}={getattr(args, f'field_{n}')}" for n in names if getattr(args, f"field_{n}", None) is not None]
