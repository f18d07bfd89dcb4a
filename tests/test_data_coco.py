"""Tests of ``segzero data build --source coco``: COCO instances drawn here (polygons, compressed and uncompressed
RLE, a crowd region, an annotation without segmentation) with a queries file (one, several and no annotations;
every bad query counted by reason) or without one (a row per category present in an image).

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_data_coco.py``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from segzero.cli.main import main
from segzero.data.build import BuildConfig, build
from segzero.data.export import load_built
from segzero.errors import UserError

W, H = 60, 40  # both images; the frame is (120, 80): an exact 2x, so boxes scale without rounding


def _rect(x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y1:y2, x1:x2] = True
    return m


# annotation id -> (image id, category id, oracle mask, how instances.json writes it, iscrowd)
def _rle(mask: np.ndarray, compressed: bool) -> dict:
    code = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    if compressed:
        return {"size": [H, W], "counts": code["counts"].decode("ascii")}
    flat = mask.flatten(order="F").astype(np.int8)  # uncompressed counts: column-major runs from zeros
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return {"size": [H, W], "counts": np.diff(np.concatenate([[0], edges])).tolist()}


ANNS = {
    1: (1, 1, _rect(5, 5, 20, 30), "polygon", 0),  # a cat
    2: (1, 1, _rect(30, 5, 50, 20), "compressed", 0),  # another cat
    3: (1, 2, _rect(25, 25, 55, 38), "uncompressed", 0),  # a sofa
    4: (2, 1, _rect(2, 2, 12, 12), "polygon", 0),  # a cat on image 2
    5: (2, 3, _rect(20, 10, 40, 30), "polygon", 0),  # a person on image 2 ...
    6: (2, 3, _rect(42, 10, 58, 38), "compressed", 1),  # ... and a crowd of people
    7: (2, 2, None, "none", 0),  # a sofa without segmentation
}
CATEGORIES = {1: "cat", 2: "sofa", 3: "person"}


def _segmentation(mask, form):
    if form == "polygon":
        ys, xs = np.nonzero(mask)  # pycocotools covers x1..x2-1 of the polygon x1..x2
        x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        return [[int(v) for v in (x1, y1, x2, y1, x2, y2, x1, y2)]]
    return [] if form == "none" else _rle(mask, form == "compressed")


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("coco")
    (root / "images").mkdir()
    rng = np.random.default_rng(1)
    for name in ("one.jpg", "two.jpg"):
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(root / "images" / name)
    instances = {
        "images": [
            {"id": 1, "file_name": "one.jpg", "width": W, "height": H},
            {"id": 2, "file_name": "two.jpg"},  # no size: the file's is taken
            {"id": 3, "file_name": "gone.jpg", "width": W, "height": H},  # listed, absent from the folder
        ],
        "annotations": [
            {"id": a, "image_id": im, "category_id": c, "segmentation": _segmentation(m, f), "iscrowd": crowd}
            for a, (im, c, m, f, crowd) in ANNS.items()
        ]
        + [{"id": 8, "image_id": 3, "category_id": 1, "segmentation": [[1, 1, 9, 1, 9, 9]], "iscrowd": 0}],
        "categories": [{"id": c, "name": n} for c, n in CATEGORIES.items()],
    }
    (root / "instances.json").write_text(json.dumps(instances))
    return root


def _box(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [2 * int(xs.min()), 2 * int(ys.min()), 2 * int(xs.max()), 2 * int(ys.max())]


def _cfg(coco: Path, out: Path, **kw) -> BuildConfig:
    kw.setdefault("layout", "multi")
    return BuildConfig(
        source="coco", instances=str(coco / "instances.json"), images_dir=str(coco / "images"), out=str(out),
        frame=(120, 80), progress=False, **kw,
    )  # fmt: skip


# good queries: (line, [ann ids whose masks its objects are, in order])
GOOD = [
    ({"id": "q-one", "image_id": 1, "query": "the cat on the left", "ann_ids": 1}, [1]),  # one id
    ({"id": "q-two", "file_name": "one.jpg", "query": "both cats", "ann_ids": [1, 2]}, [1, 2]),  # by file name
    ({"id": "q-none", "image_id": 1, "query": "the dog", "ann_ids": []}, []),  # nothing here
    ({"id": "q-rle", "image_id": 1, "query": "where to sit", "ann_ids": [3]}, [3]),  # uncompressed RLE
    ({"id": "q-crowd", "image_id": 2, "query": "the crowd", "ann_ids": [6]}, [6]),  # named crowd: used as it is
    ({"id": "q-size", "image_id": "2", "query": "a cat", "ann_ids": [4], "note": "x"}, [4]),  # id as text, extra key
]
BAD = [
    ('{"image_id": 1,', "bad_json"),  # unreadable line
    (json.dumps({"image_id": 9, "query": "q", "ann_ids": []}), "image_id_not_found"),  # not in images
    (json.dumps({"file_name": "nine.jpg", "query": "q", "ann_ids": []}), "file_name_not_found"),
    (json.dumps({"query": "q", "ann_ids": [1]}), "no_image"),  # neither image_id nor file_name
    (json.dumps({"image_id": 1, "query": "", "ann_ids": [1]}), "no_query"),
    (json.dumps({"image_id": 1, "query": "q"}), "no_ann_ids"),  # [] must be said, never assumed
    (json.dumps({"image_id": 1, "query": "q", "ann_ids": "1"}), "bad_ann_ids"),
    (json.dumps({"image_id": 1, "query": "q", "ann_ids": [99]}), "ann_id_not_found"),
    (json.dumps({"image_id": 1, "query": "q", "ann_ids": [4]}), "ann_image_mismatch"),  # 4 is on image 2
    (json.dumps({"image_id": 2, "query": "q", "ann_ids": [7]}), "no_segmentation"),
    (json.dumps({"image_id": 1, "query": "q", "ann_ids": [1], "annids": [2]}), "misspelt_key"),
    (json.dumps({"id": "q-one", "image_id": 1, "query": "q", "ann_ids": [1]}), "duplicate_id"),
    (json.dumps({"image_id": 3, "query": "q", "ann_ids": [8]}), "missing_image"),  # the row builder's reason
]


@pytest.fixture(scope="module")
def queried(coco, tmp_path_factory):
    path = coco / "queries.jsonl"
    path.write_text("\n".join([json.dumps(q) for q, _ in GOOD] + [line for line, _ in BAD]) + "\n")
    out = tmp_path_factory.mktemp("built") / "q"
    return out, build(_cfg(coco, out, queries=str(path)))


def test_query_rows_match_the_drawn_masks(queried):
    out, _ = queried
    rows = {r["id"]: r for r in load_built(out)}
    assert set(rows) == {q["id"] for q, _ in GOOD}
    for q, anns in GOOD:
        row = rows[q["id"]]
        items = json.loads(row["solution"])
        assert [i["bbox_2d"] for i in items] == [_box(ANNS[a][2]) for a in anns], q
        for item, a in zip(items, anns, strict=True):
            x, y = item["point_2d"]
            assert ANNS[a][2][y // 2, x // 2], q  # the point is on the object
        assert row["problem"] == q["query"] and (row["img_width"], row["img_height"]) == (W, H)
        union = np.logical_or.reduce([ANNS[a][2] for a in anns]) if anns else np.zeros((H, W), bool)
        assert np.array_equal(np.asarray(row["mask"]) > 0, union.repeat(2, 0).repeat(2, 1)), q  # eval column


def test_bad_queries_are_counted_by_reason(queried):
    _, stats = queried
    assert stats["dropped_rows"] == dict(Counter(reason for _, reason in BAD))
    assert stats["rows_planned"] == len(GOOD) + len(BAD) == stats["rows_written"] + sum(stats["dropped_rows"].values())
    assert stats["warnings"] == {"unknown_key": 1}  # "note"
    assert stats["source"] == "coco" and stats["dataset"] == "instances"


@pytest.mark.parametrize(
    ("layout", "template", "rows", "dropped"),
    [
        # multi: image 1 cats (1, 2) and sofa (3); image 2 cat (4); its person has a crowd (dropped), its sofa no
        # segmentation (dropped); image 3's cat is not on disk (the row builder's missing_image)
        (
            "multi",
            "the {category}",
            {
                "instances-1-1": ("the cat", [1, 2]),
                "instances-1-2": ("the sofa", [3]),
                "instances-2-1": ("the cat", [4]),
            },
            {"crowd_annotation": 1, "no_segmentation": 1, "missing_image": 1},
        ),
        # single: the two-cat row cannot be one object
        (
            "single",
            "all {category}s",
            {"instances-1-2": ("all sofas", [3]), "instances-2-1": ("all cats", [4])},
            {"crowd_annotation": 1, "no_segmentation": 1, "missing_image": 1, "several_objects_single_layout": 1},
        ),
    ],
)
def test_category_rows_without_queries(coco, tmp_path, layout, template, rows, dropped):
    from segzero.parsing import parse_solution

    stats = build(_cfg(coco, tmp_path / "o", layout=layout, category_query=template))
    got = {r["id"]: r for r in load_built(tmp_path / "o")}
    assert set(got) == set(rows) and stats["dropped_rows"] == dropped
    assert stats["rows_planned"] == stats["rows_written"] + sum(stats["dropped_rows"].values())
    for rid, (query, anns) in rows.items():
        assert got[rid]["problem"] == query
        assert [list(o.box) for o in parse_solution(got[rid]["solution"])] == [_box(ANNS[a][2]) for a in anns]


@pytest.mark.parametrize("template", ["the {name}", "the thing", "the {category} {0}"])  # unknown, none, extra
def test_bad_category_template_is_a_user_error(coco, tmp_path, template):
    with pytest.raises(UserError, match="--category-query"):
        build(_cfg(coco, tmp_path / "o", category_query=template))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--images", "IMAGES"], "needs --instances"),  # the instances are the input
        (["--instances", "nope.json", "--images", "IMAGES"], "COCO instances not found"),
        (["--instances", "INSTANCES"], "needs --images"),
        (["--instances", "INSTANCES", "--images", "IMAGES", "--queries", "nope.jsonl"], "queries file not found"),
        (["--instances", "INSTANCES", "--images", "IMAGES", "--manifest", "m.jsonl"], "--manifest does not apply"),
        (["--instances", "INSTANCES", "--images", "IMAGES", "--strip", "."], "--strip does not apply"),
    ],
)
def test_cli_errors_are_one_line(coco, tmp_path, capsys, argv, message):
    argv = [
        str(coco / "instances.json") if a == "INSTANCES" else str(coco / "images") if a == "IMAGES" else a
        for a in argv
    ]
    code = main(["data", "build", "--source", "coco", *argv, "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_cli_build_opens_in_eval(coco, queried, tmp_path, capsys):
    from segzero.eval.datasets import load_eval_dataset

    argv = ["data", "build", "--source", "coco", "--instances", str(coco / "instances.json"), "--images"]
    argv += [str(coco / "images"), "--queries", str(coco / "queries.jsonl"), "--layout", "multi", "--frame", "120x80"]
    assert main([*argv, "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    assert load_built(tmp_path / "o").to_dict() == load_built(queried[0]).to_dict()  # the CLI builds the same rows
    ev = load_eval_dataset(str(tmp_path / "o"))
    empty = [s for s in ev.samples if not ev.mask(s).any()]
    assert [s.ann_id for s in empty] == ["q-none"] and len(ev) == len(GOOD)
