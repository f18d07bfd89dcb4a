"""The moving-shapes world: short videos of shapes that drift, bounce off the walls and pass over one another, with
exact per-frame visible masks, and queries that stay true on every frame; written in the ReVOS annotation layout.

A video sample is a scene of ``segzero.shapes.scene`` whose shapes move at constant speed (each axis uniform in
``+-max_speed_frac * side`` pixels per frame, reflected at the walls), painted in the same order on every frame, so
a shape that passes under a later one is occluded there. Every frame obeys the scene rules (each shape at least
``min_visible`` visible and in one piece, same-colour shapes never touch), so each frame's visible masks are exact
and every flat-colour region is one shape. A query (``segzero.shapes.queries``) is drawn on the first frame and kept
only when its answer is the same shapes on every frame (a relation that flips as shapes move is redrawn). The
background (noise, texture) is the same on every frame.

Layout written by ``write_video_world`` (ReVOS's, so ``segzero eval --format revos`` reads it like the real set)::

    OUT/JPEGImages/<video>/<frame>.png       frames (PNG: lossless, so a frame's colours are exact)
    OUT/mask_dict.json                       {anno_id: [COCO RLE of the object's visible mask, one per frame]}
    OUT/meta_expressions_<split>_.json       {"videos": {<video>: {"vid_id", "frames": [<frame>, ...],
                                              "expressions": {<exp_id>: {"exp", "obj_id": [...], "anno_id": [...],
                                              "type_id", "family", "template", "wording"}}}}}
    OUT/world.json                           how it was made

Split file names are ReVOS's: ``train``, ``valid`` (for val) and ``test``. ``type_id`` is 0 for a referring
expression (the attribute family: "the red circle") and 1 for a reasoning one (every other family), the two
splits ReVOS reports. Coordinates and masks are in the frames' pixels (``config.size``).

Usage::

    from segzero.shapes.video import make_video_sample, write_video_world
    s = make_video_sample(0, seed=0, config=ShapesConfig(size=96), split="val", frames=6)
    s["frames"], s["masks"].shape, s["queries"]          # [PIL] * T, (S, T, H, W) bool, [Query, ...]
    info = write_video_world("data/shapes_video", n={"val": 8}, frames=6)

CLI: ``segzero world build --layout video --out DIR --n N [--frames T] [--split val ...]``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from segzero.rle import encode_mask
from segzero.shapes.queries import BY_NAME, FAMILIES, Query, sample_query
from segzero.shapes.scene import Shape, ShapesConfig, _readable, make_scene, render, shape_mask
from segzero.shapes.world import SPLITS

VIDEO_STREAM = 7  # a fourth rng key, so a video sample never shares draws with the image sample of the same index
BACKGROUND_STREAM = 1  # a fifth key: the background pattern, drawn once per video and repeated on every frame
SPLIT_NAMES: dict[str, str] = {"train": "train", "val": "valid", "test": "test"}  # meta_expressions_<name>_.json
REFERRING_FAMILIES: tuple[str, ...] = ("attribute",)  # type_id 0 (referring); every other family is 1 (reasoning)
FRAME_DIGITS = 5  # frame file names: 00000, 00001, ...


def track_centres(start: tuple[float, float], velocity: tuple[float, float], lo, hi, frames: int) -> np.ndarray:
    """(T, 2) centres of a shape moving from ``start`` by ``velocity`` px per frame, reflected at the walls
    ``lo`` / ``hi`` ((x, y) each: the range its centre may take).

    >>> track_centres((8.0, 5.0), (3.0, 0.0), (5.0, 0.0), (10.0, 9.0), 4).tolist()
    [[8.0, 5.0], [9.0, 5.0], [6.0, 5.0], [7.0, 5.0]]
    """
    t = np.arange(frames, dtype=np.float64)[:, None]
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    span = np.maximum(hi - lo, 1e-9)
    u = np.mod(np.asarray(start) - lo + np.asarray(velocity) * t, 2 * span)
    return lo + np.where(u <= span, u, 2 * span - u)


def _tracks(first: list[Shape], rng: np.random.Generator, config: ShapesConfig, frames: int, max_speed_frac: float):
    """The scene ``first`` moved over ``frames`` frames: a list (per frame) of ``Shape`` lists, or None when a frame
    breaks the scene rules (the caller redraws)."""
    w, h = config.wh
    speed = max_speed_frac * config.side
    centres = [
        track_centres(
            (s.cx, s.cy), tuple(rng.uniform(-speed, speed, size=2)), (s.radius + 1, s.radius + 1),
            (w - s.radius - 2, h - s.radius - 2), frames,
        )
        for s in first
    ]  # fmt: skip
    out: list[list[Shape]] = []
    for t in range(frames):
        full = [shape_mask(s.kind, *c[t], s.radius, (w, h)) for s, c in zip(first, centres, strict=True)]
        vis = _readable(full, [s.colour for s in first], config.min_visible)
        if vis is None:
            return None
        out.append(
            [Shape(s.kind, s.colour, float(c[t][0]), float(c[t][1]), s.radius, v, f)
             for s, c, v, f in zip(first, centres, vis, full, strict=True)]
        )  # fmt: skip
    return out


def _steady_queries(
    tracks: list[list[Shape]], config: ShapesConfig, rng: np.random.Generator, *, split: str, want: str,
    families: tuple[str, ...], count: int, tries: int,
) -> list[Query]:  # fmt: skip
    """Up to ``count`` queries with distinct texts drawn on the first frame whose answer is the same on every frame."""
    found: dict[str, Query] = {}
    for _ in range(tries):
        q = sample_query(tracks[0], config, rng, split=split, want=want, families=families)
        if q is None or q.text in found:
            continue
        template = BY_NAME[q.template]
        if all(template.answer(shapes, q.params, config) == q.answers for shapes in tracks[1:]):
            found[q.text] = q
            if len(found) == count:
                break
    return list(found.values())


def make_video_sample(
    index: int,
    *,
    seed: int = 0,
    config: ShapesConfig | None = None,
    split: str = "val",
    frames: int = 8,
    max_speed_frac: float = 0.03,
    answers: str = "one",
    families: tuple[str, ...] = FAMILIES,
    queries: int = 2,
    query_tries: int = 12,
) -> dict:
    """Video ``index`` of world ``seed`` in ``split``: ``frames`` frames, ``queries`` queries (fewer when the scene
    has fewer steady ones, at least one) whose answer count fits ``answers`` (``one``, ``several``, ``any``,
    ``none``). ``query_tries``: query draws per scene before the scene is redrawn.

    Keys: ``id`` (``"shapes-video-{split}-{seed}-{index}"``), ``frames`` (T PIL RGB images), ``masks`` ((S, T, H,
    W) bool: each shape's visible mask on each frame), ``full_masks`` (the same, unoccluded silhouettes), ``shapes`` (each shape's ``describe()`` facts on the first
    frame), ``queries`` (``Query`` list; ``answers`` index the shapes), ``split``. Deterministic in (seed, split,
    index) and the arguments.
    """
    config = config or ShapesConfig()
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    if frames < 1 or queries < 1:
        raise ValueError(f"need frames >= 1 and queries >= 1, got {frames} and {queries}")
    key = [seed, SPLITS[split], index, VIDEO_STREAM]
    rng = np.random.default_rng(key)
    for _ in range(config.max_tries):
        first = make_scene(rng, config)
        tracks = _tracks(first, rng, config, frames, max_speed_frac) if first else None
        if tracks is None:
            continue
        found = _steady_queries(
            tracks, config, rng, split=split, want=answers, families=families, count=queries, tries=query_tries
        )
        if not found:
            continue
        images = [render(shapes, config, np.random.default_rng([*key, BACKGROUND_STREAM])) for shapes in tracks]
        masks = np.stack([np.stack([shapes[i].mask for shapes in tracks]) for i in range(len(first))])
        full = np.stack([np.stack([shapes[i].full_mask for shapes in tracks]) for i in range(len(first))])
        return {
            "id": f"shapes-video-{split}-{seed}-{index}",
            "frames": images,
            "masks": masks,
            "full_masks": full,
            "shapes": [s.describe() for s in first],
            "queries": found,
            "split": split,
        }
    raise RuntimeError(f"no moving scene with a steady query in {config.max_tries} tries (seed {seed}, index {index})")


def frame_names(count: int) -> list[str]:
    """``["00000", "00001", ...]``: the frames' file stems, in order."""
    return [f"{t:0{FRAME_DIGITS}d}" for t in range(count)]


def type_id(family: str) -> int:
    """ReVOS's expression type: 0 referring (``REFERRING_FAMILIES``), 1 reasoning."""
    return 0 if family in REFERRING_FAMILIES else 1


def write_video_world(
    out: str | Path,
    *,
    n: int | dict[str, int] = 8,
    splits: tuple[str, ...] = ("val",),
    seed: int = 0,
    config: ShapesConfig | None = None,
    frames: int = 8,
    max_speed_frac: float = 0.03,
    answers: str | None = None,
    families: tuple[str, ...] = FAMILIES,
    queries: int = 2,
) -> dict:
    """Write ``n`` videos per split (an int for every split in ``splits``, or ``{split: n}``) in the ReVOS layout
    (module docstring) under ``out``; returns the ``world.json`` info (layout, seed, splits, answers, frames, ...).
    """
    config = config or ShapesConfig()
    answers = answers or "one"
    sizes = dict(n) if isinstance(n, dict) else {s: int(n) for s in splits}
    out = Path(out)
    (out / "JPEGImages").mkdir(parents=True, exist_ok=True)
    mask_dict: dict[str, list] = {}
    for split, count in sizes.items():
        videos = {}
        for index in range(count):
            sample = make_video_sample(
                index, seed=seed, config=config, split=split, frames=frames, max_speed_frac=max_speed_frac,
                answers=answers, families=families, queries=queries,
            )  # fmt: skip
            videos[sample["id"]] = _write_video(out, sample, mask_dict, vid_id=len(videos))
        meta = out / f"meta_expressions_{SPLIT_NAMES[split]}_.json"
        meta.write_text(json.dumps({"videos": videos}) + "\n")
    (out / "mask_dict.json").write_text(json.dumps(mask_dict) + "\n")
    info = {
        "world": "shapes",
        "layout": "video",
        "seed": seed,
        "splits": sizes,
        "answers": answers,
        "frames": frames,
        "max_speed_frac": max_speed_frac,
        "queries_per_video": queries,
        "families": list(families),
        "config": asdict(config),
    }
    (out / "world.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _write_video(out: Path, sample: dict, mask_dict: dict[str, list], *, vid_id: int) -> dict:
    """Save one sample's frames, add its shapes' masks to ``mask_dict`` (new anno ids), return its meta entry."""
    names = frame_names(len(sample["frames"]))
    folder = out / "JPEGImages" / sample["id"]
    folder.mkdir(parents=True, exist_ok=True)
    for name, image in zip(names, sample["frames"], strict=True):
        image.save(folder / f"{name}.png")
    anno_ids = []
    for per_frame in sample["masks"]:  # one shape: (T, H, W)
        anno_ids.append(len(mask_dict))
        mask_dict[str(anno_ids[-1])] = [encode_mask(m) if m.any() else None for m in per_frame]
    expressions = {
        str(k): {
            "exp": q.text,
            "obj_id": list(q.answers),
            "anno_id": [anno_ids[i] for i in q.answers],
            "type_id": type_id(q.family),
            "family": q.family,
            "template": q.template,
            "wording": q.wording,
        }
        for k, q in enumerate(sample["queries"])
    }
    return {"vid_id": vid_id, "frames": names, "expressions": expressions}


__all__ = [
    "REFERRING_FAMILIES",
    "SPLIT_NAMES",
    "frame_names",
    "make_video_sample",
    "track_centres",
    "type_id",
    "write_video_world",
]
