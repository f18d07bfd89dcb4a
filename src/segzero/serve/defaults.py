"""Which models ``segzero serve`` loads when the user names none.

``default_models()`` is the single place that decides it: the shapes-world reasoner shipped in the package
(``segzero.assets``) with the weight-free ``color`` segmenter, so ``segzero serve`` works offline::

    from segzero.serve.defaults import default_models
    kwargs = default_models()   # -> {"reasoner": path, "segmenter": path, **SegZeroPipeline.from_pretrained kwargs}
"""

from __future__ import annotations


def default_models() -> dict:
    """Pipeline arguments for the shipped default model: ``reasoner``, ``segmenter`` and optional settings.

    Keys other than ``reasoner``/``segmenter`` (e.g. ``frame``, ``max_new_tokens``) are
    ``SegZeroPipeline.from_pretrained`` keywords; explicit command-line values override them.
    The default is the tiny shapes-world reasoner shipped in the package (``segzero.assets``; its frame and prompt
    come from its ``segzero.json``) with the weight-free ``color`` segmenter: offline, no downloads. Raises
    ``UserError`` when the installation lacks the shipped model.
    """
    from segzero.assets import DEFAULT_SHAPES_SEGMENTER, SHAPES_MAX_NEW_TOKENS, shapes_model_path

    return {
        "reasoner": str(shapes_model_path()),
        "segmenter": DEFAULT_SHAPES_SEGMENTER,
        "max_new_tokens": SHAPES_MAX_NEW_TOKENS,
    }
