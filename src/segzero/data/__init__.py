"""Datasets: readers for released annotations and the training-data builder.

- ``segzero.data.refer``: RefCOCO / RefCOCO+ / RefCOCOg (``refer`` toolkit layout) with decoded gt masks.
- ``segzero.data.build``: ``segzero data build`` (box + two points in the model frame, resumable, parallel).
- ``segzero.data.manifest`` / ``segzero.data.coco``: the builder's other sources, a JSON Lines manifest of your own
  images, masks and queries, and COCO instances (+ queries, or one row per category).
- ``segzero.data.mix``: ``segzero data build --mix``, built sets combined by sampling weight.
- ``segzero.data.samples``: the per-image step of the builder (masks -> rows); ``segzero.data.masks`` reads one
  object's mask in any accepted form; ``segzero.data.shards`` keeps the resumable state.
- ``segzero.data.export``: save/load built data, layout detection, the veRL export entry point.
- ``segzero.data.reasonseg``: LISA ReasonSeg release folders -> the evaluation layout.
- ``segzero.data.lisa`` (evaluation): LISA's ReasonSeg reader.

Importing this package is cheap (no ``datasets``/torch); the submodules import what they need.
"""

from segzero.data.refer import BadAnnotation, Ref, RefDataset, load_refer

__all__ = ["BadAnnotation", "Ref", "RefDataset", "load_refer"]
