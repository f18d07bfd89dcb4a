"""The from-scratch reasoner of the shapes world: a tiny Qwen-VL whose vocabulary is trained on the world's wordings.

``build_shapes_reasoner(path)`` writes a random-weight model folder (``segzero.models.tiny.build_tiny_reasoner``
sized for the shapes world) that ``segzero train --config recipes/shapes_tiny.yaml`` trains (its ``model: shapes``
calls ``build_for_training`` with the recipe's ``model_args``). The shipped shapes model was built by it.

Usage::

    from segzero.shapes.model import build_shapes_reasoner
    path = build_shapes_reasoner("/tmp/shapes_model", frame=128, arch="qwen3_vl", number_tokens=True)
"""

from __future__ import annotations

from pathlib import Path

from segzero.models.tiny.reasoner import build_tiny_reasoner

SHAPES_CORPUS: tuple[str, ...] = (
    "the red circle, the green square, the blue triangle, the yellow star, the purple hexagon, the orange diamond",
    "the largest red shape, the smallest shape, the leftmost shape, the rightmost shape, the topmost shape",
    "the bottommost shape, the shape with the most corners, the shape with the fewest corners",
    "the circle left of the square, the triangle right of the circle, the square above the triangle",
    "the star below the green square, something that could roll, the shapes that are red",
    "Please find 'something sharp enough to poke you' with bbox and points.",
    "<think>I see 1 purple triangle [20,65,66,110] (43,92) (35,100) area 61; 2 orange square [45,13,82,50] (63,31) "
    "(74,42) area 83; 3 green circle [1,2,3,4] (5,6) (7,8) area 9. The query means the orange square, 2.</think>",
    '<think>I look for the red circle.</think><answer>{"bbox": [12,34,56,78], "points_1": [23,45], '
    '"points_2": [67,89]}</answer>',
)


def build_shapes_reasoner(path: str | Path, *, seed: int = 0, frame: int = 112, **sizes) -> Path:
    """The from-scratch VLM of the shapes recipe (``recipes/shapes_tiny.yaml``): about 1M parameters.

    Same architectures and files as ``build_tiny_reasoner`` (which it calls), sized to learn the shapes world on a
    CPU: text decoder hidden 128 x 4 layers, vision tower hidden 64 x 2 blocks, a BPE vocabulary of 640 (1024 with
    ``number_tokens=True``) trained on the prompt corpus plus ``SHAPES_CORPUS``; ``frame`` (default 112: 8 x 8
    patches, 16 image tokens) goes into ``segzero.json``. ``sizes`` override any other ``build_tiny_reasoner``
    argument (``arch``, ``number_tokens``, sizes, RoPE bases). Random weights: train it with
    ``segzero train --config recipes/shapes_tiny.yaml`` (its ``model_args`` field passes these arguments).
    """
    from segzero.shapes.queries import TEMPLATES

    # the seen (train/val) wordings, so that their words become tokens; held-out wordings stay out of the vocabulary
    seen = tuple(w.replace("{", "").replace("}", "") for t in TEMPLATES for w in t.wordings)
    kwargs = dict(vocab_size=1024 if sizes.get("number_tokens") else 640, hidden_size=128, num_layers=4)
    kwargs.update(vision_hidden_size=64, vision_depth=2)
    kwargs.update(sizes)
    return build_tiny_reasoner(
        path,
        seed=seed,
        frame=frame,
        extra_corpus=SHAPES_CORPUS + seen,
        note="shapes-world reasoner built from config (segzero.shapes.model.build_shapes_reasoner)",
        **kwargs,
    )


def build_for_training(output_dir: str | Path, *, seed: int = 0, frame: int = 112, **model_args) -> Path:
    """``model: shapes`` of ``segzero train`` (entry point ``segzero.models``): a fresh shapes reasoner at the run's
    ``frame`` in ``OUTPUT_DIR/shapes_model/reasoner`` (built once, kept when there); ``model_args`` are
    ``build_shapes_reasoner`` keywords (``arch``, ``number_tokens``, sizes). Its ``segzero.json`` names the
    shapes world's exact colour segmenter."""
    from segzero.errors import UserError
    from segzero.models.reasoner import write_model_info

    folder = Path(output_dir) / "shapes_model" / "reasoner"
    if (folder / "config.json").is_file():
        return folder
    bad = sorted(set(model_args) & {"path", "seed", "frame"})
    if bad:
        raise UserError(f"model_args cannot set {bad}: they come from output_dir, seed and frame")
    try:
        build_shapes_reasoner(folder, seed=seed, frame=frame, **model_args)
    except (TypeError, ValueError) as err:  # unknown keyword, unknown arch, frame not a patch multiple
        raise UserError(f"cannot build the shapes model (model_args {model_args}): {err}") from None
    write_model_info(folder, update=True, segmenter="color")
    return folder


__all__ = ["SHAPES_CORPUS", "build_for_training", "build_shapes_reasoner"]
