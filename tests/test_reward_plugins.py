"""Reward plug-ins (``segzero train --reward FILE.py:FUNC``, ``segzero.train.plugins``): loading, the call
convention, what a plug-in may return, one-line errors at start, and a real GRPO run that logs the plug-in's terms.

Run: ``OMP_NUM_THREADS=1 pytest tests/test_reward_plugins.py -q``
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from segzero.errors import UserError
from segzero.train.plugins import load_plugin, plugin_terms

ROOT = Path(__file__).resolve().parents[1]
ROW = {"solution": "<box>(1,2),(30,40)</box>", "problem": "the cup", "id": "r0", "image": object(), "prompt": "p"}
GOOD = '<think>a</think><answer>{"bbox": [1,2,30,40], "points_1": [5,5], "points_2": [6,6]}</answer>'


def _plugin(tmp_path: Path, body: str, name: str = "compute_score") -> str:
    path = tmp_path / "my_reward.py"
    path.write_text(body)
    return f"{path}:{name}"


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        # EasyR1's two-argument convention: completion text and gt
        ("def compute_score(completion, solution):\n    return float(solution in completion)\n", [0.0]),
        # a row column by name: only the columns the function names are passed
        ("def compute_score(completion, solution, problem):\n    return float(problem == 'the cup')\n", [1.0]),
        # **columns gets every dataset column (not TRL's extras such as trainer_state)
        ("def compute_score(c, s, **cols):\n    return float(sorted(cols) == ['id', 'problem'])\n", [1.0]),
        # None = not judged, kept as None for TRL to leave out
        ("def compute_score(c, s):\n    return None\n", [None]),
    ],
)
def test_scalar_plugins_are_called_with_the_completion_text_and_the_columns_they_name(tmp_path, body, expect):
    ((name, func),) = plugin_terms([_plugin(tmp_path, body)], ROW)
    assert name == "compute_score"
    chat = [[{"role": "assistant", "content": GOOD}]]  # a chat completion reaches the plug-in as its text
    values = func(completions=chat, solution=[ROW["solution"]], problem=["the cup"], id=["r0"], trainer_state=None)
    assert values == expect


def test_a_dict_plugin_is_one_reward_per_key_computed_once_per_batch(tmp_path):
    body = (
        "CALLS = []\n"
        "def compute_score(completion, solution):\n"
        "    CALLS.append(completion)\n"
        "    return {'fmt': float('<think>' in completion), 'len': len(completion) / 100}\n"
    )
    plugin = load_plugin(_plugin(tmp_path, body))
    terms = plugin.terms_for(ROW)
    assert [n for n, _ in terms] == ["fmt", "len"]
    completions = [GOOD, "no think"]
    fmt, length = (f(completions=completions, solution=["a", "b"]) for _, f in terms)
    assert fmt == [1.0, 0.0] and length == [len(GOOD) / 100, 0.08]
    calls = plugin.func.__globals__["CALLS"]  # the probe, then once per completion for both terms
    assert len(calls) == 1 + len(completions)


@pytest.mark.parametrize(
    ("spec_or_body", "message"),
    [
        # not FILE:FUNC
        ("no_colon_here", "write FILE.py:FUNC"),
        # a file that is not there
        ("/nonexistent/reward.py:f", "no file"),
        # a module that cannot be imported
        ("segzero.no_such_module:f", "cannot import"),
        # a file whose import fails
        ("raise RuntimeError('boom')\n", "importing"),
        # the function is missing
        ("def other(c, s):\n    return 1.0\n", "has no function compute_score"),
        # a return value of the wrong type
        ("def compute_score(c, s):\n    return 'high'\n", "returned 'high'"),
        # a non-finite value
        ("def compute_score(c, s):\n    return float('nan')\n", "returned nan"),
        # it raises on the first row
        ("def compute_score(c, s):\n    return 1 / 0\n", "failed on the first row: ZeroDivisionError"),
        # a signature that cannot take (completion, solution)
        ("def compute_score():\n    return 1.0\n", "failed on the first row: TypeError"),
        # an empty dict names no term
        ("def compute_score(c, s):\n    return {}\n", "empty dict"),
    ],
)
def test_a_broken_plugin_fails_at_start_in_one_line(tmp_path, spec_or_body, message):
    spec = spec_or_body if "\n" not in spec_or_body else _plugin(tmp_path, spec_or_body)
    with pytest.raises(UserError) as err:
        plugin_terms([spec], ROW)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_dict_whose_keys_change_mid_run_stops_with_one_line(tmp_path):
    body = "def compute_score(c, s):\n    return {'a': 1.0} if 'probe' in c else {'b': 1.0}\n"
    ((_, func),) = plugin_terms([_plugin(tmp_path, body)], ROW)
    with pytest.raises(UserError, match=r"returned keys \['b'\], first \['a'\]"):
        func(completions=[GOOD], solution=["x"])


def test_the_built_in_consistency_rule_loads_by_module_path():
    ((name, func),) = plugin_terms(["segzero.rewards.consistency:box_consistency"], ROW)
    stated = '<think>the cup [1,2,30,40]</think><answer>{"bbox": [1,2,30,40], "points_1": [5,5], "points_2": [6,6]}'
    assert name == "box_consistency" and func(completions=[stated + "</answer>", GOOD]) == [1.0, None]


def test_two_plugins_with_one_term_name_are_refused(tmp_path):
    spec = _plugin(tmp_path, "def compute_score(c, s):\n    return 1.0\n")
    with pytest.raises(UserError, match="term names repeat"):
        plugin_terms([spec, spec], ROW)
    assert load_plugin(spec).name == "compute_score"


@pytest.mark.slow
def test_segzero_train_reward_flag_logs_the_plugin_and_records_it(tmp_path):
    # the interface outside checks use: the committed tiny_cpu recipe plus --reward FILE.py:compute_score
    from segzero.cli.main import main

    spec = _plugin(tmp_path, "def compute_score(completion, solution):\n    return float(len(completion) % 2)\n")
    out = tmp_path / "run"
    argv = ["train", "--config", str(ROOT / "recipes" / "tiny_cpu.yaml"), "--output-dir", str(out)]
    assert main([*argv, "--reward", spec, "--set", "max_steps=2", "--set", "report_to=[none]"]) == 0
    state = json.loads(next(out.glob("checkpoint-*/trainer_state.json")).read_text())
    logged = [h for h in state["log_history"] if "rewards/compute_score/mean" in h]
    assert logged and all(math.isfinite(h["rewards/compute_score/mean"]) for h in logged)
    info = json.loads((out / "final" / "segzero.json").read_text())
    assert info["reward_plugins"] == [spec] and info["training"]["stages"] == ["grpo"]
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert "compute_score" in rows[0]["rewards"]


def test_a_broken_plugin_stops_segzero_train_with_exit_2_before_training(tmp_path, capsys):
    from segzero.cli.main import main

    spec = _plugin(tmp_path, "def compute_score(c, s):\n    return 'x'\n")
    out = tmp_path / "run"
    argv = ["train", "--config", str(ROOT / "recipes" / "tiny_cpu.yaml"), "--output-dir", str(out), "--reward", spec]
    assert main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]  # (the tiny models' build
    assert len(errors) == 1 and "returned 'x'" in errors[0]  # prints progress bars before the plug-in is probed)
    assert not list(out.glob("checkpoint-*"))
