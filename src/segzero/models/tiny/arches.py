"""The architectures ``segzero.models.tiny.build_tiny_reasoner`` can write: transformers configs and image settings.

``ARCHES[name]`` holds the config class, vision patch size, text head size, default RoPE base and image
preprocessor of each (``"qwen2_5_vl"``, ``"qwen3_vl"``); ``model_config(spec, ids, **sizes)`` builds the tiny
``transformers`` config. Usage (normally through the builder)::

    from segzero.models.tiny.reasoner import build_tiny_reasoner
    build_tiny_reasoner("/tmp/q3", arch="qwen3_vl", frame=64)
"""

from __future__ import annotations


def _qwen3_mrope_section(head_dim: int) -> list[int]:
    """Qwen3-VL's t/h/w split of the rotary pairs (24/20/20 of 64 in the real models), scaled to ``head_dim``."""
    pairs = head_dim // 2
    hw = pairs * 20 // 64
    return [pairs - 2 * hw, hw, hw]


def _qwen2_5_preprocessor(frame: int, patch_size: int = 14):
    from segzero.models.processor import QwenImagePreprocessor

    return QwenImagePreprocessor(patch_size=patch_size)


def _qwen3_preprocessor(frame: int, patch_size: int = 16):
    """Qwen3-VL's image settings (patch 16, mean/std 0.5) with a pixel range that keeps small frames as they are."""
    from segzero.models.processor import QwenImagePreprocessor

    return QwenImagePreprocessor(
        patch_size=patch_size,
        image_mean=(0.5, 0.5, 0.5),
        image_std=(0.5, 0.5, 0.5),
        min_pixels=32 * 32,
        max_pixels=max(frame, 1024) ** 2,
        processor_class="Qwen3VLProcessor",
    )


# The architectures build_tiny_reasoner can write: config class, patch size, text head size, default RoPE base.
ARCHES: dict[str, dict] = {
    "qwen2_5_vl": {
        "config": "Qwen2_5_VLConfig",
        "patch_size": 14,
        "head_dim": 16,
        "rope_theta": 1_000_000.0,
        "preprocessor": _qwen2_5_preprocessor,
    },
    "qwen3_vl": {
        "config": "Qwen3VLConfig",
        "patch_size": 16,
        "head_dim": 32,
        "rope_theta": 5_000_000.0,
        "preprocessor": _qwen3_preprocessor,
    },
}


def model_config(spec: dict, ids: dict[str, int], **size):
    """The ``transformers`` config of a tiny model of architecture ``spec`` (an ``ARCHES`` value)."""
    import transformers

    head_dim = spec["head_dim"]
    hidden = size["hidden_size"]
    text_config = {
        "vocab_size": size["vocab_size"],
        "hidden_size": hidden,
        "intermediate_size": size["intermediate_size"],
        "num_hidden_layers": size["num_layers"],
        "num_attention_heads": max(1, hidden // head_dim),
        "num_key_value_heads": max(1, hidden // head_dim // 2),
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": size["rope_theta"], "mrope_section": [2, 3, 3]},
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    vision_config = {
        "depth": size["vision_depth"],
        "hidden_size": size["vision_hidden_size"],
        "intermediate_size": size["vision_intermediate_size"],
        "num_heads": max(1, size["vision_hidden_size"] // 16),
        "out_hidden_size": hidden,
        "patch_size": size["patch_size"],
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "rope_parameters": {"rope_type": "axial", "rope_theta": size["vision_rope_theta"]},
    }
    if spec["config"] == "Qwen2_5_VLConfig":
        vision_config.update(window_size=112, fullatt_block_indexes=[size["vision_depth"] - 1])
    else:  # Qwen3-VL: explicit head size, interleaved M-RoPE, absolute position grid of the frame, deepstack
        text_config["head_dim"] = head_dim
        text_config["rope_parameters"].update(mrope_section=_qwen3_mrope_section(head_dim), mrope_interleaved=True)
        grid = size["frame"] // size["patch_size"]
        vision_config.update(num_position_embeddings=grid * grid, deepstack_visual_indexes=[0])
    return getattr(transformers, spec["config"])(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
