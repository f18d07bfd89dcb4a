"""An image-only processor for Qwen-VL-style chat models that needs neither torchvision nor a video processor.

The stock ``Qwen2_5_VLProcessor`` insists on a video processor, which imports torchvision. This module does
what the stock processor does for images and text:

1. image preprocessing numerically like transformers' slow (PIL) ``Qwen2VLImageProcessor``: RGB, the
   ``smart_resize`` rule (both sides multiples of ``patch_size * merge_size``, pixel count within
   ``[min_pixels, max_pixels]``), bicubic resize, scale to [0, 1], normalise with the CLIP mean/std, patchify
   into ``pixel_values`` of shape (sum of grid_t*grid_h*grid_w, C * temporal_patch_size * patch_size**2) and
   ``image_grid_thw`` (num_images, 3);
2. text: every ``<|image_pad|>`` is expanded to ``grid_t*grid_h*grid_w // merge_size**2`` copies, tokenised
   with padding (on the tokenizer's ``padding_side``; the Reasoner sets "left" for generation), and
   ``mm_token_type_ids`` marks image tokens with 1 (the model needs it for its 3-D rotary positions);
3. the chat template: the processor's own, read as the stock processor reads it (``processor_chat_template``:
   ``processor_config.json``, then ``chat_template.json``, then ``chat_template.jinja``), never the tokenizer's
   ``tokenizer_config.json`` one, which for Qwen2.5-VL checkpoints is a different (tool-calling) template.

Use ``load_processor(path)``: the stock ``AutoProcessor`` when torchvision is installed, else (or when the
stock one raises ImportError) ``ImageOnlyProcessor.from_pretrained(path)`` (``prefer="image-only"`` forces this
one). Both expose ``apply_chat_template``, ``__call__(text=..., images=...)``, ``batch_decode`` and ``.tokenizer``.
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def smart_resize(
    height: int, width: int, *, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280
) -> tuple[int, int]:
    """Qwen-VL's resize rule: ``(h, w)`` multiples of ``factor``, ``h*w`` in ``[min_pixels, max_pixels]``.

    Same arithmetic as transformers' ``qwen2_vl.image_processing_qwen2_vl.smart_resize``; raises ValueError for
    an aspect ratio above 200.
    """
    if max(height, width) / min(height, width) > 200:
        raise ValueError(
            f"absolute aspect ratio must be smaller than 200, got {max(height, width) / min(height, width)}"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass
class QwenImagePreprocessor:
    """Qwen-VL image preprocessing in numpy (the slow processor's arithmetic)."""

    patch_size: int = field(default=14, metadata={"help": "vision patch side in pixels"})
    temporal_patch_size: int = field(default=2, metadata={"help": "frames per patch (an image is repeated)"})
    merge_size: int = field(default=2, metadata={"help": "patches merged per side into one LLM token"})
    min_pixels: int = field(default=56 * 56, metadata={"help": "lower bound on resized h*w"})
    max_pixels: int = field(default=28 * 28 * 1280, metadata={"help": "upper bound on resized h*w"})
    image_mean: tuple[float, ...] = OPENAI_CLIP_MEAN
    image_std: tuple[float, ...] = OPENAI_CLIP_STD
    processor_class: str = field(
        default="Qwen2_5_VLProcessor", metadata={"help": "the stock processor class written into the saved config"}
    )

    @classmethod
    def from_config(cls, cfg: dict) -> QwenImagePreprocessor:
        """From a ``preprocessor_config.json`` dict (``size`` = shortest/longest edge, or min/max_pixels)."""
        size = cfg.get("size") or {}
        return cls(
            patch_size=int(cfg.get("patch_size", 14)),
            temporal_patch_size=int(cfg.get("temporal_patch_size", 2)),
            merge_size=int(cfg.get("merge_size", 2)),
            min_pixels=int(cfg.get("min_pixels") or size.get("shortest_edge") or 56 * 56),
            max_pixels=int(cfg.get("max_pixels") or size.get("longest_edge") or 28 * 28 * 1280),
            image_mean=tuple(cfg.get("image_mean", OPENAI_CLIP_MEAN)),
            image_std=tuple(cfg.get("image_std", OPENAI_CLIP_STD)),
            processor_class=str(cfg.get("processor_class", "Qwen2_5_VLProcessor")),
        )

    def to_config(self) -> dict:
        """The ``preprocessor_config.json`` content, in the hub checkpoints' form."""
        return {
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "size": {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels},
            "patch_size": self.patch_size,
            "temporal_patch_size": self.temporal_patch_size,
            "merge_size": self.merge_size,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "do_resize": True,
            "do_rescale": True,
            "do_normalize": True,
            "do_convert_rgb": True,
            "resample": 3,
            "rescale_factor": 1 / 255,
            "image_processor_type": "Qwen2VLImageProcessor",
            "processor_class": self.processor_class,
        }

    def preprocess_one(self, image: Image.Image) -> tuple[np.ndarray, tuple[int, int, int]]:
        """One image -> (patches (grid_h*grid_w, C*T*P*P) float32, (1, grid_h, grid_w))."""
        image = image.convert("RGB")
        p, m, t = self.patch_size, self.merge_size, self.temporal_patch_size
        h, w = smart_resize(
            image.height, image.width, factor=p * m, min_pixels=self.min_pixels, max_pixels=self.max_pixels
        )
        if (w, h) != image.size:
            image = image.resize((w, h), resample=Image.Resampling.BICUBIC)
        arr = np.asarray(image).astype(np.float64) * (1 / 255)
        arr = ((arr - np.asarray(self.image_mean)) / np.asarray(self.image_std)).astype(np.float32)
        arr = np.moveaxis(arr, -1, 0)  # (C, H, W)
        c = arr.shape[0]
        gh, gw = h // p, w // p
        patches = arr.reshape(c, gh // m, m, p, gw // m, m, p).transpose(1, 4, 2, 5, 0, 3, 6)
        patches = np.broadcast_to(patches[:, :, :, :, :, None], (*patches.shape[:5], t, p, p))
        return np.ascontiguousarray(patches).reshape(gh * gw, c * t * p * p), (1, gh, gw)

    def __call__(self, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """Images -> (pixel_values (sum of patches, patch_dim) float32, image_grid_thw (N, 3) int64)."""
        outs = [self.preprocess_one(im) for im in images]
        return np.concatenate([o[0] for o in outs], axis=0), np.asarray([o[1] for o in outs], dtype=np.int64)


def write_image_processor_config(path: str | Path, preprocessor: QwenImagePreprocessor | None = None) -> Path:
    """Write ``preprocessor_config.json`` (Qwen2-VL's defaults unless ``preprocessor`` is given) into ``path``."""
    out = Path(path) / "preprocessor_config.json"
    out.write_text(json.dumps((preprocessor or QwenImagePreprocessor()).to_config(), indent=2))
    return out


# The files a processor's chat template is read from, in the order transformers' ProcessorMixin reads them (the first
# one present wins): a "chat_template" entry of processor_config.json, the legacy chat_template.json, chat_template.jinja.
PROCESSOR_CONFIG_FILE = "processor_config.json"
LEGACY_CHAT_TEMPLATE_FILE = "chat_template.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"


def processor_chat_template(path: str | Path) -> str | None:
    """The chat template the stock processor of a folder (or a cached hub id) renders with, None when it has none.

    The precedence is transformers': ``processor_config.json``'s ``chat_template``, then ``chat_template.json``,
    then ``chat_template.jinja``. The tokenizer's own template (``tokenizer_config.json``) is not among them: in
    ``Qwen/Qwen2.5-VL-7B-Instruct`` and the checkpoints trained from it, that one is the text model's tool-calling
    template, which renders an image message differently.
    """
    from transformers.utils import cached_file

    def read(name: str) -> str | None:
        found = cached_file(str(path), name, _raise_exceptions_for_missing_entries=False)
        return Path(found).read_text(encoding="utf-8") if found else None

    processor_config = read(PROCESSOR_CONFIG_FILE)
    if processor_config is not None:
        template = json.loads(processor_config).get("chat_template")
        if isinstance(template, str):
            return template
    legacy = read(LEGACY_CHAT_TEMPLATE_FILE)
    if legacy is not None:
        return json.loads(legacy)["chat_template"]
    return read(CHAT_TEMPLATE_FILE)


class ImageOnlyProcessor:
    """Tokenizer + ``QwenImagePreprocessor``, called like the stock Qwen-VL processor for images and text.

    ``image_token`` is the placeholder the chat template writes once per image (``<|image_pad|>``).
    """

    def __init__(
        self,
        tokenizer,
        image_preprocessor: QwenImagePreprocessor,
        *,
        image_token: str = "<|image_pad|>",
        chat_template: str | None = None,
    ):
        """``chat_template``: the processor's own template (``processor_chat_template`` of a folder); None renders
        with the tokenizer's."""
        self.tokenizer = tokenizer
        self.image_processor = image_preprocessor
        self.image_token = image_token
        self.image_token_id = tokenizer.convert_tokens_to_ids(image_token)
        self.chat_template = chat_template if chat_template is not None else getattr(tokenizer, "chat_template", None)

    @classmethod
    def from_pretrained(cls, path: str | Path, **tokenizer_kwargs) -> ImageOnlyProcessor:
        """Load from a local folder (or a hub id already in the local cache) with a tokenizer and image config."""
        from transformers import AutoTokenizer
        from transformers.utils import cached_file

        tokenizer = AutoTokenizer.from_pretrained(str(path), **tokenizer_kwargs)
        cfg_file = cached_file(str(path), "preprocessor_config.json", _raise_exceptions_for_missing_entries=False)
        if cfg_file:
            cfg = json.loads(Path(cfg_file).read_text())
        else:  # saved by a stock processor of a newer transformers: the image settings nest in processor_config.json
            combined = cached_file(str(path), "processor_config.json", _raise_exceptions_for_missing_entries=False)
            cfg = json.loads(Path(combined).read_text()).get("image_processor") if combined else None
            if not isinstance(cfg, dict):
                raise OSError(
                    f"{path} has no image processor settings (preprocessor_config.json or processor_config.json)"
                )
        template = processor_chat_template(path)
        if template is None:
            raise OSError(
                f"{path} has no chat template for its processor (chat_template.json, chat_template.jinja or a "
                "chat_template entry of processor_config.json)"
            )
        return cls(tokenizer, QwenImagePreprocessor.from_config(cfg), chat_template=template)

    def apply_chat_template(self, messages, **kwargs):
        """The processor's chat template rendered by the tokenizer (``tokenize=False`` gives the prompt string);
        ``chat_template=`` renders another one."""
        template = kwargs.pop("chat_template", None) or self.chat_template
        return self.tokenizer.apply_chat_template(messages, chat_template=template, **kwargs)

    def __call__(
        self,
        text: str | list[str],
        images: list[Image.Image] | None = None,
        *,
        padding: bool | str = True,
        padding_side: str | None = None,
        return_tensors: str = "pt",
        add_special_tokens: bool = False,
        **_unused,
    ):
        """Texts (one ``image_token`` per image, images in order of appearance) -> a ``BatchFeature``.

        Keys: ``input_ids``/``attention_mask`` (B, L), ``mm_token_type_ids`` (B, L) 1 at image tokens,
        ``pixel_values`` and ``image_grid_thw`` when images are given. ``padding_side`` defaults to the
        tokenizer's (set it to "left" for generation).
        """
        from transformers import BatchFeature

        texts = [text] if isinstance(text, str) else list(text)
        data: dict = {}
        if images:
            pixel_values, grid_thw = self.image_processor(list(images))
            merge = self.image_processor.merge_size**2
            counts = iter([int(np.prod(g)) // merge for g in grid_thw])
            marker = "<<segzero-image>>"
            expanded = []
            for t in texts:
                t = t.replace(self.image_token, marker)
                while marker in t:
                    t = t.replace(marker, self.image_token * next(counts), 1)
                expanded.append(t)
            texts = expanded
            data["pixel_values"] = pixel_values
            data["image_grid_thw"] = grid_thw
        enc = self.tokenizer(
            texts,
            padding=padding,
            padding_side=padding_side or self.tokenizer.padding_side,
            add_special_tokens=add_special_tokens,
        )
        data["input_ids"] = enc["input_ids"]
        data["attention_mask"] = enc["attention_mask"]
        data["mm_token_type_ids"] = [[int(i == self.image_token_id) for i in ids] for ids in enc["input_ids"]]
        return BatchFeature(data=data, tensor_type=return_tensors)

    def batch_decode(self, sequences, **kwargs) -> list[str]:
        return self.tokenizer.batch_decode(sequences, **kwargs)

    def decode(self, ids, **kwargs) -> str:
        return self.tokenizer.decode(ids, **kwargs)


def torchvision_available() -> bool:
    """Whether torchvision can be imported (the stock Qwen-VL processor needs it)."""
    return importlib.util.find_spec("torchvision") is not None


def load_processor(path: str | Path, *, prefer: str = "auto", **kwargs):
    """The processor for a model folder or hub id.

    ``prefer="auto"``: the stock ``AutoProcessor`` when torchvision is installed and the stock processor
    loads; ``ImportError`` from it (torchvision missing or broken) falls back to ``ImageOnlyProcessor``.
    ``"image-only"`` / ``"stock"`` force one.
    """
    if prefer not in ("auto", "image-only", "stock"):
        raise ValueError(f"prefer must be 'auto', 'image-only' or 'stock', got {prefer!r}")
    if prefer == "stock" or (prefer == "auto" and torchvision_available()):
        from transformers import AutoProcessor

        try:
            return AutoProcessor.from_pretrained(str(path), **kwargs)
        except ImportError:
            if prefer == "stock":
                raise
    return ImageOnlyProcessor.from_pretrained(path, **kwargs)
