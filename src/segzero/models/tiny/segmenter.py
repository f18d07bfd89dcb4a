"""A tiny random-weight SAM2 (transformers ``Sam2Model``) saved to disk, for offline tests and setup checks.

    from segzero.models.tiny.segmenter import build_tiny_segmenter
    path = build_tiny_segmenter("/tmp/tiny/segmenter")     # config.json, model.safetensors, preprocessor_config.json
    Segmenter.from_pretrained(path)                         # the same loading code as facebook/sam2-hiera-large

Architecture as the released SAM2 (Hiera backbone with 4 stages and a global-attention block, FPN neck, prompt
encoder, two-way mask decoder with 3 candidate masks), at 1024 x 1024 input, but with widths of 8-64 channels:
about 160k parameters (< 1 MB), built in well under a second, one image embedding in about 0.1 s on one CPU core.
Weights are random (seeded), so masks are meaningless but deterministic. The ``preprocessor_config.json`` is the
one a real transformers ``Sam2Processor`` reads (``Sam2Processor.from_pretrained(path)`` works with torchvision).
"""

from __future__ import annotations

import json
from pathlib import Path

from segzero.models.sam2_processing import Sam2PreprocessConfig

TINY_HIDDEN = 32  # width of the FPN neck, prompt encoder and mask decoder


def tiny_sam2_config(*, image_size: int = 1024, hidden: int = TINY_HIDDEN):
    """A ``Sam2Config`` with SAM2's structure and tiny widths; ``image_size`` must be a multiple of 128."""
    from transformers import Sam2Config

    if image_size % 128:
        raise ValueError(f"tiny SAM2 image_size must be a multiple of 128, got {image_size}")
    levels = [[image_size // (4 << i)] * 2 for i in range(3)]  # 256, 128, 64 at 1024 input
    return Sam2Config(
        vision_config={
            "model_type": "sam2_vision_model",
            "backbone_config": {
                "model_type": "sam2_hiera_det_model",
                "image_size": [image_size, image_size],
                "hidden_size": 8,
                "num_attention_heads": 1,
                "blocks_per_stage": [1, 1, 1, 2],
                "embed_dim_per_stage": [8, 16, 32, 64],
                "num_attention_heads_per_stage": [1, 1, 1, 1],
                "window_size_per_stage": [8, 4, 14, 7],
                "global_attention_blocks": [4],  # the last block attends globally, as in SAM2
            },
            "backbone_channel_list": [64, 32, 16, 8],
            "backbone_feature_sizes": levels,
            "fpn_hidden_size": hidden,
        },
        prompt_encoder_config={"hidden_size": hidden, "image_size": image_size, "mask_input_channels": 4},
        mask_decoder_config={
            "hidden_size": hidden,
            "mlp_dim": 2 * hidden,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": hidden,
        },
    )


def tiny_sam2_video_config(*, image_size: int = 1024, hidden: int = TINY_HIDDEN):
    """The same tiny SAM2 as a ``Sam2VideoConfig`` (the format of the hub's ``facebook/sam2-*`` checkpoints),
    with its memory modules shrunk to match."""
    from transformers import Sam2VideoConfig

    image = tiny_sam2_config(image_size=image_size, hidden=hidden)
    return Sam2VideoConfig(
        vision_config=image.vision_config.to_dict(),
        prompt_encoder_config=image.prompt_encoder_config.to_dict(),
        mask_decoder_config=image.mask_decoder_config.to_dict(),
        image_size=image_size,
        memory_attention_hidden_size=hidden,
        memory_attention_feed_forward_hidden_size=2 * hidden,
        memory_encoder_hidden_size=hidden,
        memory_encoder_output_channels=hidden // 2,
        mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden,
        memory_fuser_intermediate_dim=2 * hidden,
    )


def build_tiny_segmenter(
    path: str | Path, *, seed: int = 0, image_size: int = 1024, checkpoint_format: str = "sam2"
) -> Path:
    """Build the tiny SAM2 with ``seed`` and save it (weights, config, preprocessor config) to ``path``.

    ``checkpoint_format``: "sam2" (a ``Sam2Model``) or "sam2_video" (a ``Sam2VideoModel``, as the hub's
    ``facebook/sam2-hiera-large`` is stored; its image part is what the segmenter loads).
    """
    from transformers import Sam2Model, Sam2VideoModel

    if checkpoint_format not in ("sam2", "sam2_video"):
        raise ValueError(f"checkpoint_format must be 'sam2' or 'sam2_video', got {checkpoint_format!r}")
    model_class, config = (
        (Sam2Model, tiny_sam2_config(image_size=image_size))
        if checkpoint_format == "sam2"
        else (Sam2VideoModel, tiny_sam2_video_config(image_size=image_size))
    )
    preprocess = Sam2PreprocessConfig(size=(image_size, image_size))
    return save_seeded_model(path, model_class, config, seed=seed, preprocess=preprocess)


def save_seeded_model(path: str | Path, model_class, config, *, seed: int, preprocess: Sam2PreprocessConfig) -> Path:
    """``model_class(config)`` with random weights drawn under torch seed ``seed`` (the caller's RNG state
    untouched), saved to ``path`` (weights and config) with ``preprocess`` as its ``preprocessor_config.json``."""
    import torch

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config).eval()
    model.save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps(preprocess.to_dict(), indent=2) + "\n")
    return path


__all__ = ["build_tiny_segmenter", "tiny_sam2_config", "tiny_sam2_video_config"]
