"""The evaluation loop behind ``segzero eval``: batched, resumable, sharded, every sample accounted for.

Usage::

    from segzero.eval.runner import EvalConfig, run_eval
    summary = run_eval(EvalConfig(data="Ricky06662/ReasonSeg_test", out="runs/segzero7b_test"))

How it works:

- samples of the shard are ordered by image and cut into chunks of whole images with >= ``batch_size`` queries
  (at most ``batch_size`` + the largest image's queries - 1); each chunk is one ``SegZeroPipeline.generate`` call
  (not re-split into a full batch and a small tail), then one ``segment_many`` call (one SAM2 embedding and one
  mask-decoder call per image); the SAM2 embeddings of a chunk's images are computed in their own thread as soon as
  the images are loaded, while the chunk generates, and its masks are decoded and scored in a third thread while the
  next chunk generates (``segzero.eval.chunks.evaluate_chunks``). With ``backend="vllm"`` a chunk is a window of
  ``vllm_window`` queries (``chunk_queries``): one ``LLM.generate`` call whose requests vLLM schedules
  continuously;
- every sample yields exactly one record in ``DIR/samples.jsonl`` (format: ``segzero.eval.records``), written
  and fsynced per chunk. A failing stage (image decode, gt decode, model, scoring) becomes that sample's
  failure with ``stage`` and ``error``; when a whole chunk's generate or segment call raises, its samples are
  retried one by one so one bad sample cannot sink its neighbours;
- ``DIR/run.json`` holds the run's identity (``segzero.eval.identity``: dataset and its samples, protocol, shard,
  content hashes of the reasoner's weights and other files and of the segmenter's, prompt, frame, generation
  settings, dtype, device, backend) and provenance; it is written once, when the run first starts (after the
  models load), and never by a resume. Running the same command again resumes: records already present are kept, a
  truncated last line is dropped, only the missing samples run. An invocation whose identity differs is refused
  with one line naming the keys that changed (``UserError``), checked before the models load and again after (a
  hub model may have been downloaded or updated); ``overwrite`` deletes the old records, summary and report and
  starts over;
- ``DIR/summary.json`` and ``DIR/report.html`` are rewritten at the end of every invocation from all records
  (``segzero.eval.summary.summarize``), so a resumed run gives the same summary as an uninterrupted one.
"""

from __future__ import annotations

import time
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path

from segzero import __version__
from segzero.data.refer import SPLITS_BY
from segzero.errors import UserError
from segzero.eval.chunks import evaluate_chunks
from segzero.eval.datasets import EvalDataset, SampleInfo, load_eval_dataset
from segzero.eval.identity import identity_changes, run_identity, weights_digest
from segzero.eval.protocols import PROTOCOLS, check_protocol
from segzero.eval.records import RecordWriter, repair_records
from segzero.eval.summary import (
    REPORT_FILE,
    RUN_FILE,
    SAMPLES_FILE,
    SUMMARY_FILE,
    protocol,
    read_header,
    summarize,
    write_json,
)
from segzero.metrics import IoUAccumulator
from segzero.models.base import DEFAULT_REASONER, DEFAULT_SEGMENTER
from segzero.prompts import PROMPT_KINDS


def _f(default=MISSING, help: str = "", **meta):  # noqa: A002 - "help" mirrors argparse/dataclass metadata wording
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class EvalConfig:
    """Settings of one evaluation run; ``segzero eval`` makes its flags from these fields (``segzero.cli.fields``)."""

    data: str = _f(help="hub id, save_to_disk folder, parquet file/folder, LISA folder or refer folder")
    out: str = _f(help="output folder (samples.jsonl, summary.json, report.html, run.json)")
    split: str | None = _f(None, "dataset split (default test; refer: val; revos: valid)")
    fmt: str = _f(
        "auto",
        "how to read --data (revos: a ReVOS-layout video set, scored with J, F and J&F)",
        choices=("auto", "hub", "disk", "parquet", "lisa", "refer", "revos"),
    )
    reasoner: str = _f(DEFAULT_REASONER, "reasoning VLM id or folder ('shipped': the shapes model inside the package)")
    segmenter: str | None = _f(
        None,
        "SAM2 id or folder, or a weight-free segmenter: color | grabcut (default: the one the reasoner folder's "
        f"segzero.json names, else {DEFAULT_SEGMENTER})",
    )
    prompt: str | None = _f(
        None, "prompt family (default: the reasoner's own files, else its id)", choices=tuple(sorted(PROMPT_KINDS))
    )
    frame: int | None = _f(
        None, "side of the square frame the VLM sees (default: the folder's segzero.json, else 840)"
    )
    batch_size: int = _f(8, "queries per reasoning batch")
    max_new_tokens: int = _f(1024, "generation length limit")
    backend: str = _f("hf", "generation backend: transformers generate or vLLM", choices=("hf", "vllm"))
    gpu_memory_utilization: float = _f(0.85, "vllm: GPU memory fraction")
    vllm_window: int = _f(
        512,
        "vllm: queries per generate call (vLLM batches them continuously; records are written after each window); "
        "at least batch_size",
    )
    device: str | None = _f(None, "cuda / cpu (default: cuda when available)")
    dtype: str | None = _f(None, "reasoner dtype: bfloat16 / float16 / float32 (default: auto)")
    shard: str = _f("0/1", "run part i of n (by image), e.g. 3/8")
    ignore_label: str = _f(
        "exclude",
        "gt pixels 255: exclude from I and U (LISA) or count as target (hub copies)",
        choices=("exclude", "target"),
    )
    protocol: str = _f(
        "segzero",
        "also score every sample as a reference script does (seg-zero, visionreasoner, lisa) and report both side "
        "by side, with the count of samples where they differ (segzero: segzero's protocol only)",
        choices=PROTOCOLS,
    )
    sentences: str = _f("first", "LISA folders: queries per image", choices=("first", "all"))
    refer_dataset: str = _f(
        "refcocog",
        "refer annotations: refcoco, refcoco+, refcocog (refs(...).p) or grefcoco (grefs(unc).json)",
        choices=tuple(SPLITS_BY),
    )
    split_by: str | None = _f(None, "refer: unc / umd / google (default per dataset)")
    images_dir: str | None = _f(None, "refer: COCO image folder (e.g. train2014)")
    overwrite: bool = _f(False, "delete an existing run in out and start over")
    max_samples: int | None = _f(None, "stop after this many new samples (per invocation: not part of the identity)")
    report: bool = _f(True, "write report.html")
    save_masks: bool = _f(True, "store predicted mask RLEs in the records")
    progress: bool = _f(True, "show a progress bar")

    def __post_init__(self) -> None:
        if self.segmenter is None:  # resolved here so run.json records (and resume compares) the real segmenter
            from segzero.pipeline import default_segmenter_for  # noqa: PLC0415 (light: no torch at import)

            self.segmenter = default_segmenter_for(self.reasoner)


def parse_shard(shard: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; ``UserError`` otherwise."""
    try:
        i, n = (int(v) for v in str(shard).split("/"))
    except ValueError:
        raise UserError(f"--shard must look like i/n (e.g. 0/8), got {shard!r}") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {shard}: need 0 <= i < n")
    return i, n


def image_groups(samples: list[SampleInfo]) -> list[list[SampleInfo]]:
    """Samples grouped by ``image_key``, groups in first-appearance order, samples in dataset order."""
    groups: dict[str, list[SampleInfo]] = {}
    for s in samples:
        groups.setdefault(s.image_key, []).append(s)
    return list(groups.values())


def select_shard(samples: list[SampleInfo], shard: str) -> list[SampleInfo]:
    """The samples of shard ``i/n``: the i-th of n contiguous blocks of images (all queries of an image together)."""
    i, n = parse_shard(shard)
    groups = image_groups(samples)
    lo, hi = i * len(groups) // n, (i + 1) * len(groups) // n
    return [s for g in groups[lo:hi] for s in g]


def chunk_queries(cfg: EvalConfig) -> int:
    """Queries per chunk (one generate call): ``batch_size`` for transformers' generate; for vLLM, whose scheduler
    keeps its own running batch full, a window of ``vllm_window`` queries so that it has many requests to schedule.

    >>> [chunk_queries(EvalConfig(data="d", out="o", segmenter="color", backend=b)) for b in ("hf", "vllm")]
    [8, 512]
    """
    return cfg.batch_size if cfg.backend == "hf" else max(cfg.batch_size, cfg.vllm_window)


def plan_chunks(samples: list[SampleInfo], batch_size: int) -> list[list[SampleInfo]]:
    """Consecutive whole-image groups with at least ``batch_size`` samples each (the last may be smaller)."""
    chunks, cur = [], []
    for group in image_groups(samples):
        cur.extend(group)
        if len(cur) >= batch_size:
            chunks.append(cur)
            cur = []
    if cur:
        chunks.append(cur)
    return chunks


def model_revision(name_or_path: str) -> str | None:
    """Provenance of a model: a local folder -> ``local:<content hash of its weights>``; a hub id -> the cached
    commit (None when it is not cached or not a valid id)."""
    path = Path(name_or_path)
    if path.is_dir():
        return "local:" + weights_digest(path).removeprefix("sha256:")
    from huggingface_hub import try_to_load_from_cache  # noqa: PLC0415

    try:
        cached = try_to_load_from_cache(str(name_or_path), "config.json")
    except ValueError:  # not a valid repo id (e.g. a missing path): no provenance to give
        return None
    return Path(cached).parent.name if isinstance(cached, str) else None


def build_header(cfg: EvalConfig, ds: EvalDataset, shard_size: int) -> dict:
    """The contents of ``run.json``: ``identity`` (``segzero.eval.identity.run_identity``, what resume compares)
    and provenance (resolved prompt, frame, dataset description, model revisions, package version, the config)."""
    identity = run_identity(cfg, ds)
    return {
        "identity": identity,
        "split": ds.split,
        "ignore_label": cfg.ignore_label,
        "reasoner": cfg.reasoner,
        "segmenter": cfg.segmenter,
        "prompt": identity["prompt"],
        "frame": identity["frame"],
        "backend": cfg.backend,
        "shard": cfg.shard,
        "shard_size": shard_size,
        "dataset": ds.describe(),
        "models": {
            "reasoner": cfg.reasoner,
            "reasoner_revision": model_revision(cfg.reasoner),
            "segmenter": cfg.segmenter,
            "segmenter_revision": model_revision(cfg.segmenter),
        },
        "package_version": __version__,
        "config": asdict(cfg),
    }


def check_run(out: Path, header: dict) -> dict:
    """The header of the run to continue: the stored ``run.json`` when ``out`` has one and its identity equals
    ``header["identity"]``, else ``header`` for a new run. ``UserError`` naming the changed keys when they differ."""
    if not (out / RUN_FILE).is_file():
        return header
    old = read_header(out)
    if not isinstance(old.get("identity"), dict):
        raise UserError(
            f"{out} holds a run from an older segzero without a full identity in {RUN_FILE}; "
            "use --overwrite to start over or a new --out"
        )
    changed = identity_changes(old["identity"], header["identity"])
    if changed:
        raise UserError(
            f"{out} holds a run with different {', '.join(changed)}; use --overwrite to start over or a new --out"
        )
    return old


def prepare_out(out: Path, header: dict, *, overwrite: bool) -> tuple[dict, list[dict]]:
    """Check that ``out`` is new or holds the same run (``check_run``); returns ``(the run's header, the records
    already done)``. ``overwrite`` first deletes the old run's files; records without a ``run.json`` raise
    ``UserError``. A truncated last record line is dropped from the file.
    """
    samples = out / SAMPLES_FILE
    if overwrite:
        for name in (SAMPLES_FILE, SUMMARY_FILE, RUN_FILE, REPORT_FILE):
            (out / name).unlink(missing_ok=True)
    if not (out / RUN_FILE).is_file() and samples.is_file():
        raise UserError(f"{samples} exists without {RUN_FILE}; use --overwrite to start over or a new --out")
    header = check_run(out, header)
    records, _ = repair_records(samples)
    return header, records


def start_run(out: Path, header: dict) -> None:
    """Write ``run.json`` when ``out`` has none (a run's first start); an existing one is left untouched."""
    out.mkdir(parents=True, exist_ok=True)
    if not (out / RUN_FILE).is_file():
        write_json(out / RUN_FILE, header)


def build_pipeline(cfg: EvalConfig):
    """The pipeline for ``cfg``: HF reasoner, or vLLM generation (``backend="vllm"``), plus the SAM2 segmenter."""
    from segzero.pipeline import SegZeroPipeline  # noqa: PLC0415

    if cfg.backend == "hf":
        return SegZeroPipeline.from_pretrained(
            reasoner=cfg.reasoner,
            segmenter=cfg.segmenter,
            device=cfg.device,
            dtype=cfg.dtype,
            batch_size=cfg.batch_size,
            prompt=cfg.prompt,
            frame=cfg.frame,
            max_new_tokens=cfg.max_new_tokens,
        )
    if cfg.backend == "vllm":
        from segzero.eval.vllm_backend import VLLMReasoner  # noqa: PLC0415

        reasoner = VLLMReasoner.from_pretrained(
            cfg.reasoner,
            prompt=cfg.prompt,
            frame=cfg.frame,
            max_new_tokens=cfg.max_new_tokens,
            dtype=cfg.dtype,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
        )
        return SegZeroPipeline.from_pretrained(
            reasoner=reasoner, segmenter=cfg.segmenter, device=cfg.device, batch_size=cfg.batch_size
        )
    raise UserError(f"unknown backend {cfg.backend!r}; choose hf or vllm")


def run_eval(cfg: EvalConfig, *, dataset: EvalDataset | None = None, pipeline=None) -> dict:
    """Evaluate (or resume) ``cfg``; returns the summary written to ``cfg.out/summary.json``.

    ``dataset``/``pipeline`` may be given pre-built (tests, benchmarks); otherwise they come from ``cfg``.
    """
    if cfg.batch_size < 1 or cfg.vllm_window < 1:
        raise UserError("--batch-size and --vllm-window must be >= 1")
    protocol(cfg.ignore_label)  # validates
    try:
        check_protocol(cfg.protocol)
    except ValueError as err:
        raise UserError(f"--protocol: {err}") from None
    if cfg.backend not in ("hf", "vllm"):
        raise UserError(f"unknown backend {cfg.backend!r}; choose hf or vllm")
    ds = dataset or load_eval_dataset(
        cfg.data,
        split=cfg.split,
        fmt=cfg.fmt,
        sentences=cfg.sentences,
        refer_dataset=cfg.refer_dataset,
        split_by=cfg.split_by,
        images_dir=cfg.images_dir,
    )
    shard_samples = select_shard(ds.samples, cfg.shard)
    out = Path(cfg.out)
    header, done = prepare_out(out, build_header(cfg, ds, len(shard_samples)), overwrite=cfg.overwrite)
    done_ids = {r["id"] for r in done}
    todo = [s for s in shard_samples if s.id not in done_ids]
    if cfg.max_samples is not None:
        todo = todo[: max(0, cfg.max_samples)]
    if todo and pipeline is None:
        pipeline = build_pipeline(cfg)
        # loading may have downloaded a hub model (or a newer revision of it): its identity is taken again
        header = check_run(out, build_header(cfg, ds, len(shard_samples)))
    start_run(out, header)  # after the models load: a failed first start leaves no run to resume
    running = IoUAccumulator.from_records(done)
    from tqdm.auto import tqdm  # noqa: PLC0415

    bar = tqdm(
        total=len(shard_samples),
        initial=len(done),
        disable=not cfg.progress,
        desc=f"eval {cfg.shard}",
        unit="sample",
        dynamic_ncols=True,
    )
    t0 = time.perf_counter()
    with RecordWriter(out / SAMPLES_FILE) as writer, bar:
        for records in evaluate_chunks(pipeline, ds, plan_chunks(todo, chunk_queries(cfg)), cfg):
            writer.write_many(records)
            for rec in records:
                running.add(rec["intersection"], rec["union"], failed=rec["failed"])
            bar.update(len(records))
            bar.set_postfix(
                gIoU=f"{running.summary()['gIoU']:.3f}", failed=running.n_failed
            )  # a fraction, as in summary.json
    wall = time.perf_counter() - t0
    records, _ = repair_records(out / SAMPLES_FILE)
    summary = summarize(records, header, expected=len(shard_samples))
    summary["last_invocation"] = {
        "new_samples": len(todo),
        "wall_seconds": round(wall, 3),
        "samples_per_second": round(len(todo) / wall, 4) if wall > 0 and todo else None,
    }
    write_json(out / SUMMARY_FILE, summary)
    if cfg.report:
        from segzero.eval.report import write_report  # noqa: PLC0415

        write_report(out, dataset=ds)
    return summary
