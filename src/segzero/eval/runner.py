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
  next chunk generates (``evaluate_chunks``). With ``backend="vllm"`` a chunk is a window of
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from segzero import __version__
from segzero.errors import UserError
from segzero.eval.datasets import EvalDataset, SampleInfo, load_eval_dataset
from segzero.eval.identity import identity_changes, run_identity, weights_digest
from segzero.eval.protocols import SEGZERO, check_protocol, score_reference
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
from segzero.metrics import IGNORE_VALUE, IoUAccumulator, intersection_union, sample_iou, target_area
from segzero.models.base import DEFAULT_REASONER
from segzero.rle import encode_mask


@dataclass
class EvalConfig:
    """Settings of one evaluation run (the CLI flags of ``segzero eval``)."""

    data: str = field(metadata={"help": "hub id, save_to_disk folder, parquet, LISA folder or refer folder"})
    out: str = field(metadata={"help": "output folder (samples.jsonl, summary.json, report.html, run.json)"})
    split: str | None = field(default=None, metadata={"help": "split (default: test; refer: val)"})
    fmt: str = field(default="auto", metadata={"help": "auto, hub, disk, parquet, lisa or refer"})
    reasoner: str = field(default=DEFAULT_REASONER, metadata={"help": "reasoning VLM id or folder"})
    segmenter: str | None = field(
        default=None,
        metadata={"help": "SAM2 id or folder, color | grabcut; None = the reasoner folder's choice, else SAM2-large"},
    )
    prompt: str | None = field(
        default=None, metadata={"help": "segzero / visionreasoner; None = the folder's segzero.json, else from the id"}
    )
    frame: int | None = field(
        default=None,
        metadata={"help": "side of the square frame the VLM sees; None = the folder's segzero.json, else 840"},
    )
    batch_size: int = field(default=8, metadata={"help": "queries per reasoning batch"})
    max_new_tokens: int = field(default=1024, metadata={"help": "generation length limit"})
    backend: str = field(default="hf", metadata={"help": "hf (transformers generate) or vllm"})
    device: str | None = field(default=None, metadata={"help": "cuda / cpu; None = auto"})
    dtype: str | None = field(default=None, metadata={"help": "bfloat16 / float32; None = auto"})
    shard: str = field(default="0/1", metadata={"help": "i/n: run the i-th of n parts (by image)"})
    ignore_label: str = field(default="exclude", metadata={"help": "exclude (LISA) or target (hub copies)"})
    protocol: str = field(
        default="segzero",
        metadata={"help": "also score by a reference protocol: seg-zero, visionreasoner or lisa (segzero: only ours)"},
    )
    sentences: str = field(default="first", metadata={"help": "LISA folders: first or all sentences per image"})
    refer_dataset: str = field(default="refcocog", metadata={"help": "refer: refcoco, refcoco+, refcocog or grefcoco"})
    split_by: str | None = field(default=None, metadata={"help": "refer: unc / umd / google; None = default"})
    images_dir: str | None = field(default=None, metadata={"help": "refer: folder of the COCO images"})
    overwrite: bool = field(default=False, metadata={"help": "delete an existing run in out and start over"})
    max_samples: int | None = field(
        default=None, metadata={"help": "stop after this many new samples (per invocation: not part of the identity)"}
    )
    report: bool = field(default=True, metadata={"help": "write report.html"})
    save_masks: bool = field(default=True, metadata={"help": "store predicted masks (RLE) in the records"})
    progress: bool = field(default=True, metadata={"help": "show a tqdm progress bar"})
    gpu_memory_utilization: float = field(default=0.85, metadata={"help": "vllm: fraction of GPU memory"})
    vllm_window: int = field(
        default=512,
        metadata={
            "help": "vllm: queries per generate call (vLLM batches them continuously; records are written after "
            "each window); at least batch_size"
        },
    )

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


def _attempt(stage: str, fn, *args, **kwargs):
    """Run one stage; an exception becomes ``StageError`` (recorded as the sample's failure, never skipped)."""
    try:
        return fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 — the one place stage errors are caught; recorded with the reason
        return StageError(stage, f"{type(err).__name__}: {err}"[:500])


@dataclass(frozen=True)
class StageError:
    stage: str
    reason: str


def _target(gt: np.ndarray, ignore_label: str) -> tuple[np.ndarray, int | None, int]:
    """``(gt as scored, its ignore value, target area)`` under ``ignore_label``: "exclude" keeps ``IGNORE_VALUE``
    pixels out of both counts; otherwise every nonzero pixel is target."""
    ignore_value = IGNORE_VALUE if ignore_label == "exclude" else None
    gt_eff = gt if ignore_value is not None else gt != 0
    return gt_eff, ignore_value, target_area(gt_eff, ignore_value=ignore_value)


def score_sample(result, gt: np.ndarray, *, ignore_label: str) -> dict:
    """Intersection/union of ``result.mask`` against ``gt`` ((H, W) uint8 0/1/255) under the protocol."""
    gt_eff, ignore_value, area = _target(gt, ignore_label)
    if not result.parse_ok:
        return {"intersection": 0, "union": area, "gt_area": area, "pred_area": 0}
    pred = np.asarray(result.mask, dtype=bool)
    inter, union = intersection_union(pred, gt_eff, ignore_value=ignore_value)
    return {"intersection": inter, "union": union, "gt_area": area, "pred_area": int(pred.sum())}


def make_record(info: SampleInfo, gt, result, *, ignore_label: str, seconds: float, save_masks: bool) -> dict:
    """One ``samples.jsonl`` record for ``info`` from its gt (array or StageError) and result (or StageError)."""
    rec = {"index": info.index, "id": info.id, "image_id": info.image_id, "ann_id": info.ann_id, "query": info.query}
    stage, error, counts, status = None, "", None, "ok"
    if isinstance(gt, StageError):
        stage, error = gt.stage, gt.reason
        counts = {"intersection": 0, "union": 1, "gt_area": None, "pred_area": 0}
    else:
        area = _target(gt, ignore_label)[2]
        if isinstance(result, StageError):
            stage, error = result.stage, result.reason
        else:
            counts = _attempt("score", score_sample, result, gt, ignore_label=ignore_label)
            if isinstance(counts, StageError):
                stage, error = counts.stage, counts.reason
        if stage is not None:
            counts = {"intersection": 0, "union": area, "gt_area": area, "pred_area": 0}
    if stage is not None:
        status = "error"
    elif not result.parse_ok:
        status, error = "parse_failed", result.parse_error or "unparseable answer"
    ok_result = None if isinstance(result, StageError) or result is None else result
    rec.update(
        status=status,
        failed=status != "ok",
        stage=stage,
        error=error,
        intersection=int(counts["intersection"]),
        union=int(counts["union"]),
        iou=sample_iou(int(counts["intersection"]), int(counts["union"])),
        gt_area=counts["gt_area"],
        pred_area=counts["pred_area"],
        empty_target=counts["gt_area"] == 0,
        ignored_pixels=0 if isinstance(gt, StageError) else int(np.count_nonzero(gt == IGNORE_VALUE)),
        reasoning=getattr(ok_result, "reasoning", None),
        completion=getattr(ok_result, "completion", None),
        objects=[o.to_dict() for o in ok_result.objects] if ok_result is not None else [],
        scores=[float(s) for s in ok_result.scores] if ok_result is not None else [],
        pred_rle=encode_mask(np.asarray(ok_result.mask, dtype=bool)) if save_masks and status == "ok" else None,
        seconds=round(seconds, 4),
    )
    return rec


@dataclass
class LoadedChunk:
    """A chunk's decoded images (by ``SampleInfo.image_key``) and gts, each value or the ``StageError`` that stopped
    it, and the seconds spent decoding them."""

    samples: list[SampleInfo]
    images: dict[str, object]
    gts: dict[str, object]
    seconds: float

    def usable_images(self) -> list:
        """The distinct images that decoded."""
        return [im for im in self.images.values() if not isinstance(im, StageError)]


@dataclass
class GeneratedChunk:
    """A chunk after its first half (``generate_chunk``): decoded images and gts (or the ``StageError`` that
    stopped them), each runnable sample's completion (or ``StageError``) and the seconds spent."""

    samples: list[SampleInfo]
    images: dict[str, object]
    gts: dict[str, object]
    completions: dict[str, object]
    seconds: float


def load_chunk(ds: EvalDataset, chunk: list[SampleInfo]) -> LoadedChunk:
    """Decode a chunk's images (once per image) and gts. Never raises for a sample."""
    t0 = time.perf_counter()
    images: dict[str, object] = {}
    gts = {}
    for s in chunk:
        if s.image_key not in images:
            images[s.image_key] = _attempt("image", ds.image, s)
        gts[s.id] = _attempt("gt", ds.mask, s)
    return LoadedChunk(chunk, images, gts, time.perf_counter() - t0)


def generate_chunk(pipe, loaded: LoadedChunk, cfg: EvalConfig) -> GeneratedChunk:
    """Generate a loaded chunk's completions in one call (``pipe.generate``); when that call raises, each sample is
    generated alone, so one bad sample cannot sink its neighbours. Never raises for a sample."""
    t0 = time.perf_counter()
    images, completions = loaded.images, {}
    runnable = [s for s in loaded.samples if not isinstance(images[s.image_key], StageError)]
    if runnable:
        pairs = [images[s.image_key] for s in runnable], [s.query for s in runnable]
        outs = _attempt("model", pipe.generate, *pairs, batch_size=len(runnable))  # no tail batch split off
        if isinstance(outs, StageError) or len(outs) != len(runnable):
            outs = [_attempt("model", pipe.generate, [images[s.image_key]], [s.query]) for s in runnable]
            outs = [o if isinstance(o, StageError) else o[0] for o in outs]
        completions = {s.id: o for s, o in zip(runnable, outs, strict=True)}
    seconds = loaded.seconds + time.perf_counter() - t0
    return GeneratedChunk(loaded.samples, images, loaded.gts, completions, seconds)


def finish_chunk(pipe, job: GeneratedChunk, cfg: EvalConfig, embeddings=None) -> list[dict]:
    """The second half: segment the completions (``pipe.segment_many``: one SAM2 embedding and one decoder call
    per image; per sample when that raises) and score them into records. ``embeddings``: a future of the chunk's
    images' embeddings (``pipe.embed_images``, computed while the chunk generated); an image it lacks (its
    embedding failed) is embedded here, so a failure is recorded exactly as without it. Never raises for a
    sample."""
    t0 = time.perf_counter()
    ahead = embeddings.result() if embeddings is not None else None
    ahead = None if isinstance(ahead, StageError) else ahead
    results: dict[str, object] = {}
    for s in job.samples:  # the first stage that failed (image, then generation) is the sample's result
        failed = [v for v in (job.images[s.image_key], job.completions.get(s.id)) if isinstance(v, StageError)]
        if failed:
            results[s.id] = failed[0]
    todo = [s for s in job.samples if s.id not in results]
    if todo:
        images, texts = [job.images[s.image_key] for s in todo], [job.completions[s.id] for s in todo]
        outs = _attempt("model", pipe.segment_many, images, texts, embeddings=ahead)
        if isinstance(outs, StageError) or len(outs) != len(todo):
            outs = [_attempt("model", pipe.segment, im, text) for im, text in zip(images, texts, strict=True)]
        results.update({s.id: r for s, r in zip(todo, outs, strict=True)})
    seconds = (job.seconds + time.perf_counter() - t0) / len(job.samples)
    records = [
        make_record(
            s, job.gts[s.id], results[s.id], ignore_label=cfg.ignore_label, seconds=seconds, save_masks=cfg.save_masks
        )
        for s in job.samples
    ]
    if cfg.protocol != SEGZERO:
        for s, rec in zip(job.samples, records, strict=True):
            rec["reference"] = _reference(pipe, cfg.protocol, job.images[s.image_key], job.gts[s.id], results[s.id])
    return records


def evaluate_chunks(pipe, ds: EvalDataset, chunks: list[list[SampleInfo]], cfg: EvalConfig):
    """Yield each chunk's records, in chunk order, from three stages that work at the same time: the calling
    thread loads chunk k and generates its completions; an embedding thread computes the SAM2 embeddings of chunk
    k's images as soon as they are loaded (while chunk k generates: the segmenter does not wait for the reasoner);
    a segmenting thread decodes chunk k's masks and scores them once both are done. At most one chunk waits to be
    segmented, so the embeddings run at most two chunks ahead."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="segzero-embed") as embedder,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="segzero-segment") as segmenter,
    ):
        pending = None
        for chunk in chunks:
            loaded = load_chunk(ds, chunk)
            embeddings = embedder.submit(_attempt, "model", pipe.embed_images, loaded.usable_images())
            job = generate_chunk(pipe, loaded, cfg)
            if pending is not None:
                yield pending.result()
            pending = segmenter.submit(finish_chunk, pipe, job, cfg, embeddings)
        if pending is not None:
            yield pending.result()


def _reference(pipe, protocol: str, image, gt, result) -> dict:
    """The ``reference`` field of a record: the sample scored by ``protocol`` (``segzero.eval.protocols``)."""
    if isinstance(image, StageError) or isinstance(gt, StageError):
        return score_reference(protocol, None, None, image_size=(1, 1), segment=None)
    scored = _attempt(
        "reference",
        score_reference,
        protocol,
        None if isinstance(result, StageError) else result,
        gt,
        image_size=(gt.shape[1], gt.shape[0]),  # original pixels (W, H)
        segment=lambda objects: pipe.mask_for(image, objects),
    )
    if isinstance(scored, StageError):  # the reference's own segmentation raised: its script skips the sample
        return {"intersection": None, "union": None, "resegmented": True, "error": scored.reason}
    return scored


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
