"""Which models ``segzero serve`` loads when the user names none.

``default_models()`` is the single place that decides it. The shipped shapes model (issue 7) is not built yet,
so for now it raises a ``UserError`` telling the user to pass ``--reasoner``/``--segmenter`` (or to build the
tiny offline models with ``segzero tiny-models``). When the shapes model ships, this function returns its
folders (and any pipeline settings it needs, such as its frame) and nothing else has to change::

    from segzero.serve.defaults import default_models
    kwargs = default_models()   # -> {"reasoner": path, "segmenter": path, **SegZeroPipeline.from_pretrained kwargs}
"""

from __future__ import annotations

from segzero.errors import UserError


def default_models() -> dict:
    """Pipeline arguments for the shipped default model: ``reasoner``, ``segmenter`` and optional settings.

    Keys other than ``reasoner``/``segmenter`` (e.g. ``frame``, ``max_new_tokens``) are
    ``SegZeroPipeline.from_pretrained`` keywords; explicit command-line values override them.
    Raises ``UserError`` while no default model ships with the package.
    """
    raise UserError(
        "no default model ships yet: pass --reasoner DIR_OR_ID and --segmenter DIR_OR_ID "
        "(offline: `segzero tiny-models --out models` then --reasoner models/reasoner --segmenter models/segmenter)"
    )
