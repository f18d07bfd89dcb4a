"""segzero's vLLM paths against the installed TRL and vLLM APIs, so a rename fails here rather than on a GPU.

- Always (TRL is a dependency): every vLLM setting of ``TrainConfig`` is a field of the installed ``GRPOConfig``
  with a type that takes segzero's values, and ``grpo_config`` carries colocate and server settings through.
- Where vLLM's source can be read (an installed ``vllm``, or a vllm wheel named by ``SEGZERO_VLLM_WHEEL``, which
  ``.ci/run`` downloads for its version sets): the keyword arguments ``segzero eval --backend vllm`` gives
  ``vllm.LLM``, ``SamplingParams`` and ``LLM.generate``, the keys of its prompts, and the keyword arguments the
  installed TRL gives ``LLM`` and ``SamplingParams`` in its rollouts, are names that vLLM release has. The source is
  read with ``ast``; nothing of vLLM is imported, so no GPU and no matching torch are needed.
- Where vLLM imports: vLLM itself builds ``SamplingParams`` and ``EngineArgs`` from segzero's settings (types).
- Where vLLM imports and a CUDA GPU is present: ``segzero eval --backend vllm`` on the tiny models, and GRPO steps
  with ``use_vllm`` in colocate mode (and, with two GPUs, server mode against ``trl vllm-serve``).

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_vllm_api.py``
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import os
import re
import socket
import subprocess
import sys
import types
import typing
import zipfile
from pathlib import Path

import numpy as np
import pytest

from segzero.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
WHEEL_ENV = "SEGZERO_VLLM_WHEEL"
# the vLLM API segzero and TRL call: class -> module path under vllm/ (where the release defines it)
VLLM_CLASSES = ("LLM", "SamplingParams", "EngineArgs", "TextPrompt")


# ----------------------------------------------------------------------------------------------- TRL's GRPOConfig
def _vllm_settings() -> list[str]:
    """GRPOConfig's names of the vLLM settings segzero sets: ``use_vllm`` and ``vllm_<field>`` per field of
    ``TrainConfig.vllm``."""
    from segzero.train.config import VllmConfig

    return ["use_vllm", *(f"vllm_{f.name}" for f in dataclasses.fields(VllmConfig))]


def _setting(cfg: TrainConfig, name: str):
    """The value of GRPOConfig's setting ``name`` in ``cfg`` (``vllm_mode`` -> ``cfg.vllm.mode``)."""
    return cfg.use_vllm if name == "use_vllm" else getattr(cfg.vllm, name.removeprefix("vllm_"))


def _accepts(annotation, value) -> bool:
    """``value`` fits the dataclass field type ``annotation`` (unions and Optional flattened; Literal by value)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, origin or annotation)


def test_every_vllm_setting_is_a_grpo_config_field_of_a_fitting_type():
    from trl import GRPOConfig

    settings = _vllm_settings()
    assert {"use_vllm", "vllm_mode", "vllm_server_base_url"} <= set(settings)
    hints = typing.get_type_hints(GRPOConfig)
    defaults = TrainConfig()
    for name in settings:
        assert name in hints, f"TrainConfig.{name} has no GRPOConfig field of that name in this TRL"
        assert _accepts(hints[name], _setting(defaults, name)), (name, hints[name])


def test_grpo_config_help_names_both_vllm_modes():
    # TrainConfig accepts exactly 'colocate' and 'server'; the installed TRL documents the same two modes
    from trl import GRPOConfig

    help_text = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(GRPOConfig)}["vllm_mode"]
    assert "colocate" in help_text and "server" in help_text


ROLLOUTS = [
    # colocate: vLLM inside the training processes, with its GPU memory share and tensor-parallel size
    {"use_vllm": True, "vllm.mode": "colocate", "vllm.gpu_memory_utilization": 0.45, "vllm.tensor_parallel_size": 2},
    # server: a `trl vllm-serve` on other GPUs or nodes, reached by its URL
    {"use_vllm": True, "vllm.mode": "server", "vllm.server_base_url": "http://127.0.0.1:8000"},
    # off: generate() rollouts (the CPU recipes)
    {"use_vllm": False},
]


@pytest.mark.parametrize("settings", ROLLOUTS)
def test_grpo_config_carries_the_vllm_settings(settings, tmp_path):
    from segzero.train.grpo_args import grpo_config

    overrides = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()]
    cfg = TrainConfig.from_yaml(ROOT / "recipes" / "tiny_cpu.yaml", overrides=overrides)
    args = grpo_config(cfg, tmp_path, reward_weights=[1.0])
    for name in _vllm_settings():
        assert getattr(args, name) == _setting(cfg, name), name
    for key, value in settings.items():  # each override reached its field
        assert _setting(cfg, "use_vllm" if key == "use_vllm" else "vllm_" + key.split(".")[1]) == value


# ----------------------------------------------------------------------------------------- vLLM's source, by ast
class VllmSource:
    """The class definitions of one vLLM release, parsed from its source files (installed package or wheel)."""

    def __init__(self, files: dict[str, str], where: str):
        self.where = where
        self.classes: dict[str, ast.ClassDef] = {}
        for path, text in files.items():
            for node in ast.parse(text, filename=path).body:
                if isinstance(node, ast.ClassDef):
                    self.classes.setdefault(node.name, node)

    @classmethod
    def find(cls) -> VllmSource | None:
        """The installed vllm's source, else the wheel ``$SEGZERO_VLLM_WHEEL`` points at, else None."""
        names = "|".join(map(re.escape, VLLM_CLASSES + ("_PromptOptions",)))
        wanted = re.compile(rf"^class ({names})\b", re.M)
        spec = importlib.util.find_spec("vllm")
        if spec is not None and spec.submodule_search_locations:
            root = Path(next(iter(spec.submodule_search_locations)))
            texts = {str(p): p.read_text(encoding="utf-8", errors="replace") for p in root.rglob("*.py")}
            return cls({p: t for p, t in texts.items() if wanted.search(t)}, f"installed vllm at {root}")
        wheel = os.environ.get(WHEEL_ENV)
        if wheel and Path(wheel).is_file():
            with zipfile.ZipFile(wheel) as zf:
                texts = {
                    n: zf.read(n).decode("utf-8", "replace")
                    for n in zf.namelist()
                    if n.startswith("vllm/") and n.endswith(".py")
                }
            return cls({p: t for p, t in texts.items() if wanted.search(t)}, f"wheel {wheel}")
        return None

    def fields(self, name: str) -> set[str]:
        """Annotated attributes of class ``name`` and of its bases defined in the release (dataclass / TypedDict /
        msgspec fields)."""
        node = self.classes[name]
        out = {s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
        for base in node.bases:
            base_name = ast.unparse(base).split(".")[-1].split("[")[0]
            if base_name in self.classes and base_name != name:
                out |= self.fields(base_name)
        return out

    def parameters(self, name: str, method: str) -> tuple[set[str], bool]:
        """(named parameters of ``name.method``, whether it takes ``**kwargs``)."""
        node = next(
            n
            for n in self.classes[name].body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == method
        )
        args = node.args
        return {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs} - {"self"}, args.kwarg is not None

    def llm_keywords(self) -> set[str]:
        """Every keyword ``vllm.LLM(...)`` takes: its own parameters, plus ``EngineArgs`` fields through ``**kwargs``."""
        params, more = self.parameters("LLM", "__init__")
        return params | (self.fields("EngineArgs") if more else set())


@pytest.fixture(scope="module")
def vllm_source() -> VllmSource:
    source = VllmSource.find()
    if source is None:
        pytest.skip(f"vLLM's source is not here: install segzero[vllm], or set {WHEEL_ENV} to a vllm wheel")
    missing = [c for c in VLLM_CLASSES if c not in source.classes]
    assert not missing, f"{source.where} defines none of {missing}: the vLLM API segzero uses has moved"
    return source


@pytest.fixture(scope="module")
def eval_backend_calls(tiny_models) -> dict:
    """What ``VLLMReasoner`` (``segzero eval --backend vllm``) hands vLLM, recorded with a stand-in ``vllm``."""
    from PIL import Image

    import segzero.eval.vllm_backend as vb

    calls: dict = {}

    class RecordingLLM:
        def __init__(self, **kwargs):
            calls["LLM"] = kwargs

        def generate(self, prompts, *args, **kwargs):
            calls["generate"] = (len(args), kwargs)
            calls["prompts"] = prompts
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text="")]) for _ in prompts]

    def recording_sampling_params(**kwargs):
        calls["SamplingParams"] = kwargs
        return kwargs

    stand_in = types.ModuleType("vllm")
    stand_in.LLM, stand_in.SamplingParams = RecordingLLM, recording_sampling_params
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "vllm", stand_in)
        mp.setattr(vb, "vllm_available", lambda: True)
        reasoner = vb.VLLMReasoner.from_pretrained(str(tiny_models["reasoner"]), frame=56, max_new_tokens=8)
        reasoner.generate([Image.fromarray(np.zeros((30, 40, 3), np.uint8))], ["the red cup"])
    return calls


def _trl_vllm_calls() -> dict[str, list[tuple[str, set[str]]]]:
    """Keyword names of every ``LLM(...)`` / ``SamplingParams(...)`` call in the installed TRL's source (its
    experimental trainers left out: segzero does not use them)."""
    import trl

    out: dict[str, list[tuple[str, set[str]]]] = {"LLM": [], "SamplingParams": []}
    for path in Path(trl.__file__).parent.rglob("*.py"):
        if "experimental" in path.relative_to(Path(trl.__file__).parent).parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "LLM(" not in text and "SamplingParams(" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func).split(".")[-1]
                if name in out:
                    where = f"{path.relative_to(Path(trl.__file__).parent)}:{node.lineno}"
                    out[name].append((where, {k.arg for k in node.keywords if k.arg is not None}))
    return out


def test_eval_backend_llm_arguments_are_vllm_engine_arguments(vllm_source, eval_backend_calls):
    unknown = set(eval_backend_calls["LLM"]) - vllm_source.llm_keywords()
    assert not unknown, f"vllm.LLM in {vllm_source.where} takes none of {sorted(unknown)}"


def test_eval_backend_sampling_and_generate_arguments_exist(vllm_source, eval_backend_calls):
    unknown = set(eval_backend_calls["SamplingParams"]) - vllm_source.fields("SamplingParams")
    assert not unknown, f"SamplingParams in {vllm_source.where} has none of {sorted(unknown)}"
    positional, keywords = eval_backend_calls["generate"]
    params, _ = vllm_source.parameters("LLM", "generate")
    assert positional == 1 and "sampling_params" in params  # generate(prompts, sampling_params, ...)
    assert set(keywords) <= params, sorted(set(keywords) - params)


def test_eval_backend_prompts_are_vllm_text_prompts(vllm_source, eval_backend_calls):
    keys = set().union(*(p.keys() for p in eval_backend_calls["prompts"]))
    assert keys == {"prompt", "multi_modal_data"}
    assert keys <= vllm_source.fields("TextPrompt"), sorted(keys - vllm_source.fields("TextPrompt"))


@pytest.mark.parametrize("kind", ["LLM", "SamplingParams"])
def test_trl_rollout_arguments_are_known_to_this_vllm(vllm_source, kind):
    # the installed TRL's colocate engine and server script build LLM(...) and SamplingParams(...) with these names
    calls = _trl_vllm_calls()[kind]
    assert calls, f"no {kind}(...) call found in the installed TRL"
    known = vllm_source.llm_keywords() if kind == "LLM" else vllm_source.fields("SamplingParams")
    unknown = {where: sorted(names - known) for where, names in calls if names - known}
    assert not unknown, f"{kind} in {vllm_source.where} lacks what TRL passes: {unknown}"


# ------------------------------------------------------------------------------------------- vLLM imported (types)
def _vllm_or_skip():
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed (pip install 'segzero[vllm]')")
    return pytest.importorskip("vllm")


def test_vllm_builds_the_eval_backend_settings(eval_backend_calls):
    vllm = _vllm_or_skip()
    from vllm.engine.arg_utils import EngineArgs

    params = vllm.SamplingParams(**eval_backend_calls["SamplingParams"])
    assert (params.temperature, params.max_tokens) == (0.0, 8)
    engine = EngineArgs(**eval_backend_calls["LLM"])
    for name, value in eval_backend_calls["LLM"].items():
        assert getattr(engine, name) == value, name


# ------------------------------------------------------------------------------------------------ on a CUDA GPU
def _gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _needs_gpu_vllm(gpus: int = 1) -> None:
    _vllm_or_skip()
    if _gpus() < gpus:
        pytest.skip(f"vLLM generation needs {gpus} CUDA GPU(s); this machine has {_gpus()}")


@pytest.mark.slow
def test_eval_backend_vllm_on_gpu(tiny_models, tmp_path):
    _needs_gpu_vllm()
    import json

    from segzero.cli.main import main
    from test_eval import eval_cmd, make_reasonseg  # tests/ is on sys.path (pytest's default import mode)

    data, out = tmp_path / "ds", tmp_path / "run"
    rows = make_reasonseg(data, n_images=2)
    args = eval_cmd(data, out, tiny_models, "--backend", "vllm", "--gpu-memory-utilization", "0.3")
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == len(rows)


def _train_steps(tiny_models, tmp_path, *overrides: str) -> dict:
    from segzero.train.trainer import train

    base = [f"model={tiny_models['reasoner']}", "use_cpu=false", "bf16=false", "max_steps=2", "save_steps=2"]
    base += ["sample_every=0", "report_to=[none]", "use_vllm=true", "vllm_gpu_memory_utilization=0.3"]
    cfg = TrainConfig.from_yaml(ROOT / "recipes" / "tiny_cpu.yaml", overrides=base + list(overrides))
    return train(cfg, tmp_path / "run")


@pytest.mark.slow
def test_grpo_vllm_colocate_on_gpu(tiny_models, tmp_path):
    _needs_gpu_vllm()
    result = _train_steps(tiny_models, tmp_path, "vllm_mode=colocate")
    assert result["global_step"] == 2 and (result["final"] / "config.json").is_file()


@pytest.mark.slow
def test_grpo_vllm_server_on_gpus(tiny_models, tmp_path):
    # `trl vllm-serve` on the last GPU, the trainer on the first (NCCL needs them apart); TRL's client waits for it
    _needs_gpu_vllm(gpus=2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(_gpus() - 1)}
    serve = [str(Path(sys.executable).with_name("trl")), "vllm-serve", "--model", str(tiny_models["reasoner"])]
    serve += ["--host", "127.0.0.1", "--port", str(port), "--gpu_memory_utilization", "0.3"]
    server = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"vllm_server_base_url=http://127.0.0.1:{port}"
        result = _train_steps(tiny_models, tmp_path, "vllm_mode=server", url)
        assert result["global_step"] == 2
    finally:
        server.terminate()
        server.wait(timeout=60)
