"""What the web demo offers as examples: any object with ``list()`` and ``png(index)`` (``Examples``).

``segzero serve`` passes the shapes world's scenes of the served model (``segzero.shapes.examples``); an app
built without examples offers none.
"""

from __future__ import annotations

from typing import Protocol


class Examples(Protocol):
    """Example images and queries: ``list()`` -> ``[{"index", "query", "url", "size"}, ...]``; ``png(index)`` ->
    PNG bytes, ``IndexError`` for an index it does not have."""

    def list(self) -> list[dict]: ...

    def png(self, index: int) -> bytes: ...


class NoExamples:
    """No examples (the default of an app that was given none)."""

    def list(self) -> list[dict]:
        return []

    def png(self, index: int) -> bytes:
        raise IndexError(f"example {index} does not exist (this server offers none)")
