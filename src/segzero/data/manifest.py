"""Plan a build from a JSON Lines manifest of your own images, masks and queries (``--source jsonl``).

One JSON object per line (blank lines skipped); paths are relative to the manifest's folder unless absolute::

    {"image": "images/a.jpg", "query": "the red mug", "mask": "masks/a.png"}
    {"image": "images/a.jpg", "query": "the blue mug", "mask": "masks/a_ids.png", "mask_value": 2}
    {"image": "images/b.jpg", "query": "the dog", "rle": {"size": [480, 640], "counts": "..."}}
    {"image": "images/b.jpg", "query": "the cat", "polygon": [[10, 10, 60, 12, 40, 50]]}
    {"image": "images/b.jpg", "query": "both pets", "objects": [{"polygon": [...]}, {"mask": "masks/dog.png"}]}
    {"image": "images/b.jpg", "query": "the unicorn", "objects": [], "id": "b-none", "split": "val"}

A row's target is one object (``mask``, ``rle`` or ``polygon``), several (``objects``: a list of such objects,
each its own box and points) or none (``"objects": []``: a "nothing here" row, gt ``[]``). Forms, in
original-image pixels (the stored pixel order, no EXIF rotation): ``mask`` an image file whose nonzero pixels are
the object, or with ``mask_value`` the pixels of that value (an id in a one-channel mask, or ``[r, g, b]``);
``rle`` COCO RLE, ``counts`` compressed (str) or uncompressed (list), ``size`` ``[h, w]`` of the image; ``polygon``
COCO polygons ``[[x, y, x, y, ...], ...]`` (one flat list or a list of ``[x, y]`` pairs is one polygon). Optional:
``id`` (default ``<manifest stem>-<line number>``) and ``split`` (a row without one, or a line that is no JSON,
belongs to whatever split is built; a row with one only to that split; ``--split all`` takes every row). Queries are kept as written, surrounding
whitespace stripped (each prompt family applies its own punctuation rule when it builds the prompt).

Bad rows never stop a build: each is counted in ``stats.json`` under one reason. Here, at plan time:
``bad_json``, ``no_image``, ``no_query``, ``no_target_field`` (none of mask/rle/polygon/objects),
``several_target_fields``, ``bad_objects``, ``bad_mask_field``, ``bad_mask_value``, ``bad_rle``, ``bad_polygon``,
``misspelt_key``, ``duplicate_id``, and in the single layout (one object per row) ``no_target_single_layout`` and
``several_objects_single_layout``; then, per image and object, the row builder's own (``missing_image``,
``unreadable_image``, ``missing_mask``, ``unreadable_mask``, ``mask_size_mismatch``, ``rle_size_mismatch``,
``polygon_too_few_points``, ``bad_segmentation``, ``empty_mask``, ...; ``segzero.data.samples``). Unknown keys: a key
that looks like a misspelt known one (``qurey``, ``polygons``, ``Image``: ``difflib`` similarity >= ``TYPO_CUTOFF``)
drops its row (``misspelt_key``), since the row would otherwise be built without what the key meant; any other key
is ignored and counted under the warning ``unknown_key`` (extra metadata is common).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import random
from collections import Counter, defaultdict
from pathlib import Path

from segzero.data.masks import MaskFile
from segzero.data.refer import BadAnnotation
from segzero.data.samples import ImageTask, ObjectTask, RowTask, TaskResult
from segzero.errors import UserError

ROW_KEYS = ("image", "query", "mask", "mask_value", "rle", "polygon", "objects", "id", "split")
OBJECT_KEYS = ("mask", "mask_value", "rle", "polygon")
TARGET_KEYS = ("mask", "rle", "polygon")
TYPO_CUTOFF = 0.75  # difflib ratio (lower-cased) from which an unknown key counts as a misspelt known one


def check_keys(entry: dict, known: tuple[str, ...], where: str, result: TaskResult) -> None:
    """Raise ``BadAnnotation("misspelt_key")`` for a key that looks like a misspelt ``known`` one; count the other
    unknown keys under the warning ``unknown_key``."""
    for key in entry:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key).lower(), known, n=1, cutoff=TYPO_CUTOFF)
        if close:
            raise BadAnnotation("misspelt_key", f"{where}: {key!r} (did you mean {close[0]!r}?)")
        result.warnings["unknown_key"] += 1
        result.note("unknown_key", f"{where}: {key!r} ignored")


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _polygons(value, where: str) -> list[list[float]]:
    """COCO polygons from a ``polygon`` field: a list of flat lists, one flat list, or one list of [x, y] pairs."""
    if isinstance(value, list) and value and all(_is_number(v) for v in value):
        return [list(value)]
    if isinstance(value, list) and all(isinstance(p, list) and all(_is_number(v) for v in p) for p in value):
        if value and all(len(p) == 2 for p in value):  # [[x, y], [x, y], ...]: the points of one polygon
            return [[v for p in value for v in p]]
        return [list(p) for p in value]
    raise BadAnnotation("bad_polygon", f"{where}: polygon must be [[x, y, x, y, ...], ...] of numbers")


def _mask_value(value, where: str):
    if value is None or (_is_int(value) and value >= 0):
        return value
    if isinstance(value, list) and len(value) > 1 and all(_is_int(v) for v in value):
        return tuple(value)
    raise BadAnnotation("bad_mask_value", f"{where}: mask_value must be a non-negative int or a colour [r, g, b]")


def parse_object(entry: dict, base: Path, where: str):
    """The segmentation of one target entry: a ``MaskFile`` (absolute path), an RLE dict or a polygon list."""
    present = [k for k in TARGET_KEYS if k in entry]
    if not present:
        raise BadAnnotation("no_target_field", f"{where}: none of {', '.join(TARGET_KEYS)}")
    if len(present) > 1:
        raise BadAnnotation("several_target_fields", f"{where}: {', '.join(present)} (one object has one mask form)")
    if "mask_value" in entry and present != ["mask"]:
        raise BadAnnotation("bad_mask_value", f"{where}: mask_value without mask")
    kind, value = present[0], entry[present[0]]
    if kind == "mask":
        if not isinstance(value, str) or not value:
            raise BadAnnotation("bad_mask_field", f"{where}: mask must be a file path")
        return MaskFile(os.path.normpath(base / value), _mask_value(entry.get("mask_value"), where))
    if kind == "rle":
        size = value.get("size") if isinstance(value, dict) else None
        counts = value.get("counts") if isinstance(value, dict) else None
        size_ok = isinstance(size, list) and len(size) == 2 and all(_is_int(v) and v > 0 for v in size)
        if not size_ok or not isinstance(counts, str | list):
            raise BadAnnotation("bad_rle", f"{where}: rle must be {{'size': [h, w], 'counts': str or [int, ...]}}")
        return {"size": size, "counts": counts}
    return _polygons(value, where)


def _parse_row(obj, line: int, base: Path, stem: str, result: TaskResult) -> tuple[str, str, str, list]:
    """``(row id, image key, query, [segmentation, ...])`` of one manifest line; raises ``BadAnnotation``."""
    where = f"line {line}"
    if not isinstance(obj, dict):
        raise BadAnnotation("bad_json", f"{where}: not a JSON object")
    check_keys(obj, ROW_KEYS, where, result)
    image = obj.get("image")
    if not isinstance(image, str) or not image.strip():
        raise BadAnnotation("no_image", f"{where}: no image path")
    query = obj.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadAnnotation("no_query", f"{where}: no query text")
    if "objects" in obj:
        if any(k in obj for k in OBJECT_KEYS):
            raise BadAnnotation("several_target_fields", f"{where}: objects and a top-level mask form")
        entries = obj["objects"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise BadAnnotation("bad_objects", f"{where}: objects must be a list of {{mask|rle|polygon: ...}}")
        for k, e in enumerate(entries):
            check_keys(e, OBJECT_KEYS, f"{where} object {k}", result)
        segs = [parse_object(e, base, f"{where} object {k}") for k, e in enumerate(entries)]
    else:
        segs = [parse_object(obj, base, where)]
    row_id = str(obj["id"]) if obj.get("id") not in (None, "") else f"{stem}-{line}"
    return row_id, os.path.normpath(image.strip()), query.strip(), segs


def read_lines(path: Path, what: str) -> tuple[list[tuple[int, object]], str]:
    """``[(line number, parsed JSON or a BadAnnotation), ...]`` of a JSON Lines file (blank lines skipped) and the sha256
    of its bytes. Raises ``UserError`` when the file cannot be read."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {what} {path}: {err}") from err
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append((number, json.loads(line)))
        except json.JSONDecodeError as err:
            lines.append((number, BadAnnotation("bad_json", f"line {number}: {err}")))
    return lines, hashlib.sha256(data).hexdigest()[:16]


def select_split(lines: list, split: str, what: str) -> tuple[list, dict[str, int]]:
    """The lines of ``split`` (``all``: every line; a line without ``split`` is in every split) and the number of
    lines left out per other split. Raises ``UserError`` when none is left."""
    kept, others = [], Counter()
    for number, obj in lines:
        tag = obj.get("split") if isinstance(obj, dict) else None
        if split != "all" and tag not in (None, "") and str(tag) != split:
            others[str(tag)] += 1
            continue
        kept.append((number, obj))
    if not kept:
        raise UserError(f"no rows in split {split!r} in {what}" + (f"; it has {dict(others)}" if others else ""))
    return kept, dict(sorted(others.items()))


def planned_lines(path: Path, what: str, cfg) -> tuple[list, str, dict[str, int], int]:
    """The JSON lines of file ``path`` (``what`` names it in errors) a build plans: ``(lines of cfg.split, sampled
    by cfg.limit / cfg.seed, the file's digest, {other split: lines}, lines of the split before sampling)``;
    ``UserError`` for a missing or empty file."""
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    lines, digest = read_lines(path, what)
    if not lines:
        raise UserError(f"{what} {path} has no rows")
    lines, other_splits = select_split(lines, cfg.split, f"{what} {path}")
    return sample_lines(lines, cfg.limit, cfg.seed), digest, other_splits, len(lines)


def sample_lines(lines: list, limit: int | None, seed: int) -> list:
    """``limit`` lines drawn with ``seed`` (all when None or more), in file order."""
    if limit is None or limit >= len(lines):
        return lines
    return sorted(random.Random(seed).sample(lines, limit), key=lambda item: item[0])


def drop(result: TaskResult, reason: str, detail: str) -> None:
    """Count one planned row as dropped under ``reason``."""
    result.dropped_rows[reason] += 1
    result.note(reason, detail)


def layout_problem(n_objects: int, layout: str) -> str:
    """The drop reason of a row with ``n_objects`` in ``layout`` (``""``: it fits)."""
    if layout == "single" and n_objects != 1:
        return "no_target_single_layout" if n_objects == 0 else "several_objects_single_layout"
    return ""


def image_tasks(rows_by_image: dict[str, list[tuple[str, str, list]]], sizes: dict | None = None) -> list[ImageTask]:
    """``ImageTask``s from ``{image key: [(row id, query, [(object key, name, segmentation), ...]), ...]}``, images
    sorted by key, an object decoded once per image however many rows name it. ``sizes``: key -> (w, h) when known
    (else 0: the file's size)."""
    tasks = []
    for image_id, key in enumerate(sorted(rows_by_image)):
        index: dict[str, int] = {}
        objects: list[ObjectTask] = []
        rows = []
        for row_id, query, segs in rows_by_image[key]:
            for obj_key, name, seg in segs:
                if obj_key not in index:
                    index[obj_key] = len(objects)
                    objects.append(ObjectTask(image_id, len(objects), seg, name=name))
            rows.append(RowTask(row_id, query, tuple(index[k] for k, _, _ in segs)))
        w, h = (sizes or {}).get(key, (0, 0))
        tasks.append(ImageTask(image_id, key, w, h, tuple(objects), tuple(rows)))
    return tasks


def _object_key(seg) -> str:
    return repr(seg) if isinstance(seg, MaskFile) else json.dumps(seg, sort_keys=True)


def plan_manifest(cfg) -> tuple[list[ImageTask], TaskResult, dict]:
    """Tasks by image, plan-time drops and info of a ``BuildConfig`` with ``source="jsonl"`` (see the module
    docstring); every line of the built split is either in a task or counted under one drop reason."""
    if not cfg.manifest:
        raise UserError("--source jsonl needs --manifest FILE")
    path = Path(cfg.manifest)
    lines, digest, other_splits, candidates = planned_lines(path, "manifest", cfg)
    pre = TaskResult()
    base = path.resolve().parent
    seen: set[str] = set()
    by_image: dict[str, list] = defaultdict(list)
    for number, obj in lines:
        try:
            if isinstance(obj, BadAnnotation):
                raise obj
            row_id, image, query, segs = _parse_row(obj, number, base, path.stem, pre)
            if row_id in seen:
                raise BadAnnotation("duplicate_id", f"line {number}: id {row_id!r} already used")
            seen.add(row_id)  # an id is taken by the first row that names it, written or not
            problem = layout_problem(len(segs), cfg.layout)
            if problem:
                raise BadAnnotation(problem, f"line {number}: {len(segs)} object(s); --layout multi keeps the row")
        except BadAnnotation as err:
            drop(pre, err.reason, err.detail)
            continue
        named = [(_object_key(s), f"line {number} object {k}", s) for k, s in enumerate(segs)]
        by_image[image].append((row_id, query, named))
    info = {
        "dataset": path.stem,
        "manifest": str(path),
        "rows_other_splits": other_splits,
        "rows_candidates": candidates,
        "rows_planned": len(lines),
        "inputs_digest": digest,
    }
    return image_tasks(by_image), pre, info
