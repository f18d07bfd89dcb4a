"""``segzero segment`` and ``segzero demo`` check the query (UTF-8, not empty, not too long) before loading a model.

Every case names a reasoner folder that does not exist: had the query been passed on, the error would be about
that folder. A fresh interpreter also shows that no model library was even imported. Run:
``python -m pytest -q tests/test_cli_query.py``
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from segzero.cli.main import main
from segzero.prompts import MAX_QUERY_CHARS

# the byte 0xff in a command-line argument, as Python receives it under a UTF-8 locale (surrogateescape)
ARGV_XFF = b"the \xff red".decode("utf-8", "surrogateescape")


@pytest.fixture()
def image_path(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.zeros((20, 30, 3), dtype=np.uint8)).save(path)
    return path


def _argv(command: str, query: str, image_path, tmp_path) -> list[str]:
    missing = str(tmp_path / "no_model_here")
    return [command, "--image", str(image_path), "--query", query, "--reasoner", missing, "--out", str(tmp_path / "o")]


@pytest.mark.parametrize("command", ["segment", "demo"])
@pytest.mark.parametrize(
    ("query", "words"),
    [
        (ARGV_XFF, "not valid UTF-8 at character 4: undecodable byte 0xff"),  # bash $'the \xff red'
        ("", "query is empty"),  # nothing
        ("  \t ", "query is empty"),  # whitespace only
        ("...", "query is empty"),  # nothing left once the prompt strips the dots
        ("x" * 100_000, f"100000 characters, the limit is {MAX_QUERY_CHARS}"),  # far too long
        ("x" * (MAX_QUERY_CHARS + 1), f"{MAX_QUERY_CHARS + 1} characters"),  # one over
    ],
)
def test_bad_query_is_one_line_exit_2_before_any_model(command, query, words, image_path, tmp_path, capsys):
    code = main(_argv(command, query, image_path, tmp_path))
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith(f"segzero {command}: error: ")
    assert words in err and "Traceback" not in err
    assert "no_model_here" not in err  # the reasoner folder was never looked at
    assert not (tmp_path / "o").exists()  # nothing written


@pytest.mark.parametrize("command", ["segment", "demo"])
def test_query_at_the_limit_passes_the_check(command, image_path, tmp_path, capsys):
    # exactly MAX_QUERY_CHARS characters (padded with spaces) is accepted: the next error is the missing model
    code = main(_argv(command, "  " + "x" * MAX_QUERY_CHARS + "  ", image_path, tmp_path))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "no_model_here" in err


# a fresh interpreter: run the CLI, then report which model libraries got imported
CHILD = (
    "import sys; from segzero.cli.main import main; code = main(sys.argv[1:]); "
    "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules)); sys.exit(code)"
)


@pytest.mark.parametrize("command", ["segment", "demo"])
def test_non_utf8_argv_fails_fast_in_a_fresh_process(command, image_path, tmp_path):
    argv = [os.fsencode(a) for a in _argv(command, "QUERY", image_path, tmp_path)]
    argv[argv.index(b"QUERY")] = b"the \xff red"  # raw bytes, as a shell passes $'the \xff red'
    env = {**os.environ, "PYTHONUTF8": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, env=env, timeout=120)
    err = proc.stderr.decode("utf-8", "replace").strip()
    assert proc.returncode == 2, err
    problem = "the query is not valid UTF-8 at character 4: undecodable byte 0xff (lone surrogate '\\udcff')"
    assert err == f"segzero {command}: error: {problem}"  # the whole of stderr: one line, no traceback
    assert proc.stdout.decode().strip() == "[]"  # neither torch nor transformers was imported
