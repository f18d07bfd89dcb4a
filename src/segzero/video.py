"""Video reasoning segmentation: the reasoner answers on keyframes, the answers are segmented there, and the masks are
propagated to every frame.

Usage::

    from segzero.video import VideoSegPipeline, load_video
    video = load_video("clip.mp4")                    # or a folder of frames (sorted by name); Video
    pipe = VideoSegPipeline.from_pretrained()          # DEFAULT_REASONER + DEFAULT_SEGMENTER + its video model
    res = pipe(video, "the dog that is about to jump")  # VideoResult
    res.masks                                          # (T, H, W) bool, one mask per frame, frame pixels
    results = pipe.segment_queries(video.frames, queries, keyframes=2)   # several queries, shared keyframes

How (``keyframe_plan``): the clip is cut into ``keyframes`` equal segments and the middle frame of each is its
keyframe. Every (keyframe, query) pair goes through the image pipeline (``SegZeroPipeline.batch``: one generate
batch, one segmenter embedding per keyframe shared by all queries), which gives the answer's object masks on the
keyframe; the propagator (``segzero.models.video``) carries each object mask from the keyframe to every frame of
its segment, and a frame's mask is the union of its objects'. A keyframe whose answer cannot be read or names no
object leaves its segment empty (``VideoResult.parse_ok`` says which). The propagator defaults to the segmenter's
counterpart (``default_propagator_for``: colour tracking for ``color``, else the segmenter's own checkpoint, whose
video model the hub's SAM2 checkpoints hold).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segzero.errors import UserError
from segzero.models.base import DEFAULT_REASONER

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MAX_FRAMES = 500  # frames read from one clip unless told otherwise (every frame is kept in memory; --stride thins)


@dataclass(frozen=True)
class Video:
    """A clip: ``frames`` (T PIL RGB images of one size), their ``names`` (file stems, or ``00000``... for a video
    file), ``fps`` (None for a frame folder) and the ``source`` path."""

    frames: list
    names: list[str]
    fps: float | None
    source: str

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) of the frames."""
        return self.frames[0].size


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def load_video(path: str | Path, *, max_frames: int | None = MAX_FRAMES, stride: int = 1) -> Video:
    """Read a video file (OpenCV) or a folder of frame images (sorted by name, numbers in order) as a ``Video``.

    Every ``stride``-th frame is kept, at most ``max_frames`` (None: all). ``UserError`` for a missing or
    unreadable source, no frames, or frames of different sizes.
    """
    from segzero.images import load_image

    if stride < 1 or (max_frames is not None and max_frames < 1):
        raise UserError(f"need stride >= 1 and max frames >= 1, got {stride} and {max_frames}")
    source = Path(path)
    if not source.exists():
        raise UserError(f"video not found: {source}")
    if source.is_dir():
        files = sorted((p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        files = files[::stride][:max_frames]
        if not files:
            raise UserError(f"no frame images ({', '.join(IMAGE_SUFFIXES)}) in {source}")
        frames, names, fps = [load_image(p) for p in files], [p.stem for p in files], None
    else:
        frames, fps = _read_video_file(source, max_frames=max_frames, stride=stride)
        names = [f"{t:05d}" for t in range(len(frames))]
    sizes = sorted({im.size for im in frames})
    if len(sizes) > 1:
        raise UserError(f"the frames of {source} differ in size: {sizes[:3]}")
    return Video(frames, names, fps, str(source))


def _read_video_file(path: Path, *, max_frames: int | None, stride: int) -> tuple[list, float | None]:
    import cv2
    from PIL import Image

    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"{path}: not a video file ({', '.join(VIDEO_SUFFIXES)}) or a folder of frames")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise UserError(f"cannot open video {path}")
    fps = capture.get(cv2.CAP_PROP_FPS) or None
    frames, index = [], 0
    try:
        while max_frames is None or len(frames) < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            if index % stride == 0:
                frames.append(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
            index += 1
    finally:
        capture.release()
    if not frames:
        raise UserError(f"no frames could be read from {path}")
    return frames, (fps / stride if fps else None)


def keyframe_plan(n_frames: int, count: int = 1) -> list[tuple[int, int, int]]:
    """``(keyframe, start, stop)`` per segment: frames ``0..n_frames-1`` cut into ``count`` (at most ``n_frames``)
    near-equal consecutive segments, each keyframe the middle frame of its segment (``(start + stop - 1) // 2``).

    >>> keyframe_plan(8), keyframe_plan(10, 2), keyframe_plan(2, 5)
    ([(3, 0, 8)], [(2, 0, 5), (7, 5, 10)], [(0, 0, 1), (1, 1, 2)])
    """
    if n_frames < 1 or count < 1:
        raise ValueError(f"need n_frames >= 1 and count >= 1, got {n_frames} and {count}")
    count = min(count, n_frames)
    bounds = [round(i * n_frames / count) for i in range(count + 1)]
    return [((start + stop - 1) // 2, start, stop) for start, stop in zip(bounds, bounds[1:], strict=False)]


@dataclass
class VideoResult:
    """One query on one clip: ``masks`` (T, H, W) bool in frame pixels; ``plan`` the ``(keyframe, start, stop)``
    segments and ``keyframe_results`` the image pipeline's ``SegResult`` on each keyframe (reasoning, objects in
    pixels, the keyframe mask)."""

    query: str
    masks: np.ndarray
    plan: list[tuple[int, int, int]]
    keyframe_results: list = field(default_factory=list)

    @property
    def keyframes(self) -> list[int]:
        return [k for k, _, _ in self.plan]

    @property
    def parse_ok(self) -> bool:
        """True when every keyframe's answer could be read."""
        return all(r.parse_ok for r in self.keyframe_results)

    def to_json(self, names: list[str] | None = None) -> dict:
        """JSON-ready summary (no mask arrays): the keyframes with their results, each frame's mask area."""
        keyframes = []
        for (k, start, stop), res in zip(self.plan, self.keyframe_results, strict=True):
            entry = {"frame": k, "segment": [start, stop], **res.to_json()}
            if names is not None:
                entry["name"] = names[k]
            keyframes.append(entry)
        return {
            "query": self.query,
            "n_frames": int(self.masks.shape[0]),
            "frame_size": [int(self.masks.shape[2]), int(self.masks.shape[1])],
            "parse_ok": self.parse_ok,
            "keyframes": keyframes,
            "mask_areas": [int(m.sum()) for m in self.masks],
        }


@dataclass
class VideoSegPipeline:
    """A ``SegZeroPipeline`` (reasoner + segmenter, on keyframes) and a propagator; see the module docstring."""

    pipeline: Any
    propagator: Any

    @classmethod
    def from_pretrained(
        cls,
        reasoner: Any = DEFAULT_REASONER,
        segmenter: Any = None,
        propagator: Any = None,
        *,
        device: str | None = None,
        **pipeline_kwargs,
    ) -> VideoSegPipeline:
        """Load the image pipeline (``SegZeroPipeline.from_pretrained(reasoner, segmenter, device=...,
        **pipeline_kwargs)``) and the propagator (``load_propagator``; None: ``default_propagator_for`` the
        segmenter). A loaded ``SegZeroPipeline`` may be given as ``reasoner`` (then ``segmenter`` names the
        propagator's default only)."""
        from segzero.models.video import default_propagator_for, load_propagator
        from segzero.pipeline import SegZeroPipeline, default_segmenter_for

        if isinstance(reasoner, SegZeroPipeline):
            pipe = reasoner
        else:
            segmenter = segmenter if segmenter is not None else default_segmenter_for(reasoner)
            pipe = SegZeroPipeline.from_pretrained(
                reasoner=reasoner, segmenter=segmenter, device=device, **pipeline_kwargs
            )
        if propagator is None:
            if segmenter is None or not isinstance(segmenter, str | Path):
                raise UserError("name the propagator (color or a SAM2 video checkpoint) for a loaded segmenter")
            propagator = default_propagator_for(str(segmenter))
        if isinstance(propagator, str | Path):
            propagator = load_propagator(propagator, device=device)
        return cls(pipeline=pipe, propagator=propagator)

    def __call__(self, video: Video | list, query: str, *, keyframes: int = 1) -> VideoResult:
        frames = video.frames if isinstance(video, Video) else video
        return self.segment_queries(frames, [query], keyframes=keyframes)[0]

    def segment_queries(self, frames: list, queries: list, *, keyframes: int = 1) -> list[VideoResult]:
        """Each query on the clip ``frames`` (PIL RGB, one size): one ``VideoResult`` per query, in order."""
        if not frames:
            raise UserError("a video needs at least one frame")
        plan = keyframe_plan(len(frames), keyframes)
        images = [frames[k] for _ in queries for k, _, _ in plan]
        asked = [q for q in queries for _ in plan]
        results = self.pipeline.batch(images, asked)
        width, height = frames[0].size
        out = []
        for i, query in enumerate(queries):
            mine = results[i * len(plan) : (i + 1) * len(plan)]
            masks = np.zeros((len(frames), height, width), dtype=bool)
            for (k, start, stop), res in zip(plan, mine, strict=True):
                objects = np.asarray(res.object_masks, dtype=bool).reshape(-1, height, width)
                if objects.any():
                    tracked = self.propagator.propagate(frames[start:stop], k - start, objects)
                    masks[start:stop] = tracked.any(axis=0)
            out.append(VideoResult(query=str(query), masks=masks, plan=plan, keyframe_results=list(mine)))
        return out


__all__ = ["Video", "VideoResult", "VideoSegPipeline", "keyframe_plan", "load_video"]
