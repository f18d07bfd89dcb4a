"""Build Seg-Zero / VisionReasoner training data (``segzero data build``) from RefCOCO-family annotations, a JSON
Lines manifest of your own images (``segzero.data.manifest``) or COCO-format instances (``segzero.data.coco``).

Usage::

    segzero data build --source refcocog --refer-dir data/refcocog --images coco/train2014 --out out/refcocog_840
    segzero data build --source jsonl --manifest my_data/manifest.jsonl --out out/my_set
    segzero data build --source coco --instances instances.json --images images --queries queries.jsonl --out out/c
    # or from Python
    from segzero.data.build import BuildConfig, build
    stats = build(BuildConfig(source="refcocog", refer_dir=..., images_dir=..., out=...))

Output folder ``OUT``:
- ``dataset_dict.json`` + ``<split>/``: a ``datasets.DatasetDict`` (``datasets.load_from_disk(OUT)``) with
  columns ``id, problem, solution, image, img_height, img_width``; ``image`` is resized to the model frame,
  ``solution`` is in the model frame, ``img_height``/``img_width`` are the original size.
- ``parquet/<split>.parquet``: the same rows as one parquet file.
- ``stats.json``: counts, drops by reason (rows and objects), examples, box/point histograms, the frame.
- ``_work/``: the resumable state (plan fingerprint + one parquet/json pair per finished shard of images);
  a killed build rerun with the same options skips finished shards. Removed after success unless
  ``keep_work``.

Every source plans ``ImageTask``s (``segzero.data.samples``) that one row builder turns into rows, with the same
filters, drop accounting, stats and resumable shards. The manifest and COCO sources also write the columns
``segzero eval`` reads (``eval_columns``; ``segzero.data.export.EVAL_FEATURES``).

Rows: ``layout="single"`` gives one row per referring expression (gt box + two points of its object);
``layout="multi"`` gives one row per image joining ``min_objects..max_objects`` distinct referred objects (a
seeded random choice, one random expression each, joined with ``joiner``), gt a JSON list of
``bbox_2d``/``point_2d`` (point 1). ``limit`` samples that many planned rows with ``seed``.

Every planned row is either written or counted under one drop reason: ``rows_planned == rows_written +
sum(dropped_rows.values())``. Drop reasons: ``missing_image``, ``unreadable_image``, ``image_size_mismatch``,
``ann_id_not_found``, ``image_id_not_found``, ``ann_image_mismatch``, ``polygon_too_few_points``, ``empty_mask``,
``rle_size_mismatch``, ``bad_segmentation``, ``sam_iou_below_threshold``; objects without sentences are counted
as ``no_sentences`` objects.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

from segzero.data.refer import DEFAULT_SPLIT_BY, Ref, load_refer
from segzero.data.samples import HIST_BINS, ImageTask, ObjectTask, RowTask, SampleOptions, TaskResult
from segzero.data.shards import result_from_json, run_shard, split_shards, write_shard
from segzero.errors import UserError
from segzero.geometry import DEFAULT_FRAME, frame_size
from segzero.points import BORDERS, FALLBACKS

SOURCES = DEFAULT_SPLIT_BY  # refer source -> its default split_by (the refer reader's)
FILE_SOURCES = ("jsonl", "coco")  # a manifest of your own images (segzero.data.manifest); COCO instances (.coco)
ALL_SOURCES = (*SOURCES, *FILE_SOURCES)


@dataclass(frozen=True)
class BuildConfig:
    """Options of one build; every field changes the output and so the resume fingerprint (except workers)."""

    source: str  # refcoco, refcoco+, refcocog, grefcoco; jsonl (a manifest); coco (instances + queries)
    refer_dir: str = ""  # refer sources: folder with refs(<split_by>).p and instances.json
    images_dir: str = ""  # refer and coco sources: the images, looked up by file_name
    out: str = ""  # output folder (required)
    manifest: str = ""  # jsonl source: the manifest file (paths in it are relative to its folder)
    instances: str = ""  # coco source: the instances JSON
    queries: str = ""  # coco source: queries JSON Lines; "" for one row per category present in an image
    category_query: str = "the {category}"  # coco source without queries: the query of a category's row
    eval_columns: bool | None = None  # write text/mask/image_id/ann_id too; None: for jsonl and coco, not refer
    split_by: str | None = None  # refer split_by (unc / umd / google); None: the source's default
    split: str = "train"  # refer split to build (train, val, test, testA, ...; "all" for all)
    frame: int | tuple[int, int] = DEFAULT_FRAME  # model frame side or (w, h)
    layout: str = "single"  # "single": one row per expression; "multi": several objects of an image per row
    limit: int | None = None  # sample at most this many planned rows (seeded), None for all
    seed: int = 0  # seed of the --limit sample and of multi-object grouping
    max_objects: int = 3  # multi layout: most objects joined into one row
    min_objects: int = 1  # multi layout: images with fewer valid objects give no row
    joiner: str = " and "  # multi layout: text between the joined expressions
    quote: str = "'"  # multi layout: each joined expression inside it ('a' and 'b', as the reference writes)
    text: str = "raw"  # "raw" (annotators' text, as the reference) or "sent" (refer's tokenised text)
    strip: str = ".?!"  # characters stripped from both ends of an expression (after whitespace), then lower-cased
    image_format: str = "JPEG"  # JPEG or PNG for the stored frame image
    sam_filter: str | None = None  # Segmenter name/path for the SAM2 quality filter
    min_iou: float = 0.6  # SAM2 filter threshold
    sam_multimask: bool = False  # SAM2 filter: best of 3 candidate masks (False: SAM2's single mask, the reference)
    points_border: str = "open"  # "open" (the reference's unpadded distance transform) or "background"
    points_fallback: str = "centroid"  # point 2 without far pixels: "centroid" (the reference) or "farthest"
    polygons: str = "once"  # box and points from pixels exactly one polygon covers ("once", the reference) or "or"
    sam_device: str | None = None  # device for the SAM2 filter (not part of the fingerprint)
    shard_size: int = 64  # images per resumable shard
    workers: int = 1  # worker processes (not part of the fingerprint)
    keep_work: bool = False  # keep _work/ after success
    progress: bool = True  # tqdm progress bar

    @property
    def writes_eval_columns(self) -> bool:
        """Whether rows get the columns ``segzero eval`` reads (``eval_columns``, by default per source)."""
        return self.source in FILE_SOURCES if self.eval_columns is None else bool(self.eval_columns)

    def fingerprint(self) -> str:
        """Hash of the options that decide the output rows."""
        d = asdict(self)
        for k in ("workers", "keep_work", "progress", "sam_device", "out"):
            d.pop(k)
        d["frame"] = list(frame_size(self.frame))
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


class PlannedRow(NamedTuple):
    """One output row as planned: the ref that gives its image, every ref whose objects it holds, its id and text."""

    ref: Ref
    refs: tuple[Ref, ...]
    row_id: str
    text: str


def _texts(ref: Ref, text: str, strip: str) -> list[tuple[int, str]]:
    """``(sent_id, text)`` pairs of a ref: whitespace, then ``strip``'s characters, stripped from both ends, then
    lower-cased (the reference: ``raw.strip().strip(".?!").lower()``)."""
    src = ref.raw if text == "raw" else ref.sentences
    return [(sid, s.strip().strip(strip).lower()) for sid, s in zip(ref.sent_ids, src, strict=True)]


def plan(cfg: BuildConfig) -> tuple[list[ImageTask], TaskResult, dict]:
    """Read the annotations and decide every output row; returns (tasks by image, plan-time drops, info)."""
    ds = load_refer(cfg.refer_dir, cfg.source, cfg.split_by or SOURCES[cfg.source])
    refs = ds.refs_for_split(cfg.split)
    if not refs:
        raise UserError(f"no refs in split {cfg.split!r}; the annotations have {ds.splits}")
    pre = TaskResult()
    prefix = f"{ds.dataset}-{ds.split_by}"
    rng = random.Random(cfg.seed)
    # candidates: (image-level key, row spec) before sampling
    by_image: dict[int, list[Ref]] = defaultdict(list)
    rows: list[PlannedRow] = []
    for ref in refs:
        if not ref.sentences:
            pre.dropped_objects["no_sentences"] += 1
            pre.note("no_sentences", f"ref {ref.ref_id}")
            continue
        by_image[ref.image_id].append(ref)
    if cfg.source == "grefcoco" and cfg.layout != "multi":
        raise UserError("grefcoco expressions mean 0..n objects: use --layout multi")
    # one row per expression: Seg-Zero's single layout, and gRefCOCO (its expression already holds its objects)
    if cfg.layout == "single" or cfg.source == "grefcoco":
        for ref in (r for group in by_image.values() for r in group):
            for sid, text in _texts(ref, cfg.text, cfg.strip):
                rows.append(PlannedRow(ref, (ref,), f"{prefix}-{ref.ref_id}-{sid}", text))
    elif cfg.layout == "multi":
        for image_id in sorted(by_image):
            distinct: dict[int, Ref] = {}
            for ref in by_image[image_id]:
                if ref.problem:  # unmatched ids: counted, kept out of the joined rows
                    pre.dropped_objects[ref.problem] += 1
                    pre.note(ref.problem, f"ref {ref.ref_id}")
                    continue
                distinct.setdefault(ref.ann_id, ref)
            group = list(distinct.values())
            if len(group) < cfg.min_objects:  # no row is planned for this image; counted apart
                pre.warnings["image_too_few_objects"] += 1
                pre.note("image_too_few_objects", f"image {image_id}: {len(group)} object(s)")
                continue
            k = rng.randint(cfg.min_objects, min(cfg.max_objects, len(group)))
            chosen = sorted(rng.sample(group, k), key=lambda r: r.ref_id)
            parts = [rng.choice(_texts(r, cfg.text, cfg.strip)) for r in chosen]
            row_id = f"{prefix}-img{image_id}-" + "+".join(
                f"{r.ref_id}.{sid}" for r, (sid, _) in zip(chosen, parts, strict=True)
            )
            text = cfg.joiner.join(f"{cfg.quote}{t}{cfg.quote}" for _, t in parts)
            rows.append(PlannedRow(chosen[0], tuple(chosen), row_id, text))
    else:
        raise UserError(f"unknown layout {cfg.layout!r}; use single or multi")
    rows_total = len(rows)
    if cfg.limit is not None and cfg.limit < len(rows):
        rows = rng.sample(rows, cfg.limit)
    tasks_rows: dict[int, list] = defaultdict(list)
    bad_refs: dict[int, str] = {}
    for row in rows:
        bad = next((r.problem for r in row.refs if r.problem), "")
        if bad:  # ann/image ids that do not match: counted, never silently skipped
            pre.dropped_rows[bad] += 1
            pre.note(bad, f"row {row.row_id}")
            bad_refs.update({r.ref_id: r.problem for r in row.refs if r.problem})
            continue
        tasks_rows[row.ref.image_id].append(row)
    pre.dropped_objects.update(bad_refs.values())
    tasks = []
    for image_id in sorted(tasks_rows):
        objects: dict[int, int] = {}
        obj_tasks: list[ObjectTask] = []
        row_tasks = []
        planned = sorted(tasks_rows[image_id], key=lambda r: r.row_id)
        for _, row_refs, row_id, text in planned:
            for r in row_refs:  # a ref's objects: one for RefCOCO/+/g, 0..n for gRefCOCO
                for ann_id, segmentation in zip(r.ann_ids, r.segmentations, strict=True):
                    if ann_id not in objects:
                        objects[ann_id] = len(obj_tasks)
                        obj_tasks.append(ObjectTask(r.ref_id, ann_id, segmentation))
            row_tasks.append(RowTask(row_id, text, tuple(objects[a] for r in row_refs for a in r.ann_ids)))
        first = planned[0].ref  # every row of the task is on this image
        tasks.append(
            ImageTask(image_id, first.file_name, first.width, first.height, tuple(obj_tasks), tuple(row_tasks))
        )
    info = {
        "dataset": ds.dataset,
        "split_by": ds.split_by,
        "refs_in_split": len(refs),
        "rows_candidates": rows_total,
        "rows_planned": len(rows),
        "annotation_problems": dict(ds.problems),
    }
    return tasks, pre, info


def plan_source(cfg: BuildConfig) -> tuple[list[ImageTask], TaskResult, dict]:
    """The plan of ``cfg.source``: refer annotations (``plan``), a manifest or COCO instances."""
    if cfg.source == "jsonl":
        from segzero.data.manifest import plan_manifest

        return plan_manifest(cfg)
    if cfg.source == "coco":
        from segzero.data.coco import plan_coco

        return plan_coco(cfg)
    return plan(cfg)


def _check(cfg: BuildConfig) -> None:
    """UserError for options out of range."""
    try:
        frame_size(cfg.frame)
        frame_ok = True
    except ValueError:
        frame_ok = False
    problems = [
        (cfg.source not in ALL_SOURCES, f"--source must be one of {', '.join(ALL_SOURCES)}"),
        (not cfg.out, "--out is required"),
        (cfg.source in SOURCES and not cfg.refer_dir, f"--source {cfg.source} needs --refer-dir"),
        (cfg.layout not in ("single", "multi"), f"unknown layout {cfg.layout!r}; use single or multi"),
        (not frame_ok, f"--frame must be a positive side or WxH, got {cfg.frame!r}"),
        (cfg.limit is not None and cfg.limit < 1, "--limit must be at least 1"),
        (not 1 <= cfg.min_objects <= cfg.max_objects, "need 1 <= --min-objects <= --max-objects"),
        (cfg.workers < 1 or cfg.shard_size < 1, "--workers and --shard-size must be at least 1"),
        (not 0.0 <= cfg.min_iou <= 1.0 and cfg.sam_filter is not None, "--min-iou must be in [0, 1]"),
        (cfg.text not in ("sent", "raw"), "--text must be sent or raw"),
        (cfg.points_border not in BORDERS, f"--points-border must be one of {', '.join(BORDERS)}"),
        (cfg.points_fallback not in FALLBACKS, f"--points-fallback must be one of {', '.join(FALLBACKS)}"),
        (cfg.polygons not in ("once", "or"), "--polygons must be once or or"),
        (cfg.image_format.upper() not in ("JPEG", "PNG"), "--image-format must be JPEG or PNG"),
    ]
    for bad, message in problems:
        if bad:
            raise UserError(message)
    if cfg.source != "jsonl" and not cfg.images_dir:
        raise UserError(f"--source {cfg.source} needs --images (the image folder)")
    if cfg.source != "jsonl" and not Path(cfg.images_dir).is_dir():
        raise UserError(f"images folder not found: {cfg.images_dir}")


def _plan_digest(cfg: BuildConfig, tasks: list[ImageTask], info: dict) -> str:
    """Options fingerprint + a hash of the planned row ids (and of the input files' bytes where the plan gives one:
    ``info["inputs_digest"]``), so changed annotations never resume old shards."""
    digest = hashlib.sha256((cfg.fingerprint() + info.get("inputs_digest", "")).encode())
    for task in tasks:
        digest.update(f"{task.image_id}:{','.join(r.row_id for r in task.rows)};".encode())
    return digest.hexdigest()[:16]


def clear_build(out: Path, split: str) -> None:
    """Remove what a build of ``split`` wrote in ``out`` (``--overwrite``); other files stay."""
    for name in ("_work", "parquet", "dataset_dict.json", "stats.json", split):
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def _prepare_out(cfg: BuildConfig, fingerprint: str, overwrite: bool) -> Path:
    out = Path(cfg.out)
    work = out / "_work"
    marker = work / "plan.json"
    if overwrite and out.exists():
        clear_build(out, cfg.split)
    if marker.exists():
        if json.loads(marker.read_text())["fingerprint"] != fingerprint:
            raise UserError(
                f"{out} holds an unfinished build with other options or annotations; pass --overwrite or another --out"
            )
    elif out.exists() and any(out.iterdir()):
        raise UserError(f"output folder {out} is not empty; pass --overwrite or another --out")
    work.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"fingerprint": fingerprint, "config": asdict(cfg)}, default=str))
    return work


def build(cfg: BuildConfig, *, overwrite: bool = False) -> dict:
    """Run a build (resuming finished shards of an interrupted one); returns the stats written to stats.json."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from segzero.data.export import EVAL_FEATURES, FEATURES, save_dataset

    _check(cfg)
    tasks, pre, info = plan_source(cfg)
    fingerprint = _plan_digest(cfg, tasks, info)
    work = _prepare_out(cfg, fingerprint, overwrite)
    features = EVAL_FEATURES if cfg.writes_eval_columns else FEATURES
    opts = SampleOptions(
        images_dir=str(Path(cfg.manifest).resolve().parent) if cfg.source == "jsonl" else cfg.images_dir,
        frame=cfg.frame,
        layout=cfg.layout,
        image_format=cfg.image_format,
        sam_filter=cfg.sam_filter,
        min_iou=cfg.min_iou,
        sam_device=cfg.sam_device,
        sam_multimask=cfg.sam_multimask,
        points_border=cfg.points_border,
        points_fallback=cfg.points_fallback,
        polygons=cfg.polygons,
        eval_columns=cfg.writes_eval_columns,
    )
    shards = split_shards(tasks, cfg.shard_size)
    done = {i for i in range(len(shards)) if (work / f"shard-{i:05d}.json").exists()}
    todo = [(i, s, opts) for i, s in enumerate(shards) if i not in done]
    bar = tqdm(total=len(tasks), unit="img", desc="segzero data build", disable=not cfg.progress)
    bar.update(sum(len(shards[i]) for i in done))
    if cfg.workers > 1 and len(todo) > 1:
        import multiprocessing as mp

        ctx = mp.get_context("spawn" if cfg.sam_filter else None)
        with ctx.Pool(min(cfg.workers, len(todo))) as pool:
            for index, n, res in pool.imap_unordered(run_shard, todo):
                write_shard(work, index, res, features)
                bar.update(n)
    else:
        for item in todo:
            index, n, res = run_shard(item)
            write_shard(work, index, res, features)
            bar.update(n)
    bar.close()

    total = pre
    tables = []
    for i in range(len(shards)):
        total.merge(result_from_json(json.loads((work / f"shard-{i:05d}.json").read_text())))
        tables.append(pq.read_table(work / f"shard-{i:05d}.parquet"))
    table = pa.concat_tables(tables) if tables else features.arrow_schema.empty_table()
    fw, fh = frame_size(cfg.frame)
    name = info["dataset"] + (f" ({info['split_by']})" if info.get("split_by") else "")
    description = (
        f"segzero data build: {name} split {cfg.split}, layout {cfg.layout}; "
        f"solution coordinates in the {fw}x{fh} model frame, image resized to it, img_width/img_height original"
    )
    written = save_dataset(
        table, Path(cfg.out), split=cfg.split, description=description, progress=cfg.progress, features=features
    )
    stats = {
        "source": cfg.source,
        **{k: v for k, v in info.items() if k != "inputs_digest"},
        "split": cfg.split,
        "layout": cfg.layout,
        "frame": list(frame_size(cfg.frame)),
        "coordinates": "model frame (frame = [w, h]); img_width/img_height are the original size",
        "limit": cfg.limit,
        "seed": cfg.seed,
        "sam_filter": cfg.sam_filter,
        "min_iou": cfg.min_iou if cfg.sam_filter else None,
        "images_planned": len(tasks),
        "rows_written": written,
        "objects_ok": total.objects_ok,
        "dropped_rows": dict(sorted(total.dropped_rows.items())),
        "dropped_objects": dict(sorted(total.dropped_objects.items())),
        "warnings": dict(sorted(total.warnings.items())),
        "examples": total.examples,
        "shards": len(shards),
        "shards_resumed": len(done),
        "histograms": {"bins": HIST_BINS, "range": [0.0, 1.0], **total.hist},
        "fingerprint": fingerprint,
    }
    if not cfg.sam_filter:
        stats["histograms"].pop("sam_iou")
    (Path(cfg.out) / "stats.json").write_text(json.dumps(stats, indent=2))
    if not cfg.keep_work:
        shutil.rmtree(work)
    return stats
