"""The reasoning model: a chat VLM (Qwen2.5-VL first) that answers with ``<think>..</think><answer>..</answer>``.

``Reasoner.from_pretrained(name_or_path)`` loads any ``AutoModelForImageTextToText`` chat VLM from the hub or
a local folder; ``reasoner.generate(images, queries)`` returns the raw completions. Images are resized to the
model frame (840 x 840 by default, ``frame``), so the answers' coordinates are in that frame. Usage::

    from segzero.models.reasoner import Reasoner
    r = Reasoner.from_pretrained("Ricky06662/Seg-Zero-7B")          # single-object prompt
    r = Reasoner.from_pretrained("Ricky06662/VisionReasoner-7B")    # multi-object prompt
    r = Reasoner.from_pretrained("/tmp/tiny/reasoner", frame=112)   # any local folder ("segzero" prompt)
    texts = r.generate([pil_image], ["the cup on the left"])

Device and dtype: CUDA with bf16 and sdpa attention (flash-attention 2 when ``flash_attn`` is installed),
otherwise CPU with fp32. Generation is greedy unless ``temperature > 0``; batches are left-padded.
The processor is the stock ``AutoProcessor`` when torchvision is installed, else the image-only processor
of ``segzero.models.processor`` (the stock Qwen-VL one needs torchvision for its video half).
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segzero.errors import UserError
from segzero.geometry import DEFAULT_FRAME
from segzero.prompts import PROMPT_KINDS

DEFAULT_REASONER = "Ricky06662/Seg-Zero-7B"

# Known checkpoints -> the prompt they were trained on. Matching is case-insensitive on the id.
PROMPT_PRESETS: dict[str, str] = {
    "ricky06662/seg-zero-7b": "segzero",
    "ricky06662/seg-zero-3b": "segzero",
    "ricky06662/visionreasoner-7b": "visionreasoner",
}


# A reasoner folder may carry this file: how the weights expect to be driven ({"frame": int, "prompt": kind, ...}).
# Written by ``segzero tiny-models`` and ``segzero train``; released hub checkpoints do not have it (840, preset).
MODEL_INFO_FILE = "segzero.json"


# The name that means the shapes model shipped inside the package (``segzero.assets.shapes_model_path``), wherever
# a reasoner folder is asked for: ``--reasoner shipped``, ``segzero world build --like shipped``.
SHIPPED_REASONER = "shipped"


def expand_shipped(name_or_path: str | Path) -> str:
    """``name_or_path`` as a string, with ``SHIPPED_REASONER`` (when no such local folder exists) replaced by the
    shipped model's folder."""
    name = str(name_or_path)
    if name == SHIPPED_REASONER and not Path(name).exists():
        from segzero.assets import shapes_model_path

        return str(shapes_model_path())
    return name


def read_model_info(name_or_path: str | Path) -> dict:
    """The ``segzero.json`` of a local reasoner folder (``{}`` for hub ids and folders without one)."""
    path = Path(expand_shipped(name_or_path)).expanduser() / MODEL_INFO_FILE
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"unreadable {path}: {err}") from None
    if not isinstance(info, dict):
        raise UserError(f"{path} must hold a JSON object, got {type(info).__name__}")
    return info


def write_model_info(folder: str | Path, *, update: bool = False, **info) -> Path:
    """Write ``segzero.json`` into a saved reasoner folder: ``frame``, ``prompt``, optionally ``segmenter`` (see
    ``recorded_segmenter``) and any provenance fields. ``update=True`` keeps the fields already there."""
    path = Path(folder) / MODEL_INFO_FILE
    if update:
        info = {**read_model_info(folder), **info}
    path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path


def recorded_world(name_or_path: str | Path) -> dict | None:
    """The shapes-world settings a reasoner folder's ``segzero.json`` records as ``world`` (None when absent)."""
    world = read_model_info(name_or_path).get("world")
    return world if isinstance(world, dict) else None


def recorded_segmenter(name_or_path: str | Path) -> str | None:
    """The segmenter a reasoner folder's ``segzero.json`` names, if any.

    A value starting with ``.`` is a path relative to the reasoner folder (``"../segmenter"`` for the tiny models,
    ``"../tiny_models/segmenter"`` for a ``tiny_cpu`` training run); anything else (``"color"``, a hub id, an
    absolute path) is returned as written.
    """
    value = read_model_info(name_or_path).get("segmenter")
    if not value:
        return None
    if str(value).startswith("."):
        return str((Path(expand_shipped(name_or_path)).expanduser() / value).resolve())
    return str(value)


def resolve_prompt_and_frame(
    name_or_path: str | Path, *, prompt: str | None = None, frame: int | tuple[int, int] | None = None
) -> tuple[str, int | tuple[int, int]]:
    """The prompt kind and model frame to drive a reasoner with.

    An explicit argument wins; then the folder's ``segzero.json``; then the id's preset
    (``default_prompt_kind``) and the paper's 840 frame.
    """
    info = read_model_info(name_or_path)
    kind = prompt or info.get("prompt") or default_prompt_kind(str(name_or_path))
    if kind not in PROMPT_KINDS:
        raise UserError(f"unknown prompt kind {kind!r}; use one of {', '.join(sorted(PROMPT_KINDS))}")
    if frame is None:
        frame = info.get("frame", DEFAULT_FRAME)
    if isinstance(frame, list):
        frame = tuple(frame)
    return kind, frame


def default_prompt_kind(name_or_path: str) -> str:
    """The prompt kind for a model id: VisionReasoner ids -> "visionreasoner", everything else -> "segzero"."""
    key = str(name_or_path).strip().rstrip("/").lower()
    if key in PROMPT_PRESETS:
        return PROMPT_PRESETS[key]
    return "visionreasoner" if "visionreasoner" in key else "segzero"


def _looks_like_hub_id(name: str) -> bool:
    """``owner/name`` (or a bare name) that is not written as a filesystem path."""
    if name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1:
        return False
    return all(part and part not in (".", "..") for part in name.split("/"))


def resolve_model_source(name_or_path: str | Path, *, what: str = "model") -> str:
    """Check that a model reference can be loaded; return it as a string for ``from_pretrained``.

    An existing folder must hold a ``config.json`` (or a PEFT ``adapter_config.json``, which transformers loads
    on top of its base model when peft is installed); a path-like name that does not exist raises
    ``UserError("<what> folder not found: ...")``. Hub ids are returned unchanged (loading reports a failure).
    ``"shipped"`` is the shapes model inside the package (``SHIPPED_REASONER``).
    """
    name = expand_shipped(name_or_path)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UserError(f"{what} path is not a folder: {name}")
        if not ((path / "config.json").is_file() or (path / "adapter_config.json").is_file()):
            raise UserError(f"{what} folder has no config.json (not a saved model): {name}")
        return str(path)
    if not _looks_like_hub_id(name):
        raise UserError(f"{what} folder not found: {name}")
    check_hub_reachable(name, what=what)
    return name


def check_hub_reachable(repo_id: str, *, what: str = "model", timeout: float = 5.0, repo_type: str = "model") -> None:
    """Fail fast (``UserError``) when a hub id is neither in the local cache nor downloadable.

    Without this, transformers retries for about a minute (datasets about 25 s) on an offline machine before
    giving up. A cached model ``config.json`` or a cached dataset repo (``repo_type="dataset"``) passes;
    ``HF_HUB_OFFLINE=1`` fails at once; otherwise one TCP connection to the hub endpoint (``timeout`` seconds) is
    tried, skipped when a proxy is configured.
    """
    import os
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants, try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(repo_id, "config.json", repo_type=repo_type)
    except ValueError as err:  # huggingface_hub's HFValidationError: not a valid repo id
        raise UserError(f"{what} {repo_id!r} is neither a local folder nor a valid hub id") from err
    if isinstance(cached, str):
        return
    if repo_type == "dataset" and (Path(constants.HF_HUB_CACHE) / f"datasets--{repo_id.replace('/', '--')}").is_dir():
        return  # downloaded before: the datasets library reads it from the cache
    if constants.HF_HUB_OFFLINE:
        raise UserError(f"{what} {repo_id!r} is not a local folder nor in the hub cache, and HF_HUB_OFFLINE is set")
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise UserError(
            f"{what} {repo_id!r} is not a local folder and the hub ({host}) is unreachable: {err}; "
            + (
                "pass a local folder (e.g. from `segzero tiny-models --out DIR`)"
                if repo_type == "model"
                else "pass a local dataset folder (e.g. from `segzero world build --out DIR`)"
            )
        ) from None


def hub_load_error(name: str, err: BaseException, *, what: str = "model") -> UserError:
    """A one-line ``UserError`` for a hub id that could not be loaded (offline, unknown id, missing files)."""
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return UserError(
        f"cannot load {what} {name!r}: not a local folder and not loadable from the hub "
        f"(offline or unknown id?): {first[:200]}"
    )


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else "cuda" when available, else "cpu"."""
    if device:
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str, dtype: Any = None):
    """A torch dtype: ``dtype`` (a torch dtype or its name) if given, else bf16 on CUDA (fp16 on GPUs without
    bf16) and fp32 on CPU."""
    import torch

    if dtype is None:
        if not str(device).startswith("cuda"):
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if isinstance(dtype, str):
        names = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
        dtype = getattr(torch, names.get(dtype, dtype), None)
        if not isinstance(dtype, torch.dtype):
            raise UserError(f"unknown dtype {dtype!r}; use bfloat16, float16 or float32")
    return dtype


def pick_attention(device: str) -> str:
    """ "flash_attention_2" on CUDA when flash_attn is installed, else "sdpa"."""
    if str(device).startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def _warn_if_frame_is_resized(processor, frame) -> None:
    """Warn when the processor would resize the frame again (Qwen-VL: sides not multiples of patch * merge).

    The model then answers in the re-resized image's pixels, not in ``frame``, and mapping back is off.
    """
    ip = getattr(processor, "image_processor", None)
    patch, merge = getattr(ip, "patch_size", None), getattr(ip, "merge_size", None)
    if not isinstance(patch, int) or not isinstance(merge, int):
        return
    fw, fh = (frame, frame) if isinstance(frame, int) else frame
    factor = patch * merge
    if fw % factor or fh % factor:
        near = max(factor, round(max(fw, fh) / factor) * factor)
        warnings.warn(
            f"frame {frame!r} is not a multiple of {factor}: the processor resizes it again, so answers "
            f"are not in frame coordinates (use a multiple of {factor}, e.g. {near})",
            stacklevel=3,
        )


@dataclass
class Reasoner:
    """A loaded chat VLM plus its processor and the generation settings.

    ``frame``: the side (int) or (w, h) the image is resized to before the model sees it; answers are in it.
    ``prompt``: "segzero" (single object) or "visionreasoner" (multi object).
    """

    model: Any
    processor: Any
    name: str
    prompt: str = "segzero"
    frame: int | tuple[int, int] = DEFAULT_FRAME
    max_new_tokens: int = field(default=1024, metadata={"help": "generation length limit in tokens"})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy; > 0 samples"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass (with temperature > 0)"})
    batch_size: int = field(default=8, metadata={"help": "images per generate() forward batch"})
    system: str | None = field(default=None, metadata={"help": "system prompt; None = the template default"})

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_REASONER,
        *,
        prompt: str | None = None,
        frame: int | tuple[int, int] | None = None,
        device: str | None = None,
        dtype: Any = None,
        max_new_tokens: int = 1024,
        temperature: float = 0.0,
        top_p: float = 1.0,
        batch_size: int = 8,
        system: str | None = None,
        processor: str = "auto",
        attn_implementation: str | None = None,
    ) -> Reasoner:
        """Load a VLM from a hub id or a local folder.

        ``prompt`` and ``frame`` default from the folder's ``segzero.json`` when it has one, else from the id
        (``default_prompt_kind``) and 840. ``processor``: "auto" (stock when torchvision
        is installed), "image-only" or "stock". Raises ``UserError`` (one line) for a missing folder or a hub id
        that cannot be loaded.
        """
        from transformers import AutoModelForImageTextToText

        from segzero.models.processor import load_processor

        source = resolve_model_source(name_or_path, what="reasoner")
        kind, frame = resolve_prompt_and_frame(source, prompt=prompt, frame=frame)
        dev = pick_device(device)
        torch_dtype = pick_dtype(dev, dtype)
        try:
            model = AutoModelForImageTextToText.from_pretrained(
                source,
                dtype=torch_dtype,
                attn_implementation=attn_implementation or pick_attention(dev),
                device_map=None if dev == "cpu" else {"": dev},  # load straight onto the GPU
            )
            proc = load_processor(source, prefer=processor)
        except OSError as err:  # hub unreachable / unknown id / missing files (transformers raises OSError)
            raise hub_load_error(source, err, what="reasoner") from None
        model.eval()
        proc.tokenizer.padding_side = "left"
        _warn_if_frame_is_resized(proc, frame)
        return cls(
            model=model,
            processor=proc,
            name=source,
            prompt=kind,
            frame=frame,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            batch_size=batch_size,
            system=system,
        )

    @property
    def device(self):
        return next(self.model.parameters()).device

    def prompt_text(self, image, query: str) -> str:
        """The full chat-formatted prompt for one (frame image, query), generation prompt appended."""
        from segzero.prompts import build_messages

        messages = build_messages(image, query, kind=self.prompt, system=self.system)
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def to_frame(self, image):
        """The image the model sees: RGB, resized to ``frame`` (PIL in, PIL out)."""
        from segzero.images import load_image, resize_to_frame

        return resize_to_frame(load_image(image), self.frame)

    def build_inputs(self, images: list, queries: list[str]):
        """Model inputs (left-padded ``BatchFeature`` on the model's device) for frame-sized images and queries."""
        texts = [self.prompt_text(im, q) for im, q in zip(images, queries, strict=True)]
        inputs = self.processor(text=texts, images=list(images), padding=True, return_tensors="pt")
        return inputs.to(self.device)

    def generate(self, images: list, queries: list[str], **overrides) -> list[str]:
        """Raw completions, one per (image, query); images of any size (resized to the frame here).

        ``overrides`` replace ``max_new_tokens``/``temperature``/``top_p``/``batch_size`` for this call.
        Raises ``UserError`` for an empty query or mismatched list lengths.
        """
        import torch

        if len(images) != len(queries):
            raise UserError(f"got {len(images)} images but {len(queries)} queries")
        for q in queries:
            if not isinstance(q, str) or not q.strip():
                raise UserError(f"empty query: {q!r}")
        bad = set(overrides) - {"max_new_tokens", "temperature", "top_p", "batch_size"}
        if bad:
            raise TypeError(f"unknown generation settings: {sorted(bad)}")
        max_new_tokens = int(overrides.get("max_new_tokens", self.max_new_tokens))
        temperature = float(overrides.get("temperature", self.temperature))
        top_p = float(overrides.get("top_p", self.top_p))
        batch_size = max(1, int(overrides.get("batch_size", self.batch_size)))
        gen_kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens}
        if temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
        else:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        tok = self.processor.tokenizer
        gen_kwargs["pad_token_id"] = tok.pad_token_id

        out: list[str] = []
        for start in range(0, len(images), batch_size):
            frames = [self.to_frame(im) for im in images[start : start + batch_size]]
            inputs = self.build_inputs(frames, list(queries[start : start + batch_size]))
            with torch.inference_mode():
                seqs = self.model.generate(**inputs, **gen_kwargs)
            new = seqs[:, inputs["input_ids"].shape[1] :]
            out.extend(tok.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False))
        return out
