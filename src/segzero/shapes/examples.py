"""Example images and queries for the web demo, drawn on the fly from the shapes world (offline, no files).

Example ``i`` is sample ``i`` of the val split of the shapes world ``world`` (a recipe's ``dataset_args.world``
settings; ``segzero serve`` passes the served model's training world from its ``segzero.json``, so the page offers
scenes and queries the model knows; None = the default world) with seed ``seed`` at ``size`` pixels, with a query
meaning exactly one shape. PNG bytes are made in memory on request (a few ms) and cached per index.

    examples = ShapesExamples(count=6, size=320, world=json.dumps({"max_shapes": 3}))
    examples.list()          # [{"index": 0, "query": "...", "url": "/v1/examples/0.png", "size": [320, 320]}, ...]
    examples.png(0)          # PNG bytes
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class ShapesExamples:
    """Which shapes-world samples the demo offers."""

    count: int = field(default=6, metadata={"help": "number of examples offered"})
    size: int = field(default=320, metadata={"help": "image side in pixels"})
    seed: int = field(default=0, metadata={"help": "shapes-world seed"})
    world: str | None = field(
        default=None, metadata={"help": "shapes-world settings as a JSON object (world_from_spec); None = default"}
    )

    @classmethod
    def for_model(cls, reasoner, **kwargs) -> ShapesExamples:
        """Examples from the world a reasoner folder was trained on (``world`` in its ``segzero.json``, if any)."""
        from segzero.models.reasoner import recorded_world

        world = recorded_world(reasoner)
        return cls(world=None if world is None else json.dumps(world, sort_keys=True), **kwargs)

    def sample(self, index: int) -> dict:
        """The shapes-world sample (``image`` PIL RGB, ``problem`` query); ``IndexError`` outside ``[0, count)``."""
        if not 0 <= index < self.count:
            raise IndexError(f"example {index} does not exist (0..{self.count - 1})")
        return _sample(self.seed, index, self.size, self.world)

    def list(self) -> list[dict]:
        """JSON-ready description of every example."""
        out = []
        for i in range(self.count):
            s = self.sample(i)
            out.append(
                {"index": i, "query": s["problem"], "url": f"/v1/examples/{i}.png", "size": list(s["image"].size)}
            )
        return out

    def png(self, index: int) -> bytes:
        """PNG bytes of example ``index``; ``IndexError`` outside ``[0, count)``."""
        self.sample(index)
        return _png(self.seed, index, self.size, self.world)


@lru_cache(maxsize=64)
def _sample(seed: int, index: int, size: int, world: str | None) -> dict:
    from segzero.shapes.world import make_sample, world_from_spec

    config, families = world_from_spec(json.loads(world) if world else None, size=size)
    return make_sample(index, seed=seed, config=config, split="val", layout="eval", families=families)


@lru_cache(maxsize=64)
def _png(seed: int, index: int, size: int, world: str | None) -> bytes:
    buf = io.BytesIO()
    _sample(seed, index, size, world)["image"].save(buf, format="PNG")
    return buf.getvalue()
