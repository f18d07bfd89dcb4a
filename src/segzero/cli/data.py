"""``segzero data``: build training data, export it for veRL, convert ReasonSeg for evaluation.

Examples::

    segzero data build --source refcocog --refer-dir data/refcocog --images coco/train2014 --out out/rcg840 \\
        --limit 9000 --seed 0 --workers 2 [--layout multi] [--sam-filter facebook/sam2-hiera-large]
    segzero data build --source jsonl --manifest my_data/manifest.jsonl --layout multi --out out/my_set
    segzero data build --source coco --instances instances.json --images images [--queries q.jsonl] --out out/c
    segzero data build --mix rcg=out/rcg840:3 --mix mine=out/my_set:1 --out out/mixed
    segzero data export --format verl --data out/rcg840 --out out/rcg840_verl.parquet
    segzero data convert-reasonseg --lisa-dir ReasonSeg --split val --out out/reasonseg_val

``build`` is resumable: rerun the same command after an interruption and finished shards are kept. It prints
the stats (also written to OUT/stats.json). Heavy imports happen inside the run functions.
"""

from __future__ import annotations

import argparse
import json

from segzero.answer import KINDS
from segzero.data.refer import DEFAULT_SPLIT_BY as SOURCES
from segzero.errors import UserError
from segzero.geometry import DEFAULT_FRAME
from segzero.points import BORDERS, FALLBACKS

FILE_SOURCES = ("jsonl", "coco")  # segzero.data.build.FILE_SOURCES (kept here so --help imports nothing heavy)
REFER = tuple(SOURCES)
# options that only some sources read: dest -> those sources (--mix reads none of them, nor BUILD_ONLY)
ONLY_FOR = {
    **dict.fromkeys(
        ("refer_dir", "split_by", "text", "strip", "joiner", "quote", "max_objects", "min_objects"), REFER
    ),
    "images": (*REFER, "coco"),
    "manifest": ("jsonl",),
    "instances": ("coco",),
    "queries": ("coco",),
    "category_query": ("coco",),
}
BUILD_ONLY = (
    "frame",
    "layout",
    "points_border",
    "points_fallback",
    "polygons",
    "image_format",
    "sam_filter",
    "min_iou",
    "sam_multimask",
    "sam_device",
    "workers",
    "shard_size",
    "keep_work",
    "eval_columns",
)


def _frame(value: str) -> int | tuple[int, int]:
    """``840`` or ``840x630`` (w x h)."""
    try:
        if "x" in value.lower():
            w, h = value.lower().split("x")
            frame = (int(w), int(h))
            ok = min(frame) > 0
        else:
            frame = int(value)
            ok = frame > 0
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"frame must be a positive side (840) or WxH (840x630), not {value!r}")
    return frame


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("data", help="build training data, export it, convert ReasonSeg")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    b = sub.add_parser(
        "build",
        help="build Seg-Zero training data from refer annotations, a manifest or COCO instances; or mix built sets",
    )
    b.add_argument(
        "--source",
        choices=[*SOURCES, *FILE_SOURCES],
        default=None,
        help="refer dataset (grefcoco: grefs(unc).json, --layout multi, no-target expressions as [] rows); jsonl: "
        "--manifest of your images, masks and queries; coco: --instances (+ --queries)",
    )
    b.add_argument(
        "--refer-dir",
        default=None,
        help="refer sources: folder with refs(<split_by>).p (grefcoco: grefs(unc).json) and instances.json",
    )
    b.add_argument("--images", default=None, help="refer and coco sources: image folder (files by file_name)")
    b.add_argument(
        "--manifest",
        default=None,
        help="jsonl source: JSON Lines, one row per line: image, query, mask (PNG path, COCO RLE or polygon) or "
        "objects (several, or [] for none); paths relative to the manifest's folder",
    )
    b.add_argument("--instances", default=None, help="coco source: COCO instances JSON")
    b.add_argument(
        "--queries",
        default=None,
        help="coco source: JSON Lines of image_id or file_name, query, ann_ids (an id, a list, or [] for none); "
        "without it one row per category present in an image (--category-query)",
    )
    b.add_argument(
        "--category-query",
        default="the {category}",
        help="coco source without --queries: the query of a category's row (default 'the {category}')",
    )
    b.add_argument(
        "--mix",
        action="append",
        default=None,
        metavar="NAME=DIR:WEIGHT",
        help="instead of --source: mix built folders into --out by sampling weight (repeat for each set); "
        "--limit sets the mixed size (default: the most without repeating a row)",
    )
    b.add_argument(
        "--eval-columns",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also write the columns segzero eval reads (text, mask, image_id, ann_id; default: jsonl and coco)",
    )
    b.add_argument("--out", required=True, help="output folder (datasets.load_from_disk opens it)")
    b.add_argument("--split-by", default=None, help="refer split_by: unc, umd, google (default per source)")
    b.add_argument("--split", default="train", help="refer split to build (train, val, test, testA, ...; all)")
    b.add_argument(
        "--frame", type=_frame, default=DEFAULT_FRAME, help=f"model frame: side or WxH (default {DEFAULT_FRAME})"
    )
    b.add_argument(
        "--layout",
        choices=["single", "multi"],
        default="single",
        help="single: one row per expression (Seg-Zero); multi: several objects per row (VisionReasoner)",
    )
    b.add_argument("--limit", type=int, default=None, help="sample at most this many rows (seeded)")
    b.add_argument("--seed", type=int, default=0, help="seed of the --limit sample and multi grouping")
    b.add_argument("--max-objects", type=int, default=3, help="multi layout: most objects per row")
    b.add_argument("--min-objects", type=int, default=1, help="multi layout: fewest objects per row")
    b.add_argument("--joiner", default=" and ", help="multi layout: text between joined expressions")
    b.add_argument(
        "--quote", default="'", help="multi layout: quote around each joined expression (default ', as the reference)"
    )
    b.add_argument(
        "--text", choices=["raw", "sent"], default="raw", help="annotators' raw sentence (default) or refer's tokens"
    )
    b.add_argument(
        "--strip",
        default=".?!",
        help="characters stripped from both ends of an expression, then lower-cased (default .?!, as the reference)",
    )
    b.add_argument(
        "--points-border",
        choices=list(BORDERS),
        default="open",
        help="distance transform for the points: unpadded as the reference (open) or the image edge as background",
    )
    b.add_argument(
        "--points-fallback",
        choices=list(FALLBACKS),
        default="centroid",
        help="point 2 when no pixel is farther than the median: near the centroid (the reference) or the farthest",
    )
    b.add_argument(
        "--polygons",
        choices=["once", "or"],
        default="once",
        help="box and points from the pixels exactly one polygon of the object covers (the reference) or any",
    )
    b.add_argument("--image-format", choices=["JPEG", "PNG"], default="JPEG", help="stored frame image encoding")
    b.add_argument(
        "--sam-filter",
        default=None,
        metavar="SEGMENTER",
        help="SAM2 name/path: drop objects whose gt box+point prompt gives IoU < --min-iou",
    )
    b.add_argument("--min-iou", type=float, default=0.6, help="SAM2 filter threshold (default 0.6)")
    b.add_argument(
        "--sam-multimask",
        action="store_true",
        help="SAM2 filter: best of 3 candidate masks (default: SAM2's single mask, as the reference)",
    )
    b.add_argument("--sam-device", default=None, help="torch device for the SAM2 filter")
    b.add_argument("--workers", type=int, default=1, help="worker processes")
    b.add_argument("--shard-size", type=int, default=64, help="images per resumable shard")
    b.add_argument("--keep-work", action="store_true", help="keep OUT/_work (finished shards) after success")
    b.add_argument("--overwrite", action="store_true", help="replace an existing build in OUT")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=run_build, build_defaults={d: b.get_default(d) for d in (*ONLY_FOR, *BUILD_ONLY)})

    e = sub.add_parser("export", help="export built data (veRL/EasyR1 parquet)")
    e.add_argument("--format", choices=["verl"], default="verl", help="export format")
    e.add_argument("--data", required=True, help="built data folder or parquet")
    e.add_argument("--out", required=True, help="output file")
    e.add_argument("--split", default="train", help="split to export")
    e.add_argument(
        "--kind",
        choices=list(KINDS),
        default=None,
        help="reward/prompt kind (default from the layout: single -> segzero, multi -> visionreasoner)",
    )
    e.set_defaults(func=run_export)

    c = sub.add_parser("convert-reasonseg", help="LISA ReasonSeg release folder -> evaluation dataset folder")
    c.add_argument("--lisa-dir", required=True, help="ReasonSeg folder (with train/val/test or one split)")
    c.add_argument("--out", required=True, help="output folder")
    c.add_argument("--split", default="val", help="split folder to convert (default val)")
    c.add_argument("--sentences", choices=["first", "all"], default="first", help="rows per image")
    c.add_argument(
        "--ignore",
        choices=["ignore", "target"],
        default="ignore",
        help="'ignore' polygons: keep 255 (LISA protocol) or make them target (hub copies)",
    )
    c.set_defaults(func=run_convert)


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _check_options(args) -> None:
    """UserError for a --source/--mix choice that is missing, or an option the chosen source does not read."""
    given = [d for d, default in args.build_defaults.items() if getattr(args, d) != default]
    if args.mix:
        if args.source:
            raise UserError("--mix combines built folders: give either --source or --mix")
        if given:
            raise UserError(f"{_flag(given[0])} does not apply to --mix (it combines built folders as they are)")
        return
    if not args.source:
        raise UserError("give --source (refcoco, ..., jsonl, coco) or --mix NAME=DIR:WEIGHT ...")
    for dest in given:
        if dest in ONLY_FOR and args.source not in ONLY_FOR[dest]:
            raise UserError(f"{_flag(dest)} does not apply to --source {args.source}")


def _run_mix(args) -> int:
    from segzero.data.mix import MixConfig, mix, parse_part

    cfg = MixConfig(
        parts=tuple(parse_part(spec) for spec in args.mix),
        out=args.out,
        split=args.split,
        limit=args.limit,
        seed=args.seed,
        progress=not args.no_progress,
    )
    stats = mix(cfg, overwrite=args.overwrite)
    print(
        json.dumps({"rows_written": stats["rows_written"], "mix": {p["name"]: p["rows_taken"] for p in stats["mix"]}})
    )
    print(f"wrote {stats['rows_written']} rows to {args.out} (stats: {args.out}/stats.json)")
    return 0


def run_build(args) -> int:
    _check_options(args)
    if args.mix:
        return _run_mix(args)
    from segzero.data.build import BuildConfig, build

    cfg = BuildConfig(
        source=args.source,
        refer_dir=args.refer_dir or "",
        images_dir=args.images or "",
        out=args.out,
        manifest=args.manifest or "",
        instances=args.instances or "",
        queries=args.queries or "",
        category_query=args.category_query,
        eval_columns=args.eval_columns,
        split_by=args.split_by,
        split=args.split,
        frame=args.frame,
        layout=args.layout,
        limit=args.limit,
        seed=args.seed,
        max_objects=args.max_objects,
        min_objects=args.min_objects,
        joiner=args.joiner,
        quote=args.quote,
        text=args.text,
        strip=args.strip,
        points_border=args.points_border,
        points_fallback=args.points_fallback,
        polygons=args.polygons,
        sam_multimask=args.sam_multimask,
        image_format=args.image_format,
        sam_filter=args.sam_filter,
        min_iou=args.min_iou,
        sam_device=args.sam_device,
        shard_size=args.shard_size,
        workers=args.workers,
        keep_work=args.keep_work,
        progress=not args.no_progress,
    )
    stats = build(cfg, overwrite=args.overwrite)
    keys = ("rows_planned", "rows_written", "dropped_rows", "dropped_objects", "warnings", "frame", "shards_resumed")
    print(json.dumps({k: stats[k] for k in keys}))
    print(f"wrote {stats['rows_written']} rows to {args.out} (stats: {args.out}/stats.json)")
    return 0


def run_export(args) -> int:
    from segzero.train.verl import export_verl_file

    result = export_verl_file(args.data, args.out, kind=args.kind, split=args.split)
    dropped = result.get("dropped", []) if isinstance(result, dict) else []
    rows = result.get("rows") if isinstance(result, dict) else None
    print(f"exported {args.data} -> {args.out}: {rows} rows, {len(dropped)} dropped")
    for row_id, reason in dropped[:10]:
        print(f"  dropped {row_id}: {reason}")
    return 0


def run_convert(args) -> int:
    from segzero.data.reasonseg import convert_reasonseg

    counts = convert_reasonseg(args.lisa_dir, args.out, split=args.split, sentences=args.sentences, ignore=args.ignore)
    print(json.dumps(counts))
    return 0
