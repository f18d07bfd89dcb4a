"""A tiny random-weight SAM3 (transformers ``Sam3VideoModel`` / ``Sam3TrackerModel`` / ``Sam3Model``) saved to disk,
for offline tests and setup checks.

    from segzero.models.tiny.sam3 import build_tiny_sam3
    path = build_tiny_sam3("/tmp/tiny/sam3")              # the hub's facebook/sam3 layout: detector + tracker
    Segmenter.from_pretrained(path)                        # SAM3's tracker, the same loading code as facebook/sam3
    ConceptSegmenter.from_pretrained(path)                 # SAM3's concept mode (segzero.models.sam3)

Architecture as the released SAM3 (a ViT backbone of 14-pixel patches with windowed and global attention and 2-D
RoPE, a 3-level FPN neck shared by a DETR-style concept detector with a CLIP text encoder, a geometry (exemplar)
encoder and a mask decoder, and a SAM2-style tracker with its memory modules), at SAM3's 1008 x 1008 input, with
widths of 32 channels and one or two layers per part. Weights are random (seeded): masks are meaningless but
deterministic. ``checkpoint_format`` picks the folder's layout:

- ``"sam3_video"`` (default): what the hub's ``facebook/sam3`` holds, a ``sam3_video`` config and one weight file
  with the ``detector_model.`` / ``tracker_model.`` / ``tracker_neck.`` prefixes of ``Sam3VideoModel`` (written from
  its state dict: transformers maps these names onto ``Sam3TrackerModel`` and ``Sam3Model`` when they load it);
- ``"sam3_tracker"``: the tracker alone (``Sam3TrackerModel.save_pretrained``);
- ``"sam3"``: the concept detector alone (``Sam3Model.save_pretrained``).

Every folder gets a ``preprocessor_config.json`` (1008 x 1008, mean / std 0.5, as SAM3's image processor) and, with
a detector, a small CLIP-style tokenizer trained here (``tokenizer.json``; texts padded to 32 tokens, as SAM3's).
"""

from __future__ import annotations

import json
from pathlib import Path

from segzero.models.sam2_processing import Sam2PreprocessConfig

SAM3_IMAGE_SIZE = 1008  # SAM3's input side in pixels
SAM3_PATCH = 14  # its ViT patch side
TINY_HIDDEN = 32  # width of every part of the tiny SAM3
FORMATS = ("sam3_video", "sam3_tracker", "sam3")
# A few words the tiny tokenizer learns (so that short phrases are a handful of tokens).
_WORDS = "a the cup mug plate red blue green cat dog person car chair table shape circle square visual object"


def _vision_config(image_size: int, hidden: int) -> dict:
    """SAM3's vision encoder (ViT + FPN neck) at ``image_size`` (a multiple of 14), tiny."""
    grid = image_size // SAM3_PATCH
    backbone = {
        "model_type": "sam3_vit_model",
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": image_size,
        "patch_size": SAM3_PATCH,
        "window_size": min(24, grid),  # SAM3's 24-patch windows, the last layer global
        "global_attn_indexes": [1],
        "pretrain_image_size": 336,
    }
    return {
        "model_type": "sam3_vision_model",
        "backbone_config": backbone,
        "fpn_hidden_size": hidden,
        "backbone_feature_sizes": [[4 * grid, 4 * grid], [2 * grid, 2 * grid], [grid, grid]],
    }


def _detector_config(image_size: int, hidden: int, vocab: dict[str, int]) -> dict:
    """SAM3's concept detector (``Sam3Config`` fields), tiny; ``vocab``: the tokenizer's size and special ids."""
    small = {"hidden_size": hidden, "num_attention_heads": 2, "intermediate_size": 2 * hidden}
    return {
        "model_type": "sam3",
        "vision_config": _vision_config(image_size, hidden),
        "text_config": {
            "model_type": "clip_text_model",
            "vocab_size": vocab["size"],
            "projection_dim": hidden,
            "num_hidden_layers": 1,
            "max_position_embeddings": 32,
            "bos_token_id": vocab["bos"],
            "eos_token_id": vocab["eos"],
            "pad_token_id": vocab["pad"],
            **small,
        },
        "geometry_encoder_config": {"num_layers": 1, "roi_size": 7, **small},
        "detr_encoder_config": {"num_layers": 1, **small},
        "detr_decoder_config": {"num_layers": 1, "num_queries": 16, **small},
        "mask_decoder_config": {"hidden_size": hidden, "num_upsampling_stages": 3, "num_attention_heads": 2},
    }


def _tracker_config(image_size: int, hidden: int, *, video: bool) -> dict:
    """SAM3's tracker (``Sam3TrackerConfig`` fields; ``video``: with the memory modules of the video tracker)."""
    grid = image_size // SAM3_PATCH
    config = {
        "model_type": "sam3_tracker_video" if video else "sam3_tracker",
        "vision_config": _vision_config(image_size, hidden),
        "prompt_encoder_config": {
            "hidden_size": hidden,
            "image_size": image_size,
            "patch_size": SAM3_PATCH,
            "mask_input_channels": 4,
        },
        "mask_decoder_config": {
            "hidden_size": hidden,
            "mlp_dim": 2 * hidden,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": hidden,
        },
    }
    if video:
        config.update(
            image_size=image_size,
            memory_attention_hidden_size=hidden,
            memory_attention_feed_forward_hidden_size=2 * hidden,
            memory_attention_rope_feat_sizes=[grid, grid],
            memory_encoder_hidden_size=hidden,
            memory_encoder_output_channels=hidden // 2,
            mask_downsampler_embed_dim=hidden,
            memory_fuser_embed_dim=hidden,
            memory_fuser_intermediate_dim=2 * hidden,
        )
    return config


def _tokenizer():
    """A CLIP-style tokenizer (lower-cased words, ``<|startoftext|>`` ... ``<|endoftext|>``), trained on ``_WORDS``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|startoftext|>", "<|endoftext|>"]
    backend = Tokenizer(models.BPE(unk_token="<|endoftext|>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.train_from_iterator([_WORDS] * 4, trainers.BpeTrainer(vocab_size=128, special_tokens=specials))
    bos, eos = (backend.token_to_id(t) for t in specials)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{specials[0]} $A {specials[1]}", special_tokens=[(specials[0], bos), (specials[1], eos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=specials[0],
        eos_token=specials[1],
        pad_token=specials[1],
        unk_token=specials[1],
        model_max_length=32,
    )


def _preprocessor(image_size: int, processor_class: str) -> dict:
    """SAM3's image settings (plain resize to ``image_size``, rescale, mean / std 0.5) as a preprocessor config."""
    data = Sam2PreprocessConfig(size=(image_size, image_size), image_mean=(0.5,) * 3, image_std=(0.5,) * 3).to_dict()
    side = 4 * (image_size // SAM3_PATCH)  # the finest feature map's side: the low-resolution mask size
    data.update(mask_size={"height": side, "width": side}, image_processor_type="Sam3ImageProcessor")
    data["processor_class"] = processor_class
    return data


def build_tiny_sam3(
    path: str | Path,
    *,
    seed: int = 0,
    image_size: int = SAM3_IMAGE_SIZE,
    checkpoint_format: str = "sam3_video",
    hidden: int = TINY_HIDDEN,
) -> Path:
    """Build the tiny SAM3 with ``seed`` and save it to ``path`` in ``checkpoint_format`` (see the module doc);
    ``image_size`` must be a multiple of 14. Returns ``path``."""
    import torch
    import transformers

    if checkpoint_format not in FORMATS:
        raise ValueError(f"checkpoint_format must be one of {FORMATS}, got {checkpoint_format!r}")
    if image_size % SAM3_PATCH:
        raise ValueError(f"image_size {image_size} is not a multiple of SAM3's {SAM3_PATCH}-pixel patches")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer() if checkpoint_format != "sam3_tracker" else None
    vocab = {}
    if tokenizer is not None:
        vocab = {"size": len(tokenizer), "bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id}
        vocab["pad"] = tokenizer.pad_token_id
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if checkpoint_format == "sam3_tracker":
            config = transformers.Sam3TrackerConfig(**_tracker_config(image_size, hidden, video=False))
            transformers.Sam3TrackerModel(config).eval().save_pretrained(path)
        elif checkpoint_format == "sam3":
            config = transformers.Sam3Config(**_detector_config(image_size, hidden, vocab))
            transformers.Sam3Model(config).eval().save_pretrained(path)
        else:
            from safetensors.torch import save_file

            config = transformers.Sam3VideoConfig(
                detector_config=_detector_config(image_size, hidden, vocab),
                tracker_config=_tracker_config(image_size, hidden, video=True),
            )
            model = transformers.Sam3VideoModel(config).eval()
            config.save_pretrained(path)
            # the module names of Sam3VideoModel, as the hub checkpoint stores them (save_pretrained would write its
            # own sub-models' renamed keys instead)
            state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
            save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    processor = {"sam3_tracker": "Sam3TrackerProcessor"}.get(checkpoint_format, "Sam3Processor")
    (path / "preprocessor_config.json").write_text(json.dumps(_preprocessor(image_size, processor), indent=2) + "\n")
    return path


__all__ = ["FORMATS", "SAM3_IMAGE_SIZE", "build_tiny_sam3"]
