"""Validation of a shapes-world reasoner through the real ``segzero eval`` machinery (``segzero.eval.runner``).

``val_dataset(n, seed)`` draws ``n`` single-answer samples of the shapes world's val split
(``segzero.shapes.datasets``, the ReasonSeg layout: ``image``, ``text``, ``mask``, ``image_id``, ``ann_id``,
``img_height``, ``img_width``) in memory and wraps them as an ``EvalDataset``; ``evaluate(reasoner, ...)`` runs
``segzero.eval.runner.run_eval`` on it with the weight-free ``color`` segmenter by default, so the score
measures the reasoner (its box and points), not SAM. Empty-gt / ignore-label conventions are ``run_eval``'s
(protocol "exclude"; the shapes world has no ignore pixels). Usage::

    from segzero.shapes.val import evaluate
    summary = evaluate("runs/shapes/final", n=64, out="runs/shapes/eval_final")
    summary["gIoU"], summary["cIoU"]
"""

from __future__ import annotations

from pathlib import Path

VAL_SEED = 0  # world seed; the val split's samples are disjoint from the train split's (segzero.shapes.world)


def val_dataset(n: int = 64, *, seed: int = VAL_SEED, size: int = 112, split: str = "val", world: dict | None = None):
    """``n`` single-answer samples of the world's ``split`` (images ``size`` px) as an ``HFEvalDataset``.

    Rows come from ``segzero.shapes.datasets.build_dataset("eval", ...)`` (the ReasonSeg layout). ``world``: a
    recipe's ``dataset_args.world`` settings (``segzero.shapes.world.world_from_spec``); None = the default world.
    """
    from segzero.eval.datasets import HFEvalDataset
    from segzero.shapes.datasets import build_dataset
    from segzero.shapes.world import world_from_spec

    config, families = world_from_spec(world, size=size)
    ds = build_dataset("eval", split=split, n=n, seed=seed, config=config, families=families, meta=False)
    return HFEvalDataset(ds, source=f"shapes-world {split} seed {seed} n {n} size {size}", split=split)


def val_solutions(
    n: int = 64, *, seed: int = VAL_SEED, size: int = 112, split: str = "val", world: dict | None = None
) -> dict[str, str]:
    """``{eval sample id: Seg-Zero gt string}`` for the same samples as ``val_dataset`` (gt in the ``size`` frame)."""
    from segzero.shapes.datasets import build_dataset
    from segzero.shapes.world import world_from_spec

    config, families = world_from_spec(world, size=size)
    ds = build_dataset("single", split=split, n=n, seed=seed, config=config, families=families, meta=False)
    return {f"{i}:0": s for i, s in zip(ds["id"], ds["solution"], strict=True)}


def evaluate(
    reasoner: str | Path,
    *,
    out: str | Path,
    n: int = 64,
    seed: int = VAL_SEED,
    size: int = 112,
    segmenter: str = "color",
    batch_size: int = 32,
    max_new_tokens: int = 64,
    frame: int | None = None,
    dataset=None,
) -> dict:
    """Evaluate ``reasoner`` on the shapes val set with ``segzero.eval.runner.run_eval``; returns its summary.

    ``out`` receives ``samples.jsonl``/``summary.json`` (overwritten). ``dataset`` reuses a ``val_dataset``.
    ``frame``: the model frame; None = the folder's ``segzero.json`` (training checkpoints lack it: pass it).
    """
    from segzero.eval.runner import EvalConfig, run_eval

    cfg = EvalConfig(
        data="shapes-val",
        out=str(out),
        reasoner=str(reasoner),
        segmenter=segmenter,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        frame=frame,
        device="cpu",
        dtype="float32",
        overwrite=True,
        report=False,
        save_masks=False,
        progress=False,
    )
    return run_eval(cfg, dataset=dataset or val_dataset(n, seed=seed, size=size))
