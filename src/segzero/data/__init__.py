"""Datasets: readers for released annotations and the training-data builder.

- ``segzero.data.refer``: RefCOCO / RefCOCO+ / RefCOCOg (``refer`` toolkit layout) with decoded gt masks.
- ``segzero.data.build``: ``segzero data build`` (box + two points in the model frame, resumable, parallel).
- ``segzero.data.samples``: the per-image step of the builder (masks -> rows).
- ``segzero.data.export``: save/load built data, layout detection, the veRL export entry point.
- ``segzero.data.reasonseg``: LISA ReasonSeg release folders -> the evaluation layout.
- ``segzero.data.lisa`` (evaluation): LISA's ReasonSeg reader.

Importing this package is cheap (no ``datasets``/torch); the submodules import what they need.
"""

from segzero.data.refer import BadAnnotation, Ref, RefDataset, load_refer

__all__ = ["BadAnnotation", "Ref", "RefDataset", "load_refer"]
