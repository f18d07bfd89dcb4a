"""The light core imports no heavy dependency (torch, transformers, ...), not even transitively.

Run: ``pytest tests/test_light_core.py -q``. The imports happen in a fresh interpreter (a subprocess), since
the test session itself may already have loaded torch for other tests. The child imports the core modules
one at a time and reports, for each heavy package that appeared, the core module that first pulled it in.
"""

from __future__ import annotations

import json
import subprocess
import sys

CORE_MODULES = [
    "segzero",
    "segzero.answer",
    "segzero.errors",
    "segzero.parsing",
    "segzero.geometry",
    "segzero.rewards",
    "segzero.metrics",
    "segzero.prompts",
    "segzero.points",
    "segzero.images",
]

# packages the light core must never load: the model stack and the other heavy project dependencies
HEAVY = ["torch", "transformers", "accelerate", "datasets", "trl", "peft", "tokenizers", "safetensors", "cv2"]

CHILD = """
import importlib, json, sys
heavy, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])
culprits = {}
for name in modules:
    importlib.import_module(name)
    for pkg in heavy:
        if pkg in sys.modules and pkg not in culprits:
            culprits[pkg] = name
print(json.dumps(culprits))
"""


def _culprits(modules: list[str]) -> dict[str, str]:
    return _culprits_of(HEAVY, modules)


def _culprits_of(heavy: list[str], modules: list[str]) -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(heavy), json.dumps(modules)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"importing the light core failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_light_core_imports_no_heavy_package():
    # every core module together: torch and transformers (and the rest of HEAVY) must stay unloaded
    culprits = _culprits(CORE_MODULES)
    assert "torch" not in culprits, f"torch imported by {culprits['torch']}"
    assert "transformers" not in culprits, f"transformers imported by {culprits['transformers']}"
    assert culprits == {}, f"heavy packages imported by the light core (package: first importing module): {culprits}"


def test_detector_sees_imports():
    # guard against a detector that can never fire: a package imported after a core module is reported,
    # attributed to the module that imported it ("fractions" is stdlib, cheap, and not loaded by the core)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(["fractions"]), json.dumps(["segzero.metrics", "fractions"])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"fractions": "fractions"}


# what an RL reward worker imports; scipy.optimize (~0.7 s) and scipy.ndimage (~0.4 s) load only when used
REWARD_PATH = ["segzero.rewards", "segzero.parsing", "segzero.geometry", "segzero.answer", "segzero.prompts"]
SLOW_TO_IMPORT = ["scipy.optimize", "scipy.ndimage"]


def test_reward_path_defers_slow_scipy_imports():
    # the Hungarian matching imports scipy.optimize inside the function that needs it
    culprits = _culprits_of(SLOW_TO_IMPORT, REWARD_PATH)
    assert culprits == {}, f"slow imports on the reward path (package: first importing module): {culprits}"
