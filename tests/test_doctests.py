"""The docstring examples of the package run as doctests (an example that no longer holds fails here).

Run: ``OMP_NUM_THREADS=1 pytest tests/test_doctests.py -q``
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MODULES = sorted(
    ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    for p in (SRC / "segzero").rglob("*.py")
    if ">>> " in p.read_text(encoding="utf-8")
)


def test_some_modules_carry_examples():
    assert MODULES  # the collection below would pass vacuously without any


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
