"""Example images and queries for the web demo, drawn on the fly from the shapes world (offline, no files).

Example ``i`` is sample ``i`` of ``segzero.worlds.shapes`` with seed ``seed`` at ``size`` pixels: coloured
circles, squares and triangles on a plain background with a query naming exactly one of them. PNG bytes are made
in memory on request (a few ms) and cached per index.

    examples = ShapesExamples(count=6, size=320)
    examples.list()          # [{"index": 0, "query": "...", "url": "/v1/examples/0.png", "size": [320, 320]}, ...]
    examples.png(0)          # PNG bytes
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class ShapesExamples:
    """Which shapes-world samples the demo offers."""

    count: int = field(default=6, metadata={"help": "number of examples offered"})
    size: int = field(default=320, metadata={"help": "image side in pixels"})
    seed: int = field(default=0, metadata={"help": "shapes-world seed"})

    def sample(self, index: int) -> dict:
        """The shapes-world sample (``image`` PIL RGB, ``problem`` query); ``IndexError`` outside ``[0, count)``."""
        if not 0 <= index < self.count:
            raise IndexError(f"example {index} does not exist (0..{self.count - 1})")
        return _sample(self.seed, index, self.size)

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
        return _png(self.seed, index, self.size)


@lru_cache(maxsize=64)
def _sample(seed: int, index: int, size: int) -> dict:
    from segzero.worlds.shapes import ShapesConfig, make_sample

    return make_sample(index, seed=seed, config=ShapesConfig(size=size))


@lru_cache(maxsize=64)
def _png(seed: int, index: int, size: int) -> bytes:
    buf = io.BytesIO()
    _sample(seed, index, size)["image"].save(buf, format="PNG")
    return buf.getvalue()
