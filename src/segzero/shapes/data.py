"""The GRPO training rows of ``dataset: synthetic``: scenes of the shapes world in the released Seg-Zero layout.

Registered for ``segzero train`` as the dataset source ``synthetic`` (entry-point group ``segzero.datasets``);
``dataset_args`` are this function's keywords::

    dataset: synthetic
    dataset_args: {samples: 4000, seed: 0, world: {max_shapes: 3, families: [attribute, superlative]}}

Rows: ``id``, ``problem``, ``solution`` (Seg-Zero's ``<box>..</box><points>..</points>`` in the frame's pixels),
``image`` (PIL, ``frame x frame``), ``img_height``, ``img_width`` and the gt mask code (``segzero.rle``), the
same columns a released set has; ``segzero.train.data`` prepares them like any other.
"""

from __future__ import annotations

from typing import Any

from segzero.errors import UserError


def training_rows(*, frame: int, samples: int = 64, seed: int = 0, world: dict[str, Any] | None = None):
    """``samples`` rows of the shapes world drawn at ``frame`` px (train split, world seed ``seed``, settings
    ``world``: ``segzero.shapes.world.world_from_spec``) as a ``datasets.Dataset``; rows depend only on
    (``seed``, index)."""
    import datasets

    from segzero.shapes.world import generate_rows, world_from_spec

    if not isinstance(samples, int) or samples < 1:
        raise UserError(f"dataset_args.samples must be a whole number >= 1, got {samples!r}")
    try:
        config, families = world_from_spec(world, size=frame)
    except (ValueError, TypeError) as err:
        raise UserError(f"bad dataset_args.world: {err}") from err
    rows = generate_rows(samples, seed=seed, config=config, families=families, with_mask=True)
    return datasets.Dataset.from_list(rows)
