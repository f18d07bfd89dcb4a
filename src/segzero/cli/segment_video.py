"""``segzero segment --video``: segment what a query refers to in a video (a file or a folder of frames).

    segzero segment --video clip.mp4 --query "the dog that is about to jump" --out out/
    segzero segment --video frames/ --query "the red circle" --reasoner shipped --segmenter color --out out/ \\
        --keyframes 2

The reasoner answers on the keyframes (``--keyframes N``: the middle frames of N equal segments), the segmenter turns
each answer into masks there and the propagator (``--propagator``; default: the segmenter's video counterpart,
``segzero.models.video.default_propagator_for``) carries them to every frame (``segzero.video``). Writes
``OUT/masks/<frame>.png`` (8-bit 0/255, one per frame, named after the frame), ``OUT/strip.png`` (up to
``STRIP_FRAMES`` frames with their masks tinted, keyframes with their boxes and points), ``OUT/overlay.mp4`` (every
frame tinted, where OpenCV can encode it) and ``OUT/result.json`` (``VideoResult.to_json()`` plus the inputs).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

STRIP_FRAMES = 8  # frames shown in strip.png (keyframes always among them)
STRIP_HEIGHT = 160  # pixel height of one frame in strip.png
OVERLAY_FPS = 8.0  # overlay.mp4's frame rate when the source has none (a folder of frames)


@dataclass
class VideoOptions:
    """The video flags of ``segzero segment`` (``segzero.cli.fields`` makes them from these fields)."""

    video: str | None = field(
        default=None, metadata={"help": "a video file (mp4, avi, ...) or a folder of frame images, instead of --image"}
    )
    keyframes: int = field(
        default=1, metadata={"help": "--video: keyframes the reasoner answers on (middle frames of equal segments)"}
    )
    propagator: str | None = field(
        default=None,
        metadata={
            "help": "--video: what carries the keyframe masks to the other frames: 'color' or a SAM2 video "
            "checkpoint (default: color for --segmenter color, else the segmenter's own checkpoint)"
        },
    )
    max_frames: int | None = field(
        default=None,
        metadata={"help": "--video: read at most this many frames (default: segzero.video.MAX_FRAMES, 500)"},
    )
    stride: int = field(default=1, metadata={"help": "--video: keep every N-th frame"})


def frame_strip(frames, masks, result, *, count: int = STRIP_FRAMES, height: int = STRIP_HEIGHT):
    """One PIL image: up to ``count`` frames side by side (evenly spread, keyframes included), each with its mask
    tinted by ``segzero.cli.segment.draw_overlay`` (keyframes also with the answer's boxes and points), scaled to
    ``height`` pixels."""
    import numpy as np
    from PIL import Image

    from segzero.cli.overlay import draw_overlay

    shown = sorted({*np.linspace(0, len(frames) - 1, num=min(count, len(frames))).round().astype(int).tolist(),
                    *result.keyframes})  # fmt: skip
    objects = {k: res.objects for k, res in zip(result.keyframes, result.keyframe_results, strict=True)}
    tiles = [draw_overlay(frames[t], masks[t], objects.get(t, [])) for t in shown]
    width = max(1, round(tiles[0].width * height / tiles[0].height))
    strip = Image.new("RGB", (width * len(tiles), height), (0, 0, 0))
    for i, tile in enumerate(tiles):
        strip.paste(tile.resize((width, height)), (i * width, 0))
    return strip


def write_overlay_video(path: Path, frames, masks, *, fps: float) -> bool:
    """Every frame with its mask tinted, as an MP4 (OpenCV's ``mp4v``); False when OpenCV cannot encode it here."""
    import cv2
    import numpy as np

    from segzero.cli.overlay import draw_overlay

    width, height = frames[0].size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        return False
    try:
        for frame, mask in zip(frames, masks, strict=True):
            writer.write(cv2.cvtColor(np.asarray(draw_overlay(frame, mask, [])), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path.is_file() and path.stat().st_size > 0


def check_run_flags(args) -> Path:
    """``UserError`` for a non-positive ``--frame`` / ``--max-new-tokens`` or an ``--out`` that is a file (the
    image and video paths alike); returns the output folder."""
    from segzero.errors import UserError

    for flag, value in (("--frame", args.frame), ("--max-new-tokens", args.max_new_tokens)):
        if value is not None and value <= 0:
            raise UserError(f"{flag} must be positive, got {value}")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out exists and is not a folder: {out_dir}")
    return out_dir


def run_video(args) -> int:
    """``segzero segment --video``: check the inputs, load the models, segment, write the outputs."""
    import numpy as np
    from PIL import Image

    from segzero.errors import UserError
    from segzero.prompts import check_query
    from segzero.video import MAX_FRAMES, VideoSegPipeline, load_video

    query = check_query(args.query)
    if args.keyframes < 1:
        raise UserError(f"--keyframes must be >= 1, got {args.keyframes}")
    out_dir = check_run_flags(args)
    video = load_video(args.video, max_frames=args.max_frames or MAX_FRAMES, stride=args.stride)

    from segzero.models.video import default_propagator_for
    from segzero.pipeline import default_segmenter_for

    segmenter = args.segmenter or default_segmenter_for(args.reasoner)
    propagator = args.propagator or default_propagator_for(segmenter)
    pipe = VideoSegPipeline.from_pretrained(
        reasoner=args.reasoner,
        segmenter=segmenter,
        propagator=propagator,
        device=args.device,
        prompt=args.prompt,
        frame=args.frame,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
    )
    result = pipe(video, query, keyframes=args.keyframes)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    for name, mask in zip(video.names, result.masks, strict=True):
        Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(out_dir / "masks" / f"{name}.png")
    frame_strip(video.frames, result.masks, result).save(out_dir / "strip.png")
    wrote_video = write_overlay_video(
        out_dir / "overlay.mp4", video.frames, result.masks, fps=video.fps or OVERLAY_FPS
    )
    extra = {
        "video": str(args.video),
        "query": query,
        "reasoner": args.reasoner,
        "segmenter": segmenter,
        "propagator": propagator,
        "frames": video.names,
    }
    payload = {**extra, **result.to_json(video.names)}
    (out_dir / "result.json").write_text(json.dumps(payload, indent=2) + "\n")
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    for k, res in zip(result.keyframes, result.keyframe_results, strict=True):
        print(f"keyframe {video.names[k]}: {res.reasoning if res.reasoning is not None else '(no reasoning)'}")
        if not res.parse_ok:
            print(f"keyframe {video.names[k]}: answer could not be parsed: {res.parse_error}", file=sys.stderr)
    covered = sum(bool(m.any()) for m in result.masks)
    print(f"masks on {covered} of {len(video.names)} frames ({video.size[0]}x{video.size[1]})")
    written = ["masks/", "strip.png", *(["overlay.mp4"] if wrote_video else []), "result.json"]
    print("wrote " + ", ".join(f"{out_dir}/{name}" for name in written))
    return 0
