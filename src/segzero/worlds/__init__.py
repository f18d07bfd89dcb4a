"""Synthetic worlds: small, deterministic, offline datasets for training and testing segzero end to end.

``segzero.worlds.shapes`` draws scenes of a few coloured shapes with exact masks and asks queries that
pick one shape ("the largest red shape", "the circle left of the square"). Rows come out in the released
single-object training layout (``id``, ``problem``, ``solution``, ``image``, ``img_height``, ``img_width``)
so ``segzero train`` reads them exactly like ``Ricky06662/refCOCOg_9k_840``.

Usage::

    from segzero.worlds.shapes import generate_rows
    rows = generate_rows(16, seed=0, size=112)   # list of dicts, deterministic by (seed, index)

Imports only numpy, scipy (through ``segzero.points``) and PIL.
"""

from segzero.worlds.shapes import ShapesConfig, generate_rows, make_sample, make_scene

__all__ = ["ShapesConfig", "generate_rows", "make_sample", "make_scene"]
