"""Tiny offline models for tests, benchmarks and setup checks (no hub access needed).

``build_tiny_models(out_dir)`` writes ``out_dir/reasoner`` (a random-weight Qwen2.5-VL with a locally trained
tokenizer, see ``segzero.models.tiny.reasoner``) and ``out_dir/segmenter`` (a random-weight SAM2, see
``segzero.models.tiny.segmenter``), both loadable with the same ``from_pretrained`` code as the real checkpoints.
The CLI form is ``segzero tiny-models --out DIR``. A tiny SAM3 (detector and tracker, in the hub's ``facebook/sam3``
layout, or either alone) is ``segzero.models.tiny.sam3.build_tiny_sam3``.

    from segzero.models.tiny import build_tiny_models
    paths = build_tiny_models("/tmp/tiny")   # {"reasoner": Path, "segmenter": Path}
"""

from __future__ import annotations

from pathlib import Path


def build_tiny_models(
    out_dir: str | Path, *, seed: int = 0, answering: bool = False, progress: bool = False
) -> dict[str, Path]:
    """Build both tiny models under ``out_dir``; returns ``{"reasoner": path, "segmenter": path}``.

    ``answering=True`` teaches the reasoner to answer ``segzero.models.tiny.teach.TAUGHT_ANSWER`` (a parseable
    Seg-Zero answer for a 56 x 56 frame) to anything, at frames of 28-112 px (about 2 minutes more on 2 CPU
    cores; ``progress`` shows a bar of the teaching steps).
    """
    from segzero.models.reasoner import write_model_info
    from segzero.models.tiny.reasoner import build_answering_reasoner, build_tiny_reasoner
    from segzero.models.tiny.segmenter import build_tiny_segmenter

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if answering:
        reasoner = build_answering_reasoner(out_dir / "reasoner", seed=seed, progress=progress)
    else:
        reasoner = build_tiny_reasoner(out_dir / "reasoner", seed=seed)
    segmenter = Path(build_tiny_segmenter(out_dir / "segmenter", seed=seed))
    # the pair belongs together: `segzero segment --reasoner DIR/reasoner` uses DIR/segmenter unless told otherwise
    write_model_info(reasoner, update=True, segmenter="../segmenter")
    return {"reasoner": reasoner, "segmenter": segmenter}


def build_for_training(output_dir: str | Path, *, seed: int = 0, frame: int | None = None, **model_args) -> Path:
    """``model: tiny`` of ``segzero train`` (entry point ``segzero.models``): the tiny models in
    ``OUTPUT_DIR/tiny_models`` (built once, kept when there), returning the reasoner; its ``segzero.json`` names
    the tiny segmenter beside it. ``frame`` is the run's (the tiny reasoner reads any multiple of 28);
    ``model_args``: ``build_tiny_models`` keywords (e.g. ``answering``)."""
    folder = Path(output_dir) / "tiny_models"
    if not (folder / "reasoner" / "config.json").is_file():
        build_tiny_models(folder, seed=seed, **model_args)
    return folder / "reasoner"


__all__ = ["build_for_training", "build_tiny_models"]
