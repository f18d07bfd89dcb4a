"""The shapes world: one sample = a scene of coloured shapes, a reasoning query and its exact answer masks.

Scenes come from ``segzero.shapes.scene`` (overlap allowed, exact visible masks, optional noise/texture), queries
from ``segzero.shapes.queries`` (attribute, superlative, relation, counting and affordance families; held-out
wordings only in ``test``). ``make_sample`` draws sample ``index`` of world ``seed`` in ``split`` for a layout:

- ``single``: exactly one answer; ``solution`` = ``<box>(x1,y1),(x2,y2)</box><points>(x,y),(x,y)</points>``
  (Seg-Zero gt, ``segzero.points.mask_to_object`` of the answer's visible mask);
- ``multi``: 0..n answers (``answers="mix"``: none / one / several in ``MIX``); ``solution`` = JSON list of
  ``{"bbox_2d": [x1, y1, x2, y2], "point_2d": [x, y]}`` (``"[]"`` when nothing matches), VisionReasoner gt;
- ``eval``: like single (or ``answers=...``); rows are written in the ReasonSeg layout by ``segzero.shapes.datasets``.

All coordinates are integer pixels of the generated image (``config.size``; pass the model frame, e.g. 112 or 840,
to get gt in the model frame directly). Deterministic: sample ``(seed, split, index)`` depends only on those and
the config (``numpy.random.default_rng([seed, split code, index])``).

Usage::

    from segzero.shapes.world import ShapesConfig, generate_rows, make_sample
    s = make_sample(0, seed=0, config=ShapesConfig(size=112), split="train", layout="single")
    s["problem"], s["solution"], s["image"].size, s["mask"].shape, s["answers"], s["template"]
    rows = generate_rows(16, seed=0, size=112)        # training-layout dicts (single object)

Imports only numpy, scipy and PIL (through ``segzero.points``).
"""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from segzero.parsing import format_solution
from segzero.points import mask_to_object
from segzero.rle import MASK_COLUMN, encode_mask
from segzero.shapes.queries import FAMILIES, sample_query
from segzero.shapes.scene import COLOURS, CORNERS, KINDS, Shape, ShapesConfig, make_scene, render

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
LAYOUTS: tuple[str, ...] = ("single", "multi", "eval")
MIX: dict[str, float] = {"none": 0.15, "one": 0.4, "several": 0.45}
TRAIN_COLUMNS: tuple[str, ...] = ("id", "problem", "solution", "image", "img_height", "img_width")


def solution_string(mask: np.ndarray) -> str:
    """Seg-Zero gt of one mask: ``<box>(x1,y1),(x2,y2)</box><points>(x,y),(x,y)</points>`` (ints, mask frame)."""
    obj = mask_to_object(mask)
    if obj is None or obj.box is None or len(obj.points) != 2:
        raise ValueError("empty mask has no box and points")
    return format_solution([obj], "single")


def solution_list(masks: list[np.ndarray]) -> str:
    """VisionReasoner gt of several masks: JSON list of ``bbox_2d`` (mask extent) / ``point_2d`` (first point)."""
    objects = [mask_to_object(m) for m in masks]
    if any(obj is None or obj.box is None for obj in objects):
        raise ValueError("empty mask has no box and point")
    return format_solution(objects, "multi")


def _want(layout: str, answers: str | None, rng: np.random.Generator) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    answers = answers or {"single": "one", "multi": "mix", "eval": "one"}[layout]
    if layout == "single" and answers != "one":
        raise ValueError("the single-object layout needs answers='one'")
    if answers == "mix":
        keys = list(MIX)
        return keys[int(rng.choice(len(keys), p=np.asarray([MIX[k] for k in keys]) / sum(MIX.values())))]
    return answers


def make_sample(
    index: int,
    *,
    seed: int = 0,
    config: ShapesConfig | None = None,
    split: str = "train",
    layout: str = "single",
    answers: str | None = None,
    families: tuple[str, ...] = FAMILIES,
    answerable_only: bool = False,
) -> dict:
    """Sample ``index`` of world ``seed`` in ``split`` (``train``/``val``/``test``) for ``layout``.

    ``answers``: how many shapes the query may mean: ``one``, ``none``, ``several``, ``any`` or ``mix``
    (default: ``one`` for single/eval, ``mix`` for multi). ``families``: query families to draw from.
    ``answerable_only``: only queries that can mean a shape in some scene of the world
    (``segzero.shapes.queries.answerable``; a "nothing" query is then one the scene decides).

    Keys: ``id`` (``"shapes-{split}-{seed}-{index}"``), ``problem`` (query), ``solution`` (gt of ``layout``:
    single -> box/points string, multi/eval -> JSON list), ``image`` (PIL RGB), ``img_height``, ``img_width``,
    ``mask`` ((H, W) bool: union of the answers' visible masks), ``answers`` (shape indices), ``shapes`` (each
    shape's ``Shape.describe()`` facts, painting order), ``shape_masks`` ((S, H, W) bool visible masks),
    ``family``, ``template``, ``wording`` (id; ``:h`` = held out), ``params``, ``split``.
    """
    config = config or ShapesConfig()
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    rng = np.random.default_rng([seed, SPLITS[split], index])
    want = _want(layout, answers, rng)
    for _ in range(config.max_tries):
        shapes = make_scene(rng, config)
        query = (
            sample_query(
                shapes, config, rng, split=split, want=want, families=families, answerable_only=answerable_only
            )
            if shapes
            else None
        )
        if query is None:
            continue
        image = render(shapes, config, rng)
        w, h = config.wh
        masks = [shapes[i].mask for i in query.answers]
        mask = np.logical_or.reduce(masks) if masks else np.zeros((h, w), dtype=bool)
        solution = solution_string(mask) if layout == "single" else solution_list(masks)
        return {
            "id": f"shapes-{split}-{seed}-{index}",
            "problem": query.text,
            "solution": solution,
            "image": image,
            "img_height": h,
            "img_width": w,
            "mask": mask,
            "answers": list(query.answers),
            "shapes": [s.describe() for s in shapes],
            "shape_masks": np.stack([s.mask for s in shapes]),
            "family": query.family,
            "template": query.template,
            "wording": query.wording,
            "params": dict(query.params),
            "split": split,
        }
    raise RuntimeError(f"no scene with a fitting query in {config.max_tries} tries (seed {seed}, index {index})")


def generate_rows(
    n: int,
    *,
    seed: int = 0,
    config: ShapesConfig | None = None,
    size: int | None = None,
    split: str = "train",
    layout: str = "single",
    families: tuple[str, ...] = FAMILIES,
    with_mask: bool = False,
) -> list[dict]:
    """``n`` samples (see ``make_sample``) in the training layout (``TRAIN_COLUMNS``) of ``layout`` single/multi;
    ``with_mask`` adds the gt mask (all answers) as a code in ``segzero.rle.MASK_COLUMN`` (the mask-aware
    reward's)."""
    if size is not None:
        config = replace(config or ShapesConfig(), size=size)
    rows = []
    for i in range(n):
        row = make_sample(i, seed=seed, config=config, split=split, layout=layout, families=families)
        rows.append({k: row[k] for k in TRAIN_COLUMNS})
        if with_mask:
            rows[-1][MASK_COLUMN] = encode_mask(row["mask"])
    return rows


def world_from_spec(spec: dict | None, *, size: int | tuple[int, int]) -> tuple[ShapesConfig, tuple[str, ...]]:
    """``(ShapesConfig, families)`` of a recipe's ``dataset_args.world`` mapping at image ``size`` px.

    ``spec``: ``ShapesConfig`` field overrides (lists become tuples; ``size`` is not allowed: it is the model frame)
    plus an optional ``families`` list (query families, default all). ``{}`` / None = the default world.
    Raises ``ValueError`` naming unknown keys.
    """
    spec = dict(spec or {})
    families = tuple(spec.pop("families", FAMILIES))
    known = {f.name for f in fields(ShapesConfig)} - {"size"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"unknown shapes-world keys {unknown}; known: {sorted(known | {'families'})}")
    spec = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}
    return ShapesConfig(size=size, **spec), families


__all__ = [
    "COLOURS",
    "CORNERS",
    "KINDS",
    "LAYOUTS",
    "SPLITS",
    "Shape",
    "ShapesConfig",
    "generate_rows",
    "make_sample",
    "make_scene",
    "render",
    "solution_list",
    "solution_string",
    "world_from_spec",
]
