"""``segzero world``: build shapes-world datasets (offline, deterministic) in the layouts train and eval read.

Examples::

    segzero world build --out data/shapes_train --layout single --split train --n 2000 --size 112
    segzero world build --out data/shapes_eval --layout eval --split val test --n 64 --size 112 --seed 0
    segzero world build --out data/shapes_multi --layout multi --n train=2000,val=64,test=64 --texture 40
    segzero world build --out data/shapes_video --layout video --split val --n 16 --frames 8   # ReVOS layout
    segzero world preview --out shapes.png --n 8 --split test --layout multi     # look at what was generated
    segzero train ... (dataset: data/shapes_train)      segzero eval --data data/shapes_eval --split val ...

The folder holds a ``DatasetDict`` (``save_to_disk``; one dataset per split) and ``world.json`` (how it was made,
with the held-out test wordings); ``--layout video`` writes moving-shapes videos in the ReVOS annotation layout
instead (``segzero.shapes.video``; ``segzero eval --format revos`` reads it). Heavy imports (``datasets``) happen
inside the run function.
"""

from __future__ import annotations

import argparse
import json

from segzero.shapes.world import LAYOUTS


def _sizes(value: str) -> int | dict[str, int]:
    """``64`` (every split) or ``train=2000,val=64``."""
    try:
        if "=" not in value:
            n = int(value)
            if n < 1:
                raise ValueError
            return n
        out = {}
        for part in value.split(","):
            name, _, count = part.partition("=")
            out[name.strip()] = int(count)
        if any(v < 1 for v in out.values()):
            raise ValueError
        return out
    except ValueError:
        raise argparse.ArgumentTypeError(f"--n takes a positive count or split=count,...; got {value!r}") from None


def _size(value: str) -> int | tuple[int, int]:
    """``112`` or ``160x120`` (w x h)."""
    try:
        size = tuple(int(v) for v in value.lower().split("x")) if "x" in value.lower() else int(value)
    except ValueError:
        size = 0
    if (isinstance(size, int) and size < 16) or (isinstance(size, tuple) and (len(size) != 2 or min(size) < 16)):
        raise argparse.ArgumentTypeError(f"--size takes a side >= 16 (112) or WxH (160x120); got {value!r}")
    return size


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("world", help="build shapes-world datasets (synthetic, offline)")
    sub = parser.add_subparsers(dest="world_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="write a shapes-world DatasetDict (save_to_disk) in a train or eval layout")
    b.add_argument("--out", required=True, help="output folder (datasets.load_from_disk, segzero train/eval open it)")
    b.add_argument(
        "--layout",
        choices=[*LAYOUTS, "video"],
        default="single",
        help="single: Seg-Zero training rows; multi: VisionReasoner rows (0..n answers); eval: ReasonSeg rows; "
        "video: moving-shapes videos in the ReVOS layout (--n videos per split)",
    )
    b.add_argument(
        "--split",
        nargs="+",
        choices=["train", "val", "test"],
        default=["train", "val", "test"],
        help="splits to write (test uses only the held-out query wordings)",
    )
    b.add_argument(
        "--n",
        type=_sizes,
        default=64,
        help="rows per split: N, or split=N,... (which also picks the splits; default 64)",
    )
    b.add_argument("--size", type=_size, default=112, help="image side or WxH in pixels; gt is in this frame")
    b.add_argument("--seed", type=int, default=0, help="world seed (same seed -> identical data)")
    b.add_argument(
        "--answers",
        choices=["one", "none", "several", "any", "mix"],
        default=None,
        help="answers per query (default: one for single/eval, mix of none/one/several for multi)",
    )
    b.add_argument(
        "--families",
        nargs="+",
        default=None,
        help="query families: attribute superlative relation counting affordance (default all)",
    )
    b.add_argument("--min-shapes", type=int, default=None, help="fewest shapes per scene (default 3)")
    b.add_argument("--max-shapes", type=int, default=None, help="most shapes per scene (default 5)")
    b.add_argument("--kinds", nargs="+", default=None, help="shape kinds drawn (default: all six)")
    b.add_argument("--colours", nargs="+", default=None, help="colour names drawn (default: all six)")
    b.add_argument("--no-overlap", action="store_true", help="keep shapes apart (no occlusion)")
    b.add_argument("--noise", type=float, default=0.0, help="std of Gaussian noise on the background")
    b.add_argument("--texture", type=float, default=0.0, help="amplitude of a grey stripe texture on the background")
    b.add_argument("--no-meta", action="store_true", help="omit the family/template/wording/n_answers columns")
    b.add_argument("--frames", type=int, default=8, help="--layout video: frames per video (default 8)")
    b.add_argument(
        "--queries-per-video", type=int, default=2, help="--layout video: expressions per video (default 2)"
    )
    b.add_argument(
        "--like",
        default=None,
        metavar="REASONER",
        help="start from the world a reasoner folder was trained on ('world' in its segzero.json; 'shipped' = the "
        "model segzero demo uses); the options above still apply on top",
    )
    b.set_defaults(func=run)

    v = sub.add_parser("preview", help="write a PNG contact sheet of samples (answers tinted, queries below)")
    v.add_argument("--out", required=True, help="PNG file to write")
    v.add_argument("--n", type=int, default=8, help="samples shown (default 8)")
    v.add_argument(
        "--split", choices=["train", "val", "test"], default="train", help="split (test: held-out wordings)"
    )
    v.add_argument("--layout", choices=list(LAYOUTS), default="multi", help="which queries (default multi)")
    v.add_argument("--size", type=_size, default=160, help="image side or WxH in pixels (default 160)")
    v.add_argument("--seed", type=int, default=0, help="world seed")
    v.add_argument("--noise", type=float, default=0.0, help="std of Gaussian noise on the background")
    v.add_argument("--texture", type=float, default=0.0, help="amplitude of a grey stripe texture on the background")
    v.set_defaults(func=run_preview)


def _like_world(like: str | None, size):
    """``(ShapesConfig, families)`` of the world in a reasoner folder's ``segzero.json`` (``(None, None)`` without
    ``--like``); ``UserError`` when the folder records none."""
    if like is None:
        return None, None
    from segzero.errors import UserError
    from segzero.models.reasoner import expand_shipped, recorded_world
    from segzero.shapes.world import world_from_spec

    like = expand_shipped(like)  # "shipped": the model inside the package
    world = recorded_world(like)
    if world is None:
        raise UserError(f"--like {like}: its segzero.json records no shapes world")
    try:
        return world_from_spec(world, size=size)
    except ValueError as err:
        raise UserError(f"--like {like}: bad world in segzero.json: {err}") from None


def run(args) -> int:
    from dataclasses import replace

    from segzero.errors import UserError
    from segzero.shapes.datasets import write_world
    from segzero.shapes.queries import FAMILIES
    from segzero.shapes.scene import ShapesConfig

    base, base_families = _like_world(args.like, args.size)
    families = tuple(args.families or base_families or FAMILIES)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise UserError(f"unknown query families {unknown}; choose from {', '.join(FAMILIES)}")
    if args.layout == "single" and args.answers not in (None, "one"):
        raise UserError("--layout single needs exactly one answer per query (--answers one)")
    n = args.n if isinstance(args.n, dict) else {s: args.n for s in args.split}
    bad = [s for s in n if s not in ("train", "val", "test")]
    if bad:
        raise UserError(f"unknown split(s) in --n: {', '.join(bad)} (train, val, test)")
    config = replace(
        base or ShapesConfig(size=args.size),
        overlap=False if args.no_overlap else (base.overlap if base else True),
        noise=args.noise,
        texture=args.texture,
    )
    try:
        if args.kinds:
            config = replace(config, kinds=tuple(args.kinds))
        if args.colours:
            config = replace(config, colours=tuple(args.colours))
    except ValueError as err:  # ShapesConfig names the unknown kinds/colours
        raise UserError(str(err)) from None
    if args.min_shapes is not None or args.max_shapes is not None:
        lo = args.min_shapes if args.min_shapes is not None else config.min_shapes
        hi = args.max_shapes if args.max_shapes is not None else max(lo, config.max_shapes)
        if not 1 <= lo <= hi:
            raise UserError(f"need 1 <= --min-shapes <= --max-shapes, got {lo}, {hi}")
        config = replace(config, min_shapes=lo, max_shapes=hi)
    if args.layout == "video":
        return _run_video(args, config, families, n)
    info = write_world(
        args.out,
        args.layout,
        n=n,
        seed=args.seed,
        config=config,
        answers=args.answers,
        families=families,
        meta=not args.no_meta,
    )
    print(json.dumps({k: info[k] for k in ("layout", "seed", "splits", "answers")} | {"out": str(args.out)}))
    return 0


def _run_video(args, config, families: tuple[str, ...], n: dict[str, int]) -> int:
    """``world build --layout video``: moving-shapes videos in the ReVOS layout (``segzero.shapes.video``)."""
    from segzero.errors import UserError
    from segzero.shapes.video import write_video_world

    if args.frames < 1 or args.queries_per_video < 1:
        raise UserError(f"--frames and --queries-per-video must be >= 1, got {args.frames}, {args.queries_per_video}")
    if args.answers == "mix":
        raise UserError("--layout video takes --answers one, several, any or none (one answer count per set)")
    info = write_video_world(
        args.out,
        n=n,
        seed=args.seed,
        config=config,
        frames=args.frames,
        answers=args.answers,
        families=families,
        queries=args.queries_per_video,
    )
    print(json.dumps({k: info[k] for k in ("layout", "seed", "splits", "answers", "frames")} | {"out": str(args.out)}))
    return 0


def run_preview(args) -> int:
    from pathlib import Path

    from segzero.errors import UserError
    from segzero.shapes.preview import contact_sheet
    from segzero.shapes.scene import ShapesConfig

    if not 1 <= args.n <= 256:
        raise UserError(f"--n must be between 1 and 256, got {args.n}")
    config = ShapesConfig(size=args.size, noise=args.noise, texture=args.texture)
    sheet = contact_sheet(n=args.n, seed=args.seed, split=args.split, layout=args.layout, config=config)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"wrote {out} ({args.n} samples, {args.split}, {args.layout})")
    return 0
