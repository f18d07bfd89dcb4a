"""Files shipped inside the package: the trained shapes-world reasoner (``shapes_model/``) and helpers to use it.

``shapes_model_path()`` is the folder of the tiny Qwen3-VL trained on the shapes world (its ``segzero.json``
names the recipe and records the stages behind it under ``training``; how it was made and what it measures:
``docs/shapes_recipe.md``, ``benchmarks/shapes_grounding.md``); the reasoner name ``"shipped"`` means it (``segzero.models.reasoner.SHIPPED_REASONER``). It loads with ``Reasoner.from_pretrained`` like any
checkpoint (frame and prompt come from its ``segzero.json``). ``segzero demo`` and ``segzero serve`` (with no
model arguments) use it with the weight-free ``color`` segmenter, so both work offline on a fresh install::

    from segzero.assets import shapes_model_path
    from segzero.pipeline import SegZeroPipeline
    pipe = SegZeroPipeline.from_pretrained(reasoner=shapes_model_path(), segmenter="color")
"""

from __future__ import annotations

from pathlib import Path

SHAPES_MODEL_DIR = Path(__file__).resolve().parent / "shapes_model"
DEFAULT_SHAPES_SEGMENTER = "color"
# Generation limit for the shipped model: its reasoning lists every shape with a box, two points and its area (about
# 105 tokens for 3 shapes) before the decision and the answer (about 30); 192 leaves room without letting a runaway loop go on long.
SHAPES_MAX_NEW_TOKENS = 192
# The files of a trained reasoner folder that inference needs (what is copied into shapes_model/ when it ships).
SHAPES_MODEL_FILES: tuple[str, ...] = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "preprocessor_config.json",
)


def shapes_model_path() -> Path:
    """The shipped shapes reasoner folder; ``UserError`` when the installation lacks it (a broken install)."""
    from segzero.errors import UserError

    if not (SHAPES_MODEL_DIR / "config.json").is_file():
        raise UserError(f"the shipped shapes model is missing from this installation ({SHAPES_MODEL_DIR})")
    return SHAPES_MODEL_DIR


__all__ = [
    "DEFAULT_SHAPES_SEGMENTER",
    "SHAPES_MAX_NEW_TOKENS",
    "SHAPES_MODEL_DIR",
    "SHAPES_MODEL_FILES",
    "shapes_model_path",
]
