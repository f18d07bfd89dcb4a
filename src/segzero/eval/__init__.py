"""Evaluation harness (``segzero eval``): ReasonSeg / RefCOCO-family, gIoU and cIoU, resumable and sharded.

Modules: ``datasets`` (sources -> ``EvalDataset``), ``runner`` (``EvalConfig``, ``run_eval``), ``records``
(``samples.jsonl`` format), ``summary`` (metrics, protocol, ``merge_runs``), ``report`` (``report.html``),
``vllm_backend`` (``--backend vllm``). Nothing here imports torch at import time.
"""
