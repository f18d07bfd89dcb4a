"""Model adapters: the interfaces every reasoner and segmenter satisfies and the default checkpoints
(``segzero.models.base``), the reasoning VLM (``segzero.models.reasoner``; what a checkpoint says about its prompt
family, frame, answer frame and weights: ``segzero.models.checkpoint``), SAM2 and SAM3's tracker
(``segzero.models.segmenter``), SAM3's concept mode (``segzero.models.sam3``), the weight-free segmenters
(``segzero.models.weightfree``), an image-only Qwen-VL processor (``segzero.models.processor``), the real
Qwen vocabulary without the hub (``segzero.models.qwen_vocab``), and tiny models built from configs
(``segzero.models.tiny``: the offline reasoner and segmenters of tests, smoke runs and ``segzero tiny-models``).

Importing this package is cheap: ``Reasoner`` and ``Segmenter`` are resolved lazily on first attribute access,
so torch and transformers load only when a model is used.
"""

from __future__ import annotations

import importlib

_LAZY = {"Reasoner": "segzero.models.reasoner", "Segmenter": "segzero.models.segmenter"}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'segzero.models' has no attribute {name!r}")
