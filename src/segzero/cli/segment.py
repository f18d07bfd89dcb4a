"""``segzero segment``: segment what a query refers to in one image and write mask, overlay and JSON.

    segzero segment --image photo.jpg --query "what can I drink if I'm thirsty?" --out out/
    segzero segment --image photo.jpg --query "the cat" --reasoner /tmp/tiny/reasoner \\
        --segmenter /tmp/tiny/segmenter --out out/ --json

Writes ``OUT/mask.png`` (8-bit, 0/255, same width x height as the image), ``OUT/overlay.png`` (the image with
the mask tinted, boxes and points drawn) and ``OUT/result.json`` (``SegResult.to_json()`` plus the inputs).
Prints the reasoning and the objects, or with ``--json`` only the JSON. User errors exit 2 with one line.
``--video FILE_OR_FRAME_DIR`` in place of ``--image`` segments a video (``segzero.cli.segment_video``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import MISSING, dataclass, field
from pathlib import Path

from segzero.cli.fields import add_fields
from segzero.cli.overlay import draw_overlay
from segzero.cli.segment_video import VideoOptions, check_run_flags
from segzero.models.base import DEFAULT_REASONER, DEFAULT_SEGMENTER
from segzero.prompts import MAX_QUERY_CHARS, PROMPT_KINDS


def _f(default=MISSING, help: str = "", **meta):  # noqa: A002 - "help" mirrors argparse/dataclass metadata wording
    return field(default=default, metadata={"help": help, **meta})


@dataclass(kw_only=True)  # keyword-only: --image has a default (None: --video instead), --query has none
class SegmentOptions:
    """The flags of ``segzero segment`` (``segzero.cli.fields`` makes them from these fields)."""

    image: str | None = _f(None, "image file (jpg, png, ...; EXIF orientation applied); or --video")
    query: str = _f(help=f"what to segment, in free form (at most {MAX_QUERY_CHARS} characters)")
    out: str = _f("segzero_out", "output folder")
    reasoner: str = _f(
        DEFAULT_REASONER, "reasoning VLM: hub id or local folder ('shipped': the shapes model inside the package)"
    )
    segmenter: str | None = _f(
        None,
        "SAM2: hub id or local folder; or weight-free 'grabcut' / 'color' (shapes world). Default: the one the "
        f"reasoner folder's segzero.json names, else {DEFAULT_SEGMENTER}",
    )
    prompt: str | None = _f(
        None,
        "prompt kind (default: the family the reasoner's own files name: segzero.json, model card, config; else "
        "its name, with a warning)",
        choices=tuple(sorted(PROMPT_KINDS)),
    )
    frame: int | None = _f(None, "model frame side in pixels (default: the folder's segzero.json, else 840)")
    max_new_tokens: int | None = _f(
        None, "generation limit (default: the prompt family's reference scripts': 1024 segzero, 2048 visionreasoner)"
    )
    temperature: float = _f(0.0, "0 = greedy")
    device: str | None = _f(None, "cpu, cuda, cuda:1, ... (default: cuda when available)")
    json: bool = _f(False, "print only the JSON result")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "segment",
        help="segment the object(s) a query refers to in an image",
        description="Reason about the query with a VLM, then segment the answer's boxes and points with SAM2.",
    )
    add_fields(p, SegmentOptions)
    add_fields(p.add_argument_group("video"), VideoOptions)
    p.set_defaults(func=run)


def save_outputs(result, image, out_dir: Path, *, extra: dict | None = None) -> dict[str, Path]:
    """Write mask.png, overlay.png and result.json for ``result`` on ``image`` (PIL RGB) into ``out_dir``."""
    import numpy as np
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"mask": out_dir / "mask.png", "overlay": out_dir / "overlay.png", "result": out_dir / "result.json"}
    Image.fromarray(np.where(result.mask, 255, 0).astype(np.uint8), mode="L").save(paths["mask"])
    draw_overlay(image, result.mask, result.objects).save(paths["overlay"])
    payload = {**(extra or {}), **result.to_json()}
    paths["result"].write_text(json.dumps(payload, indent=2) + "\n")
    return paths


def run(args: argparse.Namespace) -> int:
    from segzero.errors import UserError
    from segzero.images import load_image
    from segzero.prompts import check_query

    if (args.image is None) == (args.video is None):
        raise UserError("give one of --image FILE or --video FILE_OR_FRAME_DIR")
    if args.video is not None:
        from segzero.cli.segment_video import run_video

        return run_video(args)
    # the boundary: the query is checked and the image loaded here, once (fail fast, before loading any model);
    # the pipeline takes the checked ``Query`` and the loaded image as they are
    query = check_query(args.query)  # not UTF-8, empty, too long
    image = load_image(args.image)  # missing, not an image, too large
    out_dir = check_run_flags(args)

    from segzero.pipeline import SegZeroPipeline, default_segmenter_for

    segmenter = args.segmenter or default_segmenter_for(args.reasoner)
    pipe = SegZeroPipeline.from_pretrained(
        reasoner=args.reasoner,
        segmenter=segmenter,
        device=args.device,
        prompt=args.prompt,
        frame=args.frame,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
    )
    result = pipe(image, query)
    extra = {"image": str(args.image), "query": query, "reasoner": args.reasoner, "segmenter": segmenter}
    paths = save_outputs(result, image, out_dir, extra=extra)
    if args.json:
        print(json.dumps({**extra, **result.to_json()}, indent=2))
        return 0
    print(f"reasoning: {result.reasoning if result.reasoning is not None else '(none)'}")
    if not result.parse_ok:
        print(f"answer could not be parsed: {result.parse_error}", file=sys.stderr)
    for i, (obj, score) in enumerate(zip(result.objects, result.scores, strict=False)):
        pts = ", ".join(f"({x:g}, {y:g})" for x, y in obj.points)
        print(f"object {i}: box {list(obj.box) if obj.box is not None else None} points [{pts}] score {score:.3f}")
    if result.parse_ok and not result.objects:
        print("objects: none")
    print(f"mask area: {int(result.mask.sum())} px of {result.size[0]}x{result.size[1]}")
    print(f"wrote {paths['mask']}, {paths['overlay']}, {paths['result']}")
    return 0
