"""The declared dependency ranges are the tested ones: every lower bound in pyproject.toml is pinned by the lowest CI
set (.ci/constraints-lowest.txt), the ``[vllm]`` CI set (.ci/constraints-vllm.txt) lies inside the declared ranges,
both sets keep torch at the CPU wheel CI installs, .ci/run runs both, and the README's "Supported versions" table
states the versions these files pin.

Run: ``python -m pytest -q tests/test_supported_versions.py``
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CI_TORCH = "2.13.0"  # the CPU wheel .ci/run installs in every set


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + [r for group in extras.values() for r in group]]


def _pins(name: str) -> dict[str, Version]:
    pins = {}
    for line in (ROOT / ".ci" / f"constraints-{name}.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            package, version = line.split("==")
            pins[canonicalize_name(package)] = Version(version.strip())
    return pins


def _lower_bound(req: Requirement) -> Version | None:
    bounds = [Version(s.version) for s in req.specifier if s.operator == ">="]
    return max(bounds) if bounds else None


BOUNDED = [r for r in _requirements() if _lower_bound(r) is not None]


@pytest.mark.parametrize("req", BOUNDED, ids=str)
def test_lowest_set_pins_every_lower_bound(req):
    pins = _pins("lowest")
    assert pins.get(canonicalize_name(req.name)) == _lower_bound(req), f"{req}: .ci/constraints-lowest.txt differs"


def test_lowest_set_pins_nothing_undeclared():
    declared = {canonicalize_name(r.name) for r in BOUNDED}
    assert set(_pins("lowest")) <= declared, set(_pins("lowest")) - declared


@pytest.mark.parametrize("req", _requirements(), ids=str)
def test_vllm_set_is_inside_the_declared_ranges(req):
    pinned = _pins("vllm").get(canonicalize_name(req.name))
    if pinned is None:
        pytest.skip(f"{req.name} is not part of the [dev,vllm] resolution")
    if canonicalize_name(req.name) == "torch":
        return  # pinned back to the CPU wheel (checked below)
    assert req.specifier.contains(pinned, prereleases=True), f"{req.name}=={pinned} is outside {req.specifier}"


@pytest.mark.parametrize(
    ("name", "package", "expected"),
    [
        ("lowest", "torch", CI_TORCH),  # the lower bound of torch is the one torch CI installs
        ("vllm", "torch", CI_TORCH),  # vLLM's own torch pin is replaced by the CPU wheel
        ("vllm", "vllm", None),  # pinned, so its wheel is what the API tests read (any version)
        ("lowest", "vllm", None),  # the lowest vLLM's wheel is read in the lowest set
    ],
)
def test_ci_sets_pin(name, package, expected):
    pins = _pins(name)
    assert package in pins, f".ci/constraints-{name}.txt does not pin {package}"
    if expected is not None:
        assert pins[package] == Version(expected)


def test_ci_runs_every_set():
    script = (ROOT / ".ci" / "run").read_text()
    default = re.search(r"SETS=\$\{SEGZERO_CI_SETS:-([^}]*)\}", script).group(1).split()
    assert default == ["newest", "lowest", "vllm"]  # the README's install first, then the two constrained sets
    for name in ("lowest", "vllm"):
        assert (ROOT / ".ci" / f"constraints-{name}.txt").is_file() and name in script
    assert '"$python" -m pytest -q' in script  # the README's test command, in each set's Python
    assert f"'torch=={CI_TORCH}'" in script


def _readme_table() -> dict[str, dict[str, str]]:
    """The README's supported-versions table: set name (the constraints file its first cell names) -> column -> cell."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Supported versions", 1)[1].split("\n## ", 1)[0]
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("|")
    ]
    header, body = rows[0], rows[2:]
    table = {}
    for row in body:
        named = re.search(r"constraints-(\w+)\.txt", row[0])
        if named:
            table[named.group(1)] = dict(zip(header, row, strict=True))
    return table


@pytest.mark.parametrize("name", ["lowest", "vllm"])
def test_readme_table_states_the_pinned_versions(name):
    table = _readme_table()
    assert name in table, f"the README's Supported versions table has no row for .ci/constraints-{name}.txt"
    pins = _pins(name)
    columns = [c for c in table[name] if canonicalize_name(c) in pins]
    assert {"torch", "transformers", "trl", "vllm"} <= set(columns)
    for column in columns:
        cell = table[name][column]
        assert cell.split()[0].strip("`") == str(pins[canonicalize_name(column)]), (name, column, cell)
