"""SAM2 pre- and post-processing with torch only (no torchvision), numerically matching transformers' ``Sam2Processor``.

transformers' ``Sam2ImageProcessor`` imports torchvision; this module re-implements the three steps the segmenter
needs so SAM2 runs where torchvision is not installed:

1. ``preprocess_image``: PIL image -> ``pixel_values`` (1, 3, S_h, S_w) float32: convert to RGB (transparency
   composited onto white), resize the uint8 image to the model input size (1024 x 1024 for the released SAM2,
   aspect ratio not kept, bilinear with antialias, the same uint8/float path torchvision takes), rescale by 1/255
   and normalise with the ImageNet mean/std (fused, as the processor does), channels first.
2. ``to_input_frame``: (x, y) coordinates in original-image pixels -> the model input frame
   (``x * S_w / W``, ``y * S_h / H``), as ``Sam2Processor`` normalises points and boxes.
3. ``upsample_logits``: low-resolution mask logits (N, h, w) -> (N, H, W) logits at the original image size
   (bilinear, ``align_corners=False``); ``logits > mask_threshold`` (0.0) is the mask.

``Sam2PreprocessConfig.from_dict`` reads the fields of a ``preprocessor_config.json`` (the file a real
``Sam2Processor`` reads), so a model with a different input size works unchanged. tests/test_segmenter.py
compares against the transformers processor when torchvision is importable.

Transparency is composited onto white on every transformers version, so a mask does not depend on the installed
transformers. transformers' own ``convert_to_rgb`` does the same from 5.21 on; before that it dropped the alpha
channel (the colour under a transparent pixel showed). ``transformers_composites_alpha`` says which behaviour the
installed transformers has: the one place that version difference is recorded (the parity test reads it).
"""

from __future__ import annotations

import json
import platform
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# PIL resampling codes (as stored in preprocessor_config.json) -> torch interpolate modes we reproduce exactly.
_RESAMPLE_MODES = {0: "nearest-exact", 2: "bilinear", 3: "bicubic"}


@dataclass(frozen=True)
class Sam2PreprocessConfig:
    """The preprocessing parameters of a SAM2 checkpoint (the fields of its ``preprocessor_config.json``)."""

    size: tuple[int, int] = field(default=(1024, 1024), metadata={"help": "model input (height, width) in pixels"})
    image_mean: tuple[float, float, float] = field(default=IMAGENET_MEAN, metadata={"help": "per-channel mean"})
    image_std: tuple[float, float, float] = field(default=IMAGENET_STD, metadata={"help": "per-channel std"})
    rescale_factor: float = field(default=1 / 255, metadata={"help": "uint8 -> [0, 1] factor"})
    do_resize: bool = field(default=True, metadata={"help": "resize to `size` (aspect ratio not kept)"})
    do_rescale: bool = field(default=True, metadata={"help": "multiply by `rescale_factor`"})
    do_normalize: bool = field(default=True, metadata={"help": "subtract mean, divide by std"})
    do_convert_rgb: bool = field(default=True, metadata={"help": "convert to RGB, alpha onto white"})
    resample: int = field(default=2, metadata={"help": "PIL resampling code: 0 nearest, 2 bilinear, 3 bicubic"})

    def __post_init__(self) -> None:
        if self.resample not in _RESAMPLE_MODES:
            raise ValueError(f"unsupported SAM2 resample code {self.resample} (supported: {sorted(_RESAMPLE_MODES)})")
        if min(self.size) < 1:
            raise ValueError(f"SAM2 input size must be positive, got {self.size}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sam2PreprocessConfig:
        """Read a ``preprocessor_config.json`` dict; missing fields keep the SAM2 defaults, unknown ones are ignored."""
        kwargs: dict[str, Any] = {}
        size = data.get("size")
        if isinstance(size, dict) and "height" in size and "width" in size:
            kwargs["size"] = (int(size["height"]), int(size["width"]))
        elif isinstance(size, int):
            kwargs["size"] = (size, size)
        for key in ("image_mean", "image_std"):
            if data.get(key) is not None:
                kwargs[key] = tuple(float(v) for v in data[key])
        if data.get("rescale_factor") is not None:
            kwargs["rescale_factor"] = float(data["rescale_factor"])
        for key in ("do_resize", "do_rescale", "do_normalize", "do_convert_rgb"):
            if data.get(key) is not None:
                kwargs[key] = bool(data[key])
        if data.get("resample") is not None:
            kwargs["resample"] = int(data["resample"])
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str | Path) -> Sam2PreprocessConfig:
        """Read a ``preprocessor_config.json`` file."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict[str, Any]:
        """The ``preprocessor_config.json`` content a transformers ``Sam2Processor`` also reads."""
        data = asdict(self)
        height, width = self.size
        data["size"] = {"height": height, "width": width}
        data["mask_size"] = {"height": height // 4, "width": width // 4}
        data["image_mean"] = list(self.image_mean)
        data["image_std"] = list(self.image_std)
        data["image_processor_type"] = "Sam2ImageProcessor"
        data["processor_class"] = "Sam2Processor"
        return data


# The first transformers release whose convert_to_rgb composites transparency onto white (earlier: alpha dropped).
TRANSFORMERS_ALPHA_ON_WHITE = (5, 21)


def transformers_composites_alpha(version: str | None = None) -> bool:
    """True when transformers ``version`` (default: the installed one) composites transparency onto white in its
    image processors, as ``to_rgb_array`` always does; False when it drops the alpha channel instead.

    >>> [transformers_composites_alpha(v) for v in ("4.57.6", "5.20.2", "5.21.0", "6.0.0.dev0")]
    [False, False, True, True]
    """
    if version is None:
        from importlib.metadata import version as installed_version

        version = installed_version("transformers")
    release = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    return release >= TRANSFORMERS_ALPHA_ON_WHITE


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """PIL image -> (H, W, 3) uint8 RGB; any transparency is composited onto white (as transformers >= 5.21 does)."""
    has_alpha = "A" in image.getbands() or image.info.get("transparency") is not None
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.array(image.convert("RGB"), dtype=np.uint8)


def _resize_uint8(image: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize a (B, C, H, W) uint8 tensor to ``size`` the way torchvision's ``resize`` does.

    torchvision 0.28 (checked; the release for torch 2.13) resizes uint8 natively on CPU for nearest, bicubic and, on AVX2/AVX512/ARM CPUs,
    bilinear; otherwise it goes through float32 and rounds back to uint8. Both paths are reproduced so the values
    match bit for bit.
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    simd = torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") or platform.machine() in ("aarch64", "arm64")
    on_cpu = image.device.type == "cpu"  # elsewhere: the float path (uint8 antialiased resize is CPU-only)
    native = on_cpu and (mode in ("nearest-exact", "bicubic") or (mode == "bilinear" and simd))
    align_corners = None if mode == "nearest-exact" else False
    antialias = mode != "nearest-exact"
    work = image if native else image.to(torch.float32)
    out = F.interpolate(work, size=list(size), mode=mode, align_corners=align_corners, antialias=antialias)
    if not native:
        out = out.round_().to(torch.uint8)
    return out


def preprocess_image(
    image: Image.Image, config: Sam2PreprocessConfig, *, device: torch.device | str | None = None
) -> tuple[torch.Tensor, tuple[int, int]]:
    """PIL image -> (``pixel_values`` (1, 3, S_h, S_w) float32 on ``device`` (None = CPU), original size (H, W)).

    On an accelerator the uint8 image is copied there first and resized and normalised there (a 1024 x 1024
    float32 input is ~12 MB; the uint8 original is a quarter of its pixel count's bytes), through torch's float
    path rounded back to uint8, as torchvision resizes on CUDA; on the CPU the path is torchvision's CPU one."""
    if config.do_convert_rgb:
        array = to_rgb_array(image)
    else:
        array = np.array(image)
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
    original_size = (int(array.shape[0]), int(array.shape[1]))
    pixels = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous().unsqueeze(0)
    if device is not None:
        pixels = pixels.to(device)
    if config.do_resize:
        pixels = _resize_uint8(pixels, config.size, _RESAMPLE_MODES[config.resample])
    pixels = pixels.to(torch.float32)
    if config.do_normalize:
        mean = torch.tensor(config.image_mean, dtype=torch.float32, device=pixels.device)
        std = torch.tensor(config.image_std, dtype=torch.float32, device=pixels.device)
        if config.do_rescale:  # fused rescale + normalise, exactly as transformers computes it
            mean = mean * (1.0 / config.rescale_factor)
            std = std * (1.0 / config.rescale_factor)
        pixels = pixels.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))
    elif config.do_rescale:
        pixels = pixels * config.rescale_factor
    return pixels, original_size


def to_input_frame(coords: torch.Tensor, original_size: tuple[int, int], config: Sam2PreprocessConfig) -> torch.Tensor:
    """(..., 2) float32 (x, y) in original pixels -> the model input frame: ``x * S_w / W``, ``y * S_h / H``."""
    height, width = original_size
    target_h, target_w = config.size
    out = coords.to(torch.float32).clone()
    out[..., 0] = out[..., 0] * (target_w / width)
    out[..., 1] = out[..., 1] * (target_h / height)
    return out


def upsample_logits(logits: torch.Tensor, original_size: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) low-resolution mask logits -> (N, H, W) float32 logits at the original image size (bilinear)."""
    up = F.interpolate(
        logits[:, None].to(torch.float32), size=list(original_size), mode="bilinear", align_corners=False
    )
    return up[:, 0]


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Sam2PreprocessConfig",
    "preprocess_image",
    "to_input_frame",
    "to_rgb_array",
    "transformers_composites_alpha",
    "upsample_logits",
]
