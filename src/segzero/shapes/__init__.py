"""The shapes world and the tiny model trained on it: segzero's offline, CPU-sized stand-in for images and a VLM.

Nothing in production (``train``, ``eval``, ``pipeline``, ``models``, ``serve``, the core) imports this package.
It plugs in by name: ``pyproject.toml`` registers its model builder (``model: shapes``), its training rows
(``dataset: synthetic``) and its supervised stages (``stages: [perception_warmup, answer_sft, ...]``) under
segzero's entry-point groups, and recipes name its reward terms by import path (``reward_plugins``).

The world (numpy, scipy, PIL only):
- ``scene``: shapes, exact visible masks, rendering; ``queries`` and ``rules``: query families and their answers,
  held-out wordings; ``world``: ``make_sample`` (one sample in a layout), ``world_from_spec``, ``generate_rows``;
  ``datasets``: ``datasets.Dataset`` / ``save_to_disk`` in the layouts ``segzero train`` and ``segzero eval`` read;
  ``preview``: a PNG contact sheet. CLI: ``segzero world build``, ``segzero world preview``.

The model and its training:
- ``model``: a ~1.5M-parameter Qwen3-VL built from a config, whose vocabulary is trained on the world's words;
- ``perception``: the reasoning format (every shape listed with its box, points and area, then a decision);
- ``warmup`` and ``stages``: the supervised stages (perception warm-up with a random pick; gt answers);
- ``data``: the GRPO training rows of ``dataset: synthetic``;
- ``consistency``: the reward term "the answer is the listed shape the reasoning decides on".

Checks: ``grounding`` (right, by name, reasoning-answer agreement), ``val`` (gIoU on a val split), ``examples``
(the web demo's scenes). Usage::

    from segzero.shapes import ShapesConfig, make_sample, generate_rows
    s = make_sample(0, seed=0, config=ShapesConfig(size=112), split="val", layout="multi")
    rows = generate_rows(16, seed=0, size=112)   # single-object training rows, deterministic by (seed, index)
"""

from segzero.shapes import world as _world
from segzero.shapes.world import *  # noqa: F403 - the world's public names, listed once in its __all__

__all__ = list(_world.__all__)
