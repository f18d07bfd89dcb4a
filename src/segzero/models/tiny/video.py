"""Tiny random-weight video models (transformers ``Sam2VideoModel``, ``Sam3TrackerVideoModel``) saved to disk, for
offline tests of video propagation and of everything that loads a ``sam2_video`` checkpoint.

    from segzero.models.tiny.video import build_tiny_sam3_tracker, build_tiny_video_segmenter
    path = build_tiny_video_segmenter("/tmp/tiny/video_segmenter")   # config.json, model.safetensors, preprocessor
    VideoPropagator.from_pretrained(path)     # segzero.models.video: the same loading as facebook/sam2-hiera-large
    Segmenter.from_pretrained(path)           # its image part, as for the hub's sam2_video checkpoints
    VideoPropagator.from_pretrained(build_tiny_sam3_tracker("/tmp/tiny/sam3_tracker"))   # SAM3's video tracker

The tiny SAM2 of ``segzero.models.tiny.segmenter`` with the memory modules the video model tracks with: memory
attention, memory encoder, mask downsampler and memory fuser. transformers' memory attention reads 64-channel
memories and splits each object pointer (the decoder's width) into 64-channel tokens, so the decoder is 128 wide
and the memories 64 (as in the released model, whose decoder is 256 wide); one memory-attention layer. Input
``image_size`` (default 256: 64 x 64 mask logits) must be a multiple of 128. The SAM3 tracker is built the same way
on SAM3's vision encoder (a one-layer ViT of 14-pixel patches, 32 wide, and its FPN neck) at ``SAM3_IMAGE_SIZE``
(a multiple of 14; SAM3's own is 1008) with SAM3's normalisation (mean and std 0.5). Weights are random (seeded):
masks are meaningless but deterministic.
"""

from __future__ import annotations

from pathlib import Path

from segzero.models.sam2_processing import Sam2PreprocessConfig
from segzero.models.tiny.segmenter import save_seeded_model, tiny_sam2_video_config

TINY_VIDEO_HIDDEN = 128  # decoder width: a multiple of the memory width, larger than it
MEMORY_CHANNELS = 64  # the memory width transformers' memory attention reads
FEATURE_STRIDE = 16  # image size / the side of the feature map the memory attention's rotary embedding covers
TINY_VIDEO_IMAGE_SIZE = 256
SAM3_PATCH = 14  # SAM3's ViT patch side
SAM3_IMAGE_SIZE = 224  # the tiny SAM3 tracker's input side (16 x 16 patches)
SAM3_MEAN_STD = (0.5, 0.5, 0.5)  # SAM3's image normalisation (mean and std)


def tiny_sam2_video_tracking_config(*, image_size: int = TINY_VIDEO_IMAGE_SIZE):
    """A ``Sam2VideoConfig`` that tracks: SAM2's structure, tiny widths, memories as transformers reads them."""
    config = tiny_sam2_video_config(image_size=image_size, hidden=TINY_VIDEO_HIDDEN)
    config.memory_encoder_output_channels = MEMORY_CHANNELS
    config.memory_attention_rope_feat_sizes = [image_size // FEATURE_STRIDE] * 2
    config.memory_attention_num_layers = 1
    return config


def build_tiny_video_segmenter(path: str | Path, *, seed: int = 0, image_size: int = TINY_VIDEO_IMAGE_SIZE) -> Path:
    """Build the tiny SAM2 video model with ``seed`` and save it (weights, config, preprocessor config) to ``path``."""
    from transformers import Sam2VideoModel

    preprocess = Sam2PreprocessConfig(size=(image_size, image_size))
    return save_seeded_model(
        path, Sam2VideoModel, tiny_sam2_video_tracking_config(image_size=image_size), seed=seed, preprocess=preprocess
    )


def tiny_sam3_tracker_config(*, image_size: int = SAM3_IMAGE_SIZE):
    """A ``Sam3TrackerVideoConfig``: SAM3's tracker structure, tiny widths, memories as transformers reads them."""
    from transformers import Sam3TrackerVideoConfig

    if image_size % SAM3_PATCH:
        raise ValueError(f"tiny SAM3 image_size must be a multiple of {SAM3_PATCH}, got {image_size}")
    grid = image_size // SAM3_PATCH
    vision = {
        "model_type": "sam3_vision_model",
        "backbone_config": {
            "model_type": "sam3_vit_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 1,
            "image_size": image_size,
            "patch_size": SAM3_PATCH,
            "window_size": grid,
            "global_attn_indexes": [0],
            "pretrain_image_size": image_size,
        },
        "fpn_hidden_size": TINY_VIDEO_HIDDEN,
        "backbone_feature_sizes": [[4 * grid] * 2, [2 * grid] * 2, [grid] * 2],
    }
    hidden = TINY_VIDEO_HIDDEN
    return Sam3TrackerVideoConfig(
        vision_config=vision,
        prompt_encoder_config={
            "hidden_size": hidden,
            "image_size": image_size,
            "patch_size": SAM3_PATCH,
            "mask_input_channels": 4,
        },
        mask_decoder_config={"hidden_size": hidden, "mlp_dim": 2 * hidden, "num_attention_heads": 2,
                             "iou_head_hidden_dim": hidden},
        image_size=image_size,
        memory_attention_hidden_size=hidden,
        memory_attention_feed_forward_hidden_size=2 * hidden,
        memory_attention_num_layers=1,
        memory_attention_rope_feat_sizes=[grid, grid],
        memory_encoder_hidden_size=hidden,
        memory_encoder_output_channels=MEMORY_CHANNELS,
        mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden,
        memory_fuser_intermediate_dim=2 * hidden,
    )  # fmt: skip


def build_tiny_sam3_tracker(path: str | Path, *, seed: int = 0, image_size: int = SAM3_IMAGE_SIZE) -> Path:
    """Build the tiny SAM3 video tracker with ``seed`` and save it (weights, config, preprocessor config)."""
    from transformers import Sam3TrackerVideoModel

    preprocess = Sam2PreprocessConfig(size=(image_size, image_size), image_mean=SAM3_MEAN_STD, image_std=SAM3_MEAN_STD)
    return save_seeded_model(
        path, Sam3TrackerVideoModel, tiny_sam3_tracker_config(image_size=image_size), seed=seed, preprocess=preprocess
    )


__all__ = [
    "build_tiny_sam3_tracker",
    "build_tiny_video_segmenter",
    "tiny_sam2_video_tracking_config",
    "tiny_sam3_tracker_config",
]
