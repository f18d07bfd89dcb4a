"""The README's command blocks run as written: every command line of every ```bash block is either run here
(offline, in a scratch folder, in README order, with the few sizes in ``SMALLER`` cut down) or listed in
``NOT_RUN`` with the reason it cannot run on an offline CPU machine. A README line in neither list fails the
test, so the README cannot drift from what works.

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_readme.py``
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# command (as shlex-normalised from the README) -> why it is not run here
HUB = "needs hub weights or data (no hub here)"
NOT_RUN = {
    "pip install torch==2.13.0 -e '.[dev]'": "the install itself (.ci/run does it on a clean checkout)",
    "python -m pytest -q": "the test suite itself",
    "segzero segment --image photo.jpg --query 'where could I sit down?' --out out": HUB,
    "segzero segment --image img.jpg --query ... --json": HUB,
    "segzero segment --image img.jpg --query ... --reasoner Ricky06662/VisionReasoner-7B": HUB,
    "tensorboard --logdir runs/tiny/runs": "a server that runs until stopped (tensorboard is a dependency)",
    "segzero train --config recipes/segzero_7b.yaml --output-dir runs/sz7b_lora --set lora=true --set use_vllm=false": (
        "GPU and hub weights"
    ),
    "segzero serve --reasoner Ricky06662/Seg-Zero-7B --segmenter facebook/sam2-hiera-large --port 8000": HUB,
    "segzero data export --format verl --data data/rcg840 --out data/rcg840_verl.parquet": (
        "needs data/rcg840, built from downloaded RefCOCOg and COCO by the line above"
    ),
    "segzero data convert-reasonseg --lisa-dir ReasonSeg --split val --out data/reasonseg_val": (
        "needs the downloaded ReasonSeg folder"
    ),
    "segzero segment --video clip.mp4 --query 'the dog that is about to jump' --out out": HUB,
    "segzero eval --data data/ReVOS --format revos --segmenter facebook/sam2-hiera-large --out runs/revos_valid": (
        "needs the downloaded ReVOS set and hub weights"
    ),
}
NOT_RUN_PREFIXES = {
    "segzero eval --data Ricky06662/": HUB,
    "for i in ": "eight GPUs and hub weights",
    "segzero eval merge ": "needs the eight GPU shards of the line above",
    "accelerate launch ": "multi-GPU training",
    "segzero data build --source refcocog ": "needs downloaded RefCOCOg annotations and COCO images",
}
# README text -> what runs here: sizes cut down (same code path), the serve port chosen free at run time
SMALLER = {
    "--n 64 ": "--n 4 ",
    "--n train=2000": "--n train=8",
    "recipes/shapes_quick.yaml --output-dir runs/shapes_quick": (
        "recipes/shapes_quick.yaml --output-dir runs/shapes_quick --set stages.perception_warmup.steps=2 "
        "--set stages.answer_sft.steps=2 --set max_steps=1 --set dataset_args.samples=8 --set save_steps=1 "
        "--set sample_every=0"
    ),
    "recipes/tiny_cpu.yaml --output-dir runs/tiny": "recipes/tiny_cpu.yaml --output-dir runs/tiny --set max_steps=1",
    "recipes/tiny_cpu.yaml --output-dir runs/my_reward": "recipes/tiny_cpu.yaml --output-dir runs/my_reward --set max_steps=1",
    "recipes/shapes_video_tiny.yaml --output-dir runs/video_tiny": (
        "recipes/shapes_video_tiny.yaml --output-dir runs/video_tiny --set max_steps=1"
    ),
    "--port 8000": "--port PORT",
    "127.0.0.1:8000": "127.0.0.1:PORT",
}
SERVE = "segzero serve --port 8000"  # started in the background; the curl line after it talks to it


def readme_commands(text: str) -> list[str]:
    """Command lines of the ```bash blocks: continuations joined, comments dropped, ``&&`` chains split,
    each normalised by ``shlex`` (quotes as the shell removes them)."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words:
                    out.append(shlex.join(words))
    return out


def _reason(command: str) -> str | None:
    if command in NOT_RUN:
        return NOT_RUN[command]
    return next((why for prefix, why in NOT_RUN_PREFIXES.items() if command.startswith(prefix)), None)


def _runnable(command: str) -> bool:
    return command.startswith(("segzero ", "curl ", "ruff ")) and _reason(command) is None


COMMANDS = readme_commands(README.read_text())
RUN = [c for c in COMMANDS if _runnable(c)]


def test_every_readme_command_is_run_or_has_a_reason():
    # a command in neither list is a README line nobody checks
    unclassified = [c for c in COMMANDS if not _runnable(c) and _reason(c) is None]
    assert unclassified == []
    assert len(RUN) >= 12  # the offline paths: demo, tiny models, segment, world, eval, train, serve, lint


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A scratch folder holding the repository's recipes and the inputs the README names (img.jpg, photo.jpg,
    my_shapes.png, my_data/), and the environment the commands run in (offline, one thread, this Python's scripts)."""
    from segzero.data.synthetic import write_manifest_example
    from segzero.shapes.world import ShapesConfig, generate_rows

    work = tmp_path_factory.mktemp("readme")
    for name in ("recipes", "accelerate", "src", "tests", "benchmarks", "examples", "pyproject.toml"):
        (work / name).symlink_to(ROOT / name)
    noise = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    Image.fromarray(noise).save(work / "img.jpg")
    Image.fromarray(noise).save(work / "photo.jpg")
    generate_rows(1, seed=5, config=ShapesConfig(size=256))[0]["image"].save(work / "my_shapes.png")
    write_manifest_example(work / "my_data")  # the own-data inputs: manifest.jsonl, images, masks, COCO instances
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    state = {"dir": work, "env": env, "port": port, "server": None}
    yield state
    if state["server"] is not None:
        state["server"].terminate()
        state["server"].wait(timeout=30)


def _as_run(command: str, port: int) -> str:
    for old, new in SMALLER.items():
        command = command.replace(old, new)
    return command.replace("PORT", str(port))


@pytest.mark.slow
@pytest.mark.parametrize("command", RUN)
def test_readme_command_runs(workdir, command):
    cmd = _as_run(command, workdir["port"])
    if command == SERVE:
        workdir["server"] = subprocess.Popen(
            shlex.split(cmd), cwd=workdir["dir"], env=workdir["env"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _wait_healthy(workdir["port"], workdir["server"])
        return
    proc = subprocess.run(cmd, shell=True, cwd=workdir["dir"], env=workdir["env"], capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    if command.startswith("curl "):
        assert '"objects"' in proc.stdout and '"mask_rle"' in proc.stdout


def _wait_healthy(port: int, server: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        assert server.poll() is None, server.stderr.read() if server.stderr else "segzero serve exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.5)
    pytest.fail("segzero serve did not answer /healthz")
