"""Shapes-world datasets in the layouts ``segzero train`` and ``segzero eval`` read, saved with ``save_to_disk``.

Layouts (one row per sample of ``segzero.shapes.world.make_sample``):

- ``single`` (Seg-Zero training, like ``Ricky06662/refCOCOg_9k_840``): ``id``, ``problem``, ``solution``
  (``<box>(x1,y1),(x2,y2)</box><points>(x,y),(x,y)</points>``), ``image``, ``img_height``, ``img_width``;
- ``multi`` (VisionReasoner training): the same columns, ``solution`` a JSON list of ``bbox_2d``/``point_2d``
  (``"[]"`` when the query matches nothing);
- ``eval`` (ReasonSeg, like ``Ricky06662/ReasonSeg_val``): ``image``, ``text``, ``mask`` (nested list of bools,
  (H, W), the union of the answers' visible masks; all False when nothing matches), ``image_id``, ``ann_id``,
  ``img_height``, ``img_width``.

With ``meta=True`` (default) rows also carry ``family``, ``template``, ``wording`` and ``n_answers`` for
per-family analysis; the loaders ignore extra columns. Coordinates: pixels of the stored image (``config.size``).

Usage::

    from segzero.shapes.datasets import build_dataset, build_splits, write_world
    ds = build_dataset("single", split="train", n=512, seed=0)            # datasets.Dataset
    dd = build_splits("eval", n={"val": 64, "test": 64}, seed=0)          # datasets.DatasetDict
    info = write_world("data/shapes_eval", "eval", n={"val": 64, "test": 64})   # save_to_disk + world.json

CLI: ``segzero world build --out DIR --layout single|multi|eval [--split ...] [--n ...] [--size ...] [--seed]``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from segzero.shapes.queries import FAMILIES, TEMPLATES
from segzero.shapes.scene import ShapesConfig
from segzero.shapes.world import LAYOUTS, SPLITS, TRAIN_COLUMNS, make_sample

EVAL_COLUMNS: tuple[str, ...] = ("image", "text", "mask", "image_id", "ann_id", "img_height", "img_width")
META_COLUMNS: tuple[str, ...] = ("family", "template", "wording", "n_answers")


def row(sample: dict, layout: str, *, meta: bool = True) -> dict:
    """One ``make_sample`` dict -> a dataset row of ``layout`` (plus ``META_COLUMNS`` when ``meta``)."""
    if layout == "eval":
        out = {
            "image": sample["image"],
            "text": sample["problem"],
            "mask": sample["mask"].tolist(),
            "image_id": sample["id"],
            "ann_id": "0",
            "img_height": sample["img_height"],
            "img_width": sample["img_width"],
        }
    elif layout in ("single", "multi"):
        out = {k: sample[k] for k in TRAIN_COLUMNS}
    else:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if meta:
        out.update(family=sample["family"], template=sample["template"], wording=sample["wording"])
        out["n_answers"] = len(sample["answers"])
    return out


def features(layout: str, *, meta: bool = True):
    """The ``datasets.Features`` of ``layout`` (image as an ``Image`` feature, mask as ``List(List(bool))``)."""
    import datasets

    if layout == "eval":
        cols = {
            "image": datasets.Image(),
            "text": datasets.Value("string"),
            "mask": datasets.List(datasets.List(datasets.Value("bool"))),
            "image_id": datasets.Value("string"),
            "ann_id": datasets.Value("string"),
        }
    else:
        cols = {
            "id": datasets.Value("string"),
            "problem": datasets.Value("string"),
            "solution": datasets.Value("string"),
            "image": datasets.Image(),
        }
    cols.update(img_height=datasets.Value("int64"), img_width=datasets.Value("int64"))
    if meta:
        cols.update({c: datasets.Value("string") for c in META_COLUMNS[:3]}, n_answers=datasets.Value("int64"))
    return datasets.Features(cols)


def build_dataset(
    layout: str = "single",
    *,
    split: str = "train",
    n: int = 64,
    seed: int = 0,
    config: ShapesConfig | None = None,
    answers: str | None = None,
    families: tuple[str, ...] = FAMILIES,
    meta: bool = True,
):
    """``n`` rows of ``layout`` for ``split`` as a ``datasets.Dataset`` (samples ``0..n-1`` of world ``seed``).

    ``answers`` / ``families``: see ``make_sample`` (default answers: single/eval ``one``, multi ``mix``).
    """
    import datasets

    config = config or ShapesConfig()
    rows = [
        row(make_sample(i, seed=seed, config=config, split=split, layout=layout, answers=answers, families=families),
            layout, meta=meta)
        for i in range(n)
    ]  # fmt: skip
    return datasets.Dataset.from_list(rows, features=features(layout, meta=meta))


def split_sizes(n: int | dict[str, int], splits: tuple[str, ...] | list[str] = tuple(SPLITS)) -> dict[str, int]:
    """``{split: rows}``: an int gives every split that many rows; a dict is taken as is (splits from its keys)."""
    sizes = dict(n) if isinstance(n, dict) else {s: int(n) for s in splits}
    bad = [s for s in sizes if s not in SPLITS]
    if bad or any(v < 1 for v in sizes.values()):
        raise ValueError(f"splits must be among {tuple(SPLITS)} with at least 1 row each, got {sizes}")
    return sizes


def build_splits(layout: str = "single", *, n: int | dict[str, int] = 64, splits=tuple(SPLITS), **kwargs):
    """A ``datasets.DatasetDict`` with one ``build_dataset`` per split (``n``: see ``split_sizes``)."""
    import datasets

    sizes = split_sizes(n, splits)
    return datasets.DatasetDict({s: build_dataset(layout, split=s, n=k, **kwargs) for s, k in sizes.items()})


def heldout_wordings() -> dict[str, list[str]]:
    """Template name -> its held-out wordings (used only in ``test``)."""
    return {t.name: list(t.heldout) for t in TEMPLATES}


def write_world(
    out: str | Path,
    layout: str = "single",
    *,
    n: int | dict[str, int] = 64,
    splits=tuple(SPLITS),
    seed: int = 0,
    config: ShapesConfig | None = None,
    answers: str | None = None,
    families: tuple[str, ...] = FAMILIES,
    meta: bool = True,
) -> dict:
    """Build ``build_splits(...)`` and ``save_to_disk(out)``; write ``out/world.json`` (how it was made).

    Returns that info dict: layout, seed, split sizes, config, answers, families, held-out wordings.
    """
    config = config or ShapesConfig()
    sizes = split_sizes(n, splits)
    dd = build_splits(layout, n=sizes, seed=seed, config=config, answers=answers, families=families, meta=meta)
    out = Path(out)
    dd.save_to_disk(str(out))
    info = {
        "world": "shapes",
        "layout": layout,
        "seed": seed,
        "splits": sizes,
        "answers": answers or {"single": "one", "multi": "mix", "eval": "one"}[layout],
        "families": list(families),
        "config": asdict(config),
        "heldout_wordings": heldout_wordings(),
    }
    (out / "world.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


__all__ = ["EVAL_COLUMNS", "build_dataset", "build_splits", "features", "row", "split_sizes", "write_world"]
