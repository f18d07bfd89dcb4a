"""Synthetic worlds: small, deterministic, offline datasets for training and testing segzero end to end.

``segzero.worlds.shapes`` draws scenes of coloured shapes (circles, squares, triangles, pentagons, hexagons, stars;
overlap allowed, exact visible masks) and asks reasoning queries (superlatives, relations, counting, attributes,
affordances; none / one / several answers) whose answers the generator computes from the scene. Modules:
``scene`` (shapes, masks, rendering), ``queries`` (template families, held-out test wordings), ``shapes``
(``make_sample``: one sample in a layout), ``datasets`` (``datasets.Dataset`` / ``save_to_disk`` in the layouts
``segzero train`` and ``segzero eval`` read), ``preview`` (a PNG contact sheet). CLI: ``segzero world build``,
``segzero world preview``.

Usage::

    from segzero.worlds import ShapesConfig, make_sample, generate_rows
    s = make_sample(0, seed=0, config=ShapesConfig(size=112), split="val", layout="multi")
    rows = generate_rows(16, seed=0, size=112)   # single-object training rows, deterministic by (seed, index)
    from segzero.worlds.datasets import build_dataset, write_world   # needs the `datasets` package

Imports only numpy, scipy and PIL (``segzero.worlds.datasets`` imports ``datasets`` inside its functions).
"""

from segzero.worlds.scene import COLOURS, CORNERS, KINDS, Shape, ShapesConfig, make_scene, render
from segzero.worlds.shapes import LAYOUTS, SPLITS, generate_rows, make_sample

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
]
