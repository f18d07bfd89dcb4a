"""``segzero train``, ``eval`` and ``segment`` take their flags from dataclass fields (``segzero.cli.fields``): each
flag's help, default and choices are its field's, so a setting is described once.

Run: ``pytest tests/test_cli_fields.py -q``
"""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from segzero.cli.eval import FLAGS, RUN_FIELDS
from segzero.cli.fields import add_fields, overrides, values
from segzero.cli.main import build_parser
from segzero.cli.segment import SegmentOptions
from segzero.eval.runner import EvalConfig
from segzero.train.config import TrainConfig


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[name]


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {opt: a for a in parser._actions for opt in a.option_strings}


@pytest.mark.parametrize(
    ("command", "cls", "names", "renamed"),
    [
        ("train", TrainConfig, [f.name for f in dataclasses.fields(TrainConfig)], {}),  # every config field
        ("eval", EvalConfig, list(RUN_FIELDS), FLAGS),  # the run's settings
        ("segment", SegmentOptions, [f.name for f in dataclasses.fields(SegmentOptions)], {}),  # all of them
    ],
)
def test_each_flag_carries_its_fields_help_default_and_choices(command, cls, names, renamed):
    flags = _flags(_subparser(command))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in names:
        action = flags["--" + renamed.get(name, name).replace("_", "-")]
        field = fields[name]
        assert action.help.replace("%%", "%").startswith(field.metadata["help"])  # (typed flags add the default)
        if command != "train":  # typed: the field's default and choices
            default = None if field.default is dataclasses.MISSING else field.default
            assert action.default == default and action.choices == field.metadata.get("choices")
            assert action.required == (field.default is dataclasses.MISSING)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"n": 8, "name": None, "mode": "a", "on": True}),  # defaults
        (["--n", "3", "--name", "x", "--mode", "b", "--no-on"], {"n": 3, "name": "x", "mode": "b", "on": False}),
    ],
)
def test_typed_flags_parse_to_the_field_types(argv, expected):
    @dataclasses.dataclass
    class Opts:
        n: int = dataclasses.field(default=8, metadata={"help": "count"})
        name: str | None = dataclasses.field(default=None, metadata={"help": "a name"})
        mode: str = dataclasses.field(default="a", metadata={"help": "mode", "choices": ("a", "b")})
        on: bool = dataclasses.field(default=True, metadata={"help": "switch"})

    parser = argparse.ArgumentParser()
    names = add_fields(parser, Opts)
    assert values(parser.parse_args(argv), names) == expected
    with pytest.raises(SystemExit):
        parser.parse_args(["--mode", "c"])  # not one of the choices


def test_raw_flags_become_overrides_only_when_given():
    @dataclasses.dataclass
    class Opts:
        lr: float = dataclasses.field(default=1e-6, metadata={"help": "rate 50%"})
        steps: int = dataclasses.field(default=1, metadata={"help": "steps"})

    parser = argparse.ArgumentParser()
    names = add_fields(parser, Opts, raw=True)
    assert overrides(parser.parse_args(["--lr", "2e-6"]), names) == ["lr=2e-6"]
    assert "rate 50%" in parser.format_help()  # a percent sign in help is prose
