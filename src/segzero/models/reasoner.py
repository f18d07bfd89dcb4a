"""The reasoning model: a chat VLM (Qwen2.5-VL first) that answers with ``<think>..</think><answer>..</answer>``.

``Reasoner.from_pretrained(name_or_path)`` loads any ``AutoModelForImageTextToText`` chat VLM from the hub or
a local folder; ``reasoner.generate(images, queries)`` returns the raw completions. Images are resized to the
model frame (840 x 840 by default, ``frame``), so the answers' coordinates are in that frame, unless the checkpoint
answers in a frame of its own (``answer_frame``: 1000 for the ``qwen3vl`` family's relative coordinates, whatever
``frame`` is; see ``segzero.geometry``). Usage::

    from segzero.models.reasoner import Reasoner
    r = Reasoner.from_pretrained("Ricky06662/Seg-Zero-7B")          # single-object prompt
    r = Reasoner.from_pretrained("Ricky06662/VisionReasoner-7B")    # multi-object prompt
    r = Reasoner.from_pretrained("./checkpoints/vr7b")              # a local copy: the family its files name
    r = Reasoner.from_pretrained("/tmp/tiny/reasoner", frame=112)   # any local folder
    r = Reasoner.from_pretrained("Qwen/Qwen3-VL-4B-Instruct")       # qwen3vl prompt, answers relative 0..1000
    texts = r.generate([pil_image], ["the cup on the left"])

Which prompt, frame and generation limit a checkpoint gets, and whether a local folder holds its weights, is
``segzero.models.checkpoint`` (its names are importable from here too).

Device and dtype: CUDA with bf16 and sdpa attention (flash-attention 2 when ``flash_attn`` is installed),
otherwise CPU with fp32. Generation is greedy unless ``temperature > 0``; batches are left-padded.
The processor is the stock ``AutoProcessor`` when torchvision is installed, else the image-only processor
of ``segzero.models.processor`` (the stock Qwen-VL one needs torchvision for its video half).
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segzero.errors import UserError
from segzero.geometry import DEFAULT_FRAME
from segzero.models.base import DEFAULT_REASONER
from segzero.models.checkpoint import (  # re-exported: the names callers import from here
    MODEL_INFO_FILE,
    PROMPT_PRESETS,
    SHIPPED_REASONER,
    default_max_new_tokens,
    default_prompt_kind,
    detect_prompt_kind,
    expand_shipped,
    missing_weights,
    read_model_info,
    recorded_segmenter,
    recorded_world,
    resolve_answer_frame,
    resolve_prompt_and_frame,
    write_model_info,
)


def _looks_like_hub_id(name: str) -> bool:
    """``owner/name`` (or a bare name) that is not written as a filesystem path."""
    if name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1:
        return False
    return all(part and part not in (".", "..") for part in name.split("/"))


class ModelSource(str):
    """A model reference ``resolve_model_source`` accepted (a ``str``: a local folder or a hub id), resolved once:
    the ``from_pretrained`` it is passed to loads it without checking it (or probing the hub) again."""

    __slots__ = ()


def resolve_model_source(name_or_path: str | Path, *, what: str = "model") -> ModelSource:
    """Check that a model reference can be loaded; return it as a ``ModelSource`` for ``from_pretrained``.

    An existing folder must hold a ``config.json`` (or a PEFT ``adapter_config.json``, which transformers loads
    on top of its base model when peft is installed); a path-like name that does not exist raises
    ``UserError("<what> folder not found: ...")``. A hub id is returned unchanged once ``check_hub_reachable``
    passes (loading reports any later failure). ``"shipped"`` is the shapes model inside the package
    (``SHIPPED_REASONER``). A ``ModelSource`` is returned as it is.
    """
    if isinstance(name_or_path, ModelSource):
        return name_or_path
    name = expand_shipped(name_or_path)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UserError(f"{what} path is not a folder: {name}")
        if not ((path / "config.json").is_file() or (path / "adapter_config.json").is_file()):
            raise UserError(f"{what} folder has no config.json (not a saved model): {name}")
        return ModelSource(path)
    if not _looks_like_hub_id(name):
        raise UserError(f"{what} folder not found: {name}")
    check_hub_reachable(name, what=what)
    return ModelSource(name)


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

    ``frame``: the side (int) or (w, h) the image is resized to before the model sees it; answers are in it unless
    ``answer_frame`` says otherwise. ``answer_frame``: the frame the answers are in when it is not ``frame``
    (relative coordinates: 1000 for the ``qwen3vl`` family), None when they are in ``frame``.
    ``prompt``: the prompt family (``segzero.prompts.PROMPT_KINDS``).
    ``resize_in_stored_mode``: how a PIL image that is not RGB reaches the frame (see ``to_frame``).
    """

    model: Any
    processor: Any
    name: str
    prompt: str = "segzero"
    frame: int | tuple[int, int] = DEFAULT_FRAME
    answer_frame: int | tuple[int, int] | None = field(
        default=None, metadata={"help": "frame of the answers' coordinates when not the pixel frame (None: frame)"}
    )
    max_new_tokens: int = field(default=1024, metadata={"help": "generation length limit in tokens"})
    resize_in_stored_mode: bool = field(
        default=False, metadata={"help": "resize non-RGB images before converting them (Seg-Zero's evaluation)"}
    )
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
        answer_frame: int | tuple[int, int] | None = None,
        device: str | None = None,
        dtype: Any = None,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        batch_size: int = 8,
        system: str | None = None,
        processor: str = "auto",
        attn_implementation: str | None = None,
        resize_in_stored_mode: bool = False,
    ) -> Reasoner:
        """Load a VLM from a hub id or a local folder (a ``ModelSource`` is not resolved again).

        ``prompt`` defaults to the family the checkpoint's own files name (``detect_prompt_kind``: its
        ``segzero.json``, model card, config, else its architecture or its name, with a warning line when guessed);
        ``frame`` to the folder's ``segzero.json``, else 840; ``answer_frame`` to ``resolve_answer_frame`` (its
        ``segzero.json``, else the family's: 1000 for ``qwen3vl``, else None: the answers are in ``frame``);
        ``max_new_tokens`` to the family's reference scripts' limit (``MAX_NEW_TOKENS``: 1024 Seg-Zero, 2048
        VisionReasoner and qwen3vl). ``processor``: "auto" (stock when torchvision is installed), "image-only" or
        "stock". Raises ``UserError`` (one line) for a missing folder, a folder
        without (all of) its weights, or a hub id that cannot be loaded.
        """
        from transformers import AutoModelForImageTextToText

        from segzero.models.processor import load_processor

        source = resolve_model_source(name_or_path, what="reasoner")
        local = Path(source).is_dir()
        if local and (why := missing_weights(Path(source))):
            raise UserError(f"reasoner folder {source}: {why}")
        kind, frame = resolve_prompt_and_frame(source, prompt=prompt, frame=frame)
        answer_frame = resolve_answer_frame(source, kind, answer_frame=answer_frame)
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
            if local:
                first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                raise UserError(f"cannot load reasoner folder {source}: {first[:200]}") from None
            raise hub_load_error(source, err, what="reasoner") from None
        model.eval()
        proc.tokenizer.padding_side = "left"
        if answer_frame is None:  # relative answers do not move when the processor resizes the image again
            _warn_if_frame_is_resized(proc, frame)
        return cls(
            model=model,
            processor=proc,
            name=source,
            prompt=kind,
            frame=frame,
            answer_frame=answer_frame,
            max_new_tokens=default_max_new_tokens(kind) if max_new_tokens is None else max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            batch_size=batch_size,
            system=system,
            resize_in_stored_mode=resize_in_stored_mode,
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
        """The image the model sees: RGB, resized to ``frame`` (PIL in, PIL out).

        segzero converts first (``load_image``: EXIF orientation, transparency onto white, 16-bit scaled), then
        resizes. Seg-Zero's ReasonSeg evaluation script resizes a dataset image in its stored mode and converts
        after, so for a palette ("P") or 1-bit image Pillow resizes with NEAREST whatever filter was asked, and a
        grey or RGBA one is filtered before conversion. ``resize_in_stored_mode=True`` does that for PIL images
        given here in a mode other than RGB (the pipeline and ``segzero eval`` load images as RGB first, so there
        it changes nothing); RGB images are the same either way.
        """
        from PIL import Image, ImageOps

        from segzero.images import ensure_loaded, load_image, resize_to_frame

        if self.resize_in_stored_mode and isinstance(image, Image.Image) and image.mode != "RGB":
            return load_image(resize_to_frame(ImageOps.exif_transpose(image), self.frame))
        return resize_to_frame(ensure_loaded(image), self.frame)

    def build_inputs(self, images: list, queries: list[str]):
        """Model inputs (left-padded ``BatchFeature`` on the model's device) for frame-sized images and queries."""
        texts = [self.prompt_text(im, q) for im, q in zip(images, queries, strict=True)]
        inputs = self.processor(text=texts, images=list(images), padding=True, return_tensors="pt")
        return inputs.to(self.device)

    def generate(self, images: list, queries: list[str], **overrides) -> list[str]:
        """Raw completions, one per (image, query); images of any size (resized to the frame here, ``to_frame``).

        The pipeline passes images it loaded and queries it checked; given here directly, an image is loaded
        (``load_image``) unless it already is a loaded one, and an empty query is refused where its prompt is built
        (``segzero.prompts.normalize_query``). ``overrides`` replace ``max_new_tokens``/``temperature``/``top_p``/
        ``batch_size`` for this call. Raises ``UserError`` for an empty query or mismatched list lengths.
        """
        import torch

        if len(images) != len(queries):
            raise UserError(f"got {len(images)} images but {len(queries)} queries")
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


__all__ = [
    "MODEL_INFO_FILE",
    "PROMPT_PRESETS",
    "SHIPPED_REASONER",
    "ModelSource",
    "Reasoner",
    "check_hub_reachable",
    "default_prompt_kind",
    "detect_prompt_kind",
    "expand_shipped",
    "hub_load_error",
    "pick_attention",
    "pick_device",
    "pick_dtype",
    "read_model_info",
    "recorded_segmenter",
    "recorded_world",
    "resolve_answer_frame",
    "resolve_model_source",
    "resolve_prompt_and_frame",
    "write_model_info",
]
