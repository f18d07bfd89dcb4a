"""``segzero demo``: reasoning segmentation end to end, offline, with the model that ships in the package.

    segzero demo                                   # draw a shapes scene, ask a reasoning query, segment it
    segzero demo --seed 7 --out demo7/             # another scene
    segzero demo --image shapes.png --query "the largest red shape"   # your own image and query

With no arguments it draws a scene of the shapes world (``segzero.shapes.world``) with the settings the
reasoner was trained on (``world`` in its ``segzero.json``; the shipped model's: 2-3 non-overlapping shapes,
attribute, superlative and affordance queries), asks that scene's query, runs the shipped tiny reasoner
(``segzero.assets.shapes_model_path``: a ~1.5M-parameter Qwen3-VL trained on this world by
``recipes/shapes_tiny.yaml``) and the weight-free ``color`` segmenter, prints the reasoning and the answer, and writes ``OUT/overlay.png``, ``OUT/result.json``
and ``OUT/mask.png`` (``segzero.cli.segment.save_outputs``; ``OUT/image.png`` too for a drawn scene).
``result.json`` also holds the query, the scene's gt box and the mask IoU when the scene was drawn here.
No network, no downloads. ``--reasoner``/``--segmenter`` swap in other models (a SAM2 id or folder works).
The tiny model knows the shapes world only; on other images it answers, but not meaningfully.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from segzero.assets import SHAPES_MAX_NEW_TOKENS
from segzero.prompts import MAX_QUERY_CHARS


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="offline demo: the shipped shapes model segments a drawn scene (or your image)",
        description="Draw a shapes scene (or read --image), ask a reasoning query, segment the answer, write "
        "OUT/overlay.png and OUT/result.json. Runs offline with the model shipped in the package.",
    )
    p.add_argument("--image", default=None, help="your own image (default: draw a shapes scene)")
    p.add_argument(
        "--query",
        default=None,
        help=f"your own query, at most {MAX_QUERY_CHARS} characters (default: the drawn scene's query)",
    )
    p.add_argument("--out", default="segzero_demo", help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="which scene to draw (default: %(default)s)")
    p.add_argument("--size", type=int, default=336, help="side of the drawn scene in pixels (default: %(default)s)")
    p.add_argument("--reasoner", default=None, help="reasoning VLM id or folder (default: the shipped shapes model)")
    p.add_argument(
        "--segmenter",
        default="color",
        help="segmenter: color or grabcut (weight-free), or a SAM2 id/folder (default: %(default)s)",
    )
    p.add_argument(
        "--max-new-tokens", type=int, default=SHAPES_MAX_NEW_TOKENS, help="generation limit (default: %(default)s)"
    )
    p.add_argument("--json", action="store_true", help="print only the JSON result")
    p.set_defaults(func=run)


def model_world(reasoner: str | Path) -> dict | None:
    """The shapes-world settings a model was trained on: ``world`` in its ``segzero.json`` (None when absent)."""
    info = Path(reasoner) / "segzero.json"
    if not info.is_file():
        return None
    try:
        world = json.loads(info.read_text()).get("world")
    except (OSError, ValueError, AttributeError):  # unreadable or not a JSON object: the default world
        return None
    return world if isinstance(world, dict) else None


def draw_scene(seed: int, size: int, world: dict | None = None) -> dict:
    """Sample ``seed`` of the shapes world's val split (one answer; ``segzero.shapes.make_sample``) at ``size`` px.

    ``world``: the world settings (``segzero.shapes.world.world_from_spec``; the shipped model's training world
    by default in ``run``); None = the default world.
    """
    from segzero.shapes.world import make_sample, world_from_spec

    config, families = world_from_spec(world, size=size)
    return make_sample(seed, seed=0, config=config, split="val", layout="eval", families=families)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from segzero.errors import UserError
    from segzero.images import load_image
    from segzero.prompts import check_query

    query = None if args.query is None else check_query(args.query)  # not UTF-8, empty, too long: before any model
    if args.size < 56:
        raise UserError(f"--size must be at least 56 pixels, got {args.size}")
    if args.max_new_tokens <= 0:
        raise UserError(f"--max-new-tokens must be positive, got {args.max_new_tokens}")
    if args.image is not None and args.query is None:
        raise UserError("--image needs --query (what to segment in your image)")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out exists and is not a folder: {out_dir}")
    from segzero.assets import shapes_model_path

    reasoner = args.reasoner or str(shapes_model_path())
    scene = None
    if args.image is not None:
        image = load_image(args.image)  # fail fast on a bad image, before loading any model
    else:
        try:  # the world the model was trained on (its segzero.json), so the scene is one it knows
            scene = draw_scene(args.seed, args.size, model_world(reasoner))
        except ValueError as err:
            raise UserError(f"bad shapes world in {reasoner}/segzero.json: {err}") from err
        image = scene["image"]
    if query is None:
        query = check_query(scene["problem"])

    from segzero.metrics import intersection_union, sample_iou
    from segzero.parsing import parse_solution
    from segzero.pipeline import SegZeroPipeline

    pipe = SegZeroPipeline.from_pretrained(
        reasoner=reasoner, segmenter=args.segmenter, device="cpu", max_new_tokens=args.max_new_tokens
    )
    result = pipe(image, query)

    from segzero.cli.segment import save_outputs

    extra: dict = {"query": query, "image": args.image, "reasoner": reasoner, "segmenter": args.segmenter}
    if scene is not None:
        inter, union = intersection_union(np.asarray(result.mask, dtype=bool), np.asarray(scene["mask"], dtype=bool))
        gt = [o.to_dict() for o in parse_solution(scene["solution"])]  # original pixels, like "objects"
        extra.update(image="image.png", scene_seed=args.seed, gt=gt)
        extra["iou"] = round(sample_iou(inter, union), 4)
        out_dir.mkdir(parents=True, exist_ok=True)
        image.save(out_dir / "image.png")
    paths = save_outputs(result, image, out_dir, extra=extra)
    if args.json:
        print(json.dumps({**extra, **result.to_json()}, indent=2))
        return 0
    print(f"query: {query}")
    print(f"reasoning: {result.reasoning if result.reasoning is not None else '(none)'}")
    if not result.parse_ok:
        print(f"answer could not be parsed: {result.parse_error}", file=sys.stderr)
    for i, obj in enumerate(result.objects):
        pts = ", ".join(f"({x:g}, {y:g})" for x, y in obj.points)
        print(f"answer {i}: box {list(obj.box) if obj.box is not None else None} points [{pts}] (image pixels)")
    print(f"mask area: {int(result.mask.sum())} px of {result.size[0]}x{result.size[1]}")
    if "iou" in extra:
        print(f"IoU with the scene's true mask: {extra['iou']:.3f}")
    print(f"wrote {paths['overlay']}, {paths['result']}, {paths['mask']}")
    return 0
