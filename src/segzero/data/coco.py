"""Plan a build from COCO-format instances (``--source coco``): your queries, or one row per category of an image.

Inputs: ``--instances instances.json`` (COCO: ``images`` with ``id``, ``file_name`` and, optionally, ``width`` /
``height``; ``annotations`` with ``id``, ``image_id``, ``category_id``, ``segmentation`` (polygons or RLE),
``iscrowd``; ``categories`` with ``id`` and ``name``), ``--images DIR`` (files by ``file_name``) and, optionally,
``--queries queries.jsonl``, one JSON object per line::

    {"image_id": 42, "query": "the man holding the umbrella", "ann_ids": 1771}
    {"file_name": "000000000042.jpg", "query": "all the umbrellas", "ann_ids": [1771, 1802], "split": "val"}
    {"image_id": 42, "query": "the giraffe", "ann_ids": [], "id": "42-none"}

``ann_ids``: one id or a list (each object gets its own box and points; ``[]``: a "nothing here" row); ``id``
(default ``<queries stem>-<line number>``) and ``split`` as in a manifest (``segzero.data.manifest``).

Without ``--queries``, rows come from the category names ("detection-only" data): one row per category present in
an image, query ``category_query`` (``"the {category}"``), target every non-crowd instance of it, so the multi layout
keeps them all (the single layout keeps the rows with exactly one instance). A row whose category also has a crowd
annotation in that image is dropped (``crowd_annotation``): a crowd region holds instances no object of the row
covers, so its gt would be wrong. Categories absent from an image give no row.

Plan-time drop reasons: ``bad_json``, ``misspelt_key``, ``no_image``, ``image_id_not_found``,
``file_name_not_found``, ``no_query``, ``no_ann_ids``, ``bad_ann_ids``, ``ann_id_not_found``,
``ann_image_mismatch``, ``no_segmentation``, ``crowd_annotation``, ``duplicate_id``, ``no_target_single_layout``,
``several_objects_single_layout``; then the row builder's (``segzero.data.samples``).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

from segzero.data.manifest import (
    check_keys,
    drop,
    image_tasks,
    layout_problem,
    planned_lines,
    sample_lines,
)
from segzero.data.refer import BadAnnotation
from segzero.data.samples import ImageTask, TaskResult
from segzero.errors import UserError

QUERY_KEYS = ("image_id", "file_name", "query", "ann_ids", "id", "split")


class Instances:
    """A COCO instances file: images by id and by file name, annotations by id, category names by id."""

    def __init__(self, path: Path):
        try:
            data = path.read_bytes()
            coco = json.loads(data)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read COCO instances {path}: {err}") from err
        if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
            raise UserError(f"{path} is no COCO instances file (a JSON object with images and annotations)")
        try:
            self.images = {int(im["id"]): im for im in coco["images"]}
            self.by_file = {str(im["file_name"]): int(im["id"]) for im in coco["images"]}
            self.anns = {int(a["id"]): {**a, "image_id": int(a["image_id"])} for a in coco.get("annotations", [])}
            self.categories = {int(c["id"]): str(c["name"]) for c in coco.get("categories", [])}
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{path}: an image, annotation or category lacks a field ({err!r})") from err
        self.digest = hashlib.sha256(data).hexdigest()[:16]

    def size(self, image_id: int) -> tuple[int, int]:
        """The annotated (w, h) of an image; 0 where instances.json omits it (the file's size is taken)."""
        im = self.images[image_id]
        return int(im.get("width") or 0), int(im.get("height") or 0)

    def segmentation(self, ann_id: int, where: str):
        """An annotation's segmentation; ``BadAnnotation("no_segmentation")`` when it has none."""
        seg = self.anns[ann_id].get("segmentation")
        if seg in (None, [], {}):
            raise BadAnnotation("no_segmentation", f"{where}: annotation {ann_id} has no segmentation")
        return seg


def _image_of(obj: dict, coco: Instances, where: str) -> int:
    if "image_id" in obj:
        try:
            image_id = int(obj["image_id"])
        except (TypeError, ValueError):
            raise BadAnnotation("image_id_not_found", f"{where}: image_id {obj['image_id']!r}") from None
        if image_id not in coco.images:
            raise BadAnnotation("image_id_not_found", f"{where}: image_id {image_id}")
        return image_id
    if "file_name" in obj:
        if str(obj["file_name"]) not in coco.by_file:
            raise BadAnnotation("file_name_not_found", f"{where}: file_name {obj['file_name']!r}")
        return coco.by_file[str(obj["file_name"])]
    raise BadAnnotation("no_image", f"{where}: neither image_id nor file_name")


def _ann_ids(obj: dict, coco: Instances, image_id: int, where: str) -> list[int]:
    if "ann_ids" not in obj:
        raise BadAnnotation("no_ann_ids", f"{where}: no ann_ids ([] for a query that means nothing)")
    value = obj["ann_ids"]
    ids = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise BadAnnotation("bad_ann_ids", f"{where}: ann_ids must be an id or a list of ids")
    for i in ids:
        if i not in coco.anns:
            raise BadAnnotation("ann_id_not_found", f"{where}: annotation {i}")
        if int(coco.anns[i]["image_id"]) != image_id:
            raise BadAnnotation(
                "ann_image_mismatch", f"{where}: annotation {i} is on image {coco.anns[i]['image_id']}"
            )
    return list(dict.fromkeys(ids))


def _query_rows(cfg, coco: Instances, pre: TaskResult) -> tuple[dict, dict]:
    """Rows of a queries file: ``({image_id: [(row id, query, [ann id, ...]), ...]}, info)``."""
    path = Path(cfg.queries)
    lines, digest, other_splits, candidates = planned_lines(path, "queries file", cfg)
    rows: dict[int, list] = defaultdict(list)
    seen: set[str] = set()
    for number, obj in lines:
        where = f"line {number}"
        try:
            if isinstance(obj, BadAnnotation):
                raise obj
            if not isinstance(obj, dict):
                raise BadAnnotation("bad_json", f"{where}: not a JSON object")
            check_keys(obj, QUERY_KEYS, where, pre)
            image_id = _image_of(obj, coco, where)
            query = obj.get("query")
            if not isinstance(query, str) or not query.strip():
                raise BadAnnotation("no_query", f"{where}: no query text")
            ids = _ann_ids(obj, coco, image_id, where)
            segs = [(i, coco.segmentation(i, where)) for i in ids]
            row_id = str(obj["id"]) if obj.get("id") not in (None, "") else f"{path.stem}-{number}"
            if row_id in seen:
                raise BadAnnotation("duplicate_id", f"{where}: id {row_id!r} already used")
        except BadAnnotation as err:
            drop(pre, err.reason, err.detail)
            continue
        seen.add(row_id)
        rows[image_id].append((row_id, query.strip(), segs, where))
    info = {"queries": str(path), "rows_other_splits": other_splits, "rows_candidates": candidates}
    return rows, {**info, "rows_planned": len(lines), "inputs_digest": digest}


def _category_rows(cfg, coco: Instances, pre: TaskResult) -> tuple[dict, dict]:
    """One row per (image, category present): ``({image_id: [(row id, query, [ann id, ...]), ...]}, info)``."""
    message = f"--category-query must hold {{category}} and no other field, got {cfg.category_query!r}"
    try:
        cfg.category_query.format(category="x")
    except (KeyError, IndexError, ValueError) as err:
        raise UserError(message) from err
    if "{category}" not in cfg.category_query:
        raise UserError(message)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for ann_id in sorted(coco.anns):
        ann = coco.anns[ann_id]
        groups[(int(ann["image_id"]), int(ann.get("category_id", -1)))].append(ann_id)
    candidates = []
    for (image_id, cat), ids in sorted(groups.items()):
        if image_id in coco.images and any(not coco.anns[i].get("iscrowd") for i in ids):
            candidates.append((image_id, cat, ids))
    if not candidates:
        raise UserError("the COCO instances hold no (non-crowd) annotation of a listed image")
    planned = sample_lines(candidates, cfg.limit, cfg.seed)  # (image, category) order, as file lines
    rows: dict[int, list] = defaultdict(list)
    stem = Path(cfg.instances).stem
    for image_id, cat, ids in planned:
        where = f"image {image_id} category {cat}"
        try:
            if cat not in coco.categories:
                raise BadAnnotation("category_not_found", f"{where}: no category {cat} in categories")
            if any(coco.anns[i].get("iscrowd") for i in ids):
                raise BadAnnotation("crowd_annotation", f"{where}: a crowd annotation covers instances of it")
            segs = [(i, coco.segmentation(i, where)) for i in ids]
        except BadAnnotation as err:
            drop(pre, err.reason, err.detail)
            continue
        query = cfg.category_query.format(category=coco.categories[cat])
        rows[image_id].append((f"{stem}-{image_id}-{cat}", query, segs, where))
    return rows, {"rows_candidates": len(candidates), "rows_planned": len(planned), "inputs_digest": ""}


def plan_coco(cfg) -> tuple[list[ImageTask], TaskResult, dict]:
    """Tasks by image, plan-time drops and info of a ``BuildConfig`` with ``source="coco"`` (module docstring)."""
    if not cfg.instances:
        raise UserError("--source coco needs --instances instances.json")
    path = Path(cfg.instances)
    if not path.is_file():
        raise UserError(f"COCO instances not found: {path}")
    coco = Instances(path)
    pre = TaskResult()
    rows, info = (_query_rows if cfg.queries else _category_rows)(cfg, coco, pre)
    by_image: dict[str, list] = defaultdict(list)
    sizes = {}
    for image_id in sorted(rows):
        key = str(coco.images[image_id]["file_name"])
        sizes[key] = coco.size(image_id)
        for row_id, query, segs, where in rows[image_id]:
            problem = layout_problem(len(segs), cfg.layout)
            if problem:
                drop(pre, problem, f"{where}: {len(segs)} object(s); --layout multi keeps the row")
            else:
                by_image[key].append((row_id, query, [(f"ann {i}", f"ann {i}", s) for i, s in segs]))
    info = {"dataset": path.stem, "instances": str(path), **info}
    info["inputs_digest"] = coco.digest + info["inputs_digest"]
    return image_tasks(by_image, sizes), pre, info
