"""Tests of ``segzero data build --source jsonl``: a manifest of drawn images and masks (PNG, id PNG, palette, colour,
compressed and uncompressed RLE, polygons, several objects, an empty target) gives exactly the boxes and points of
the masks drawn here; every bad row is counted under its reason; the built folder opens in ``segzero eval``'s loader
and ``segzero train``'s dataset builder; the CLI's errors are one line and exit 2.

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_data_manifest.py``.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from segzero.cli.main import main
from segzero.data.build import BuildConfig, build
from segzero.data.export import detect_layout, load_built
from segzero.errors import UserError

FRAME = (160, 120)  # (w, h): both images scale by an integer (2 and 4), so a nearest-resized mask is exact
SIZES = {"a.png": (80, 60), "b.png": (40, 30)}  # (w, h), not square


def _rect(image: str, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """The (H, W) bool mask of pixels x1..x2-1, y1..y2-1 of ``image``."""
    w, h = SIZES[image]
    m = np.zeros((h, w), bool)
    m[y1:y2, x1:x2] = True
    return m


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE counts, written independently: column-major runs, starting with a run of zeros."""
    flat = mask.flatten(order="F").astype(int)
    runs, value, n = [], 0, 0
    for v in flat:
        if v == value:
            n += 1
        else:
            runs.append(n)
            value, n = v, 1
    return [*runs, n]


# the drawn objects (oracle masks) and how each is written on disk
A_BOX = _rect("a.png", 20, 10, 50, 30)
A_ID1, A_ID2 = _rect("a.png", 5, 5, 15, 15), _rect("a.png", 60, 40, 75, 55)
A_PAL = _rect("a.png", 30, 35, 45, 58)
A_RED = _rect("a.png", 50, 2, 78, 9)
B_RLE = _rect("b.png", 5, 20, 25, 29)
B_POLY = _rect("b.png", 28, 4, 38, 16)  # the polygon [28,4, 38,4, 38,16, 28,16]: pycocotools covers x 28..37, y 4..15
B_SMALL = _rect("b.png", 2, 2, 9, 9)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Images, masks and every manifest row form in one folder (paths in the manifest relative to it)."""
    root = tmp_path_factory.mktemp("manifest")
    rng = np.random.default_rng(0)
    for name, (w, h) in SIZES.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / name)
    (root / "masks").mkdir()
    Image.fromarray(A_BOX.astype(np.uint8) * 255).save(root / "masks" / "box.png")
    Image.fromarray(A_ID1.astype(np.uint8) + 2 * A_ID2.astype(np.uint8)).save(root / "masks" / "ids.png")
    pal = Image.frombytes("P", SIZES["a.png"], (A_PAL.astype(np.uint8) * 3).tobytes())  # palette index 3 inside
    pal.putpalette([0, 0, 0] * 3 + [255, 0, 0] + [0, 0, 0] * 252)
    pal.save(root / "masks" / "palette.png")
    rgb = np.zeros((*A_RED.shape, 3), np.uint8)
    rgb[A_RED] = (255, 0, 0)
    rgb[A_BOX] = (0, 0, 255)
    Image.fromarray(rgb).save(root / "masks" / "colours.png")
    Image.fromarray(B_SMALL.astype(np.uint8)).save(root / "masks" / "b_small.png")  # values 0/1
    Image.fromarray(np.zeros(A_BOX.shape, np.uint8)).save(root / "masks" / "empty.png")
    (root / "masks" / "garbage.png").write_bytes(b"not a png")
    (root / "broken.png").write_bytes(b"not a png either")
    return root


def _rle(mask: np.ndarray) -> dict:
    code = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in code["size"]], "counts": code["counts"].decode("ascii")}


# good rows: (row, [oracle mask of each object, in order]); every one a different form
GOOD = [
    ({"image": "a.png", "query": "The box?", "mask": "masks/box.png"}, [A_BOX]),  # PNG, nonzero = object
    ({"image": "a.png", "query": "id two", "mask": "masks/ids.png", "mask_value": 2}, [A_ID2]),  # id mask
    ({"image": "a.png", "query": "palette", "mask": "masks/palette.png", "mask_value": 3}, [A_PAL]),  # P index
    ({"image": "a.png", "query": "red", "mask": "masks/colours.png", "mask_value": [255, 0, 0]}, [A_RED]),  # colour
    ({"image": "a.png", "query": "any colour", "mask": "masks/colours.png"}, [A_RED | A_BOX]),  # RGB nonzero
    ({"image": "b.png", "query": "compressed", "rle": _rle(B_RLE)}, [B_RLE]),  # compressed RLE
    ({"image": "b.png", "query": "raw", "rle": {"size": [30, 40], "counts": _uncompressed_counts(B_RLE)}}, [B_RLE]),
    ({"image": "b.png", "query": "flat", "polygon": [28, 4, 38, 4, 38, 16, 28, 16]}, [B_POLY]),  # one flat list
    ({"image": "b.png", "query": "pairs", "polygon": [[28, 4], [38, 4], [38, 16], [28, 16]]}, [B_POLY]),  # points
    ({"image": "b.png", "query": "lists", "polygon": [[28, 4, 38, 4, 38, 16, 28, 16]]}, [B_POLY]),  # COCO's form
    ({"image": "b.png", "query": "01 png", "mask": "masks/b_small.png"}, [B_SMALL]),  # a 0/1 PNG
    (  # two objects, two forms: each keeps its own box and point
        {"image": "b.png", "query": "both", "objects": [{"rle": _rle(B_RLE)}, {"polygon": [[28, 4, 38, 4, 38, 16]]}]},
        [B_RLE, None],
    ),
    ({"image": "a.png", "query": "nothing here", "objects": [], "id": "none"}, []),  # an empty target
    ({"image": "a.png", "query": "extra key", "mask": "masks/box.png", "note": "kept out"}, [A_BOX]),  # ignored key
]
# the triangle of the two-object row, rasterised by pycocotools itself (only its box is compared)
TRIANGLE = mask_utils.decode(mask_utils.frPyObjects([[28, 4, 38, 4, 38, 16]], 30, 40)).squeeze(-1).astype(bool)
GOOD[11] = (GOOD[11][0], [B_RLE, TRIANGLE])

# bad rows: (manifest line, the reason it is counted under)
BAD = [
    ("{not json", "bad_json"),  # unreadable line
    (json.dumps(["a.png", "q"]), "bad_json"),  # JSON, but not an object
    (json.dumps({"query": "q", "mask": "masks/box.png"}), "no_image"),  # no image field
    (json.dumps({"image": "a.png", "query": "  ", "mask": "masks/box.png"}), "no_query"),  # blank query
    (json.dumps({"image": "a.png", "mask": "masks/box.png"}), "no_query"),  # no query field
    (json.dumps({"image": "a.png", "query": "q"}), "no_target_field"),  # no mask form at all
    (json.dumps({"image": "a.png", "query": "q", "mask": "masks/box.png", "polygon": [1, 1, 5, 1, 5, 5]}),
     "several_target_fields"),  # two forms for one object
    (json.dumps({"image": "a.png", "query": "q", "objects": [], "mask": "masks/box.png"}), "several_target_fields"),
    (json.dumps({"image": "a.png", "query": "q", "objects": "masks/box.png"}), "bad_objects"),  # not a list
    (json.dumps({"image": "a.png", "query": "q", "objects": [{}]}), "no_target_field"),  # an object without a form
    (json.dumps({"image": "a.png", "query": "q", "mask": 3}), "bad_mask_field"),  # not a path
    (json.dumps({"image": "a.png", "query": "q", "mask": "masks/ids.png", "mask_value": -1}), "bad_mask_value"),
    (json.dumps({"image": "a.png", "query": "q", "polygon": [1, 1, 5, 5, 1, 5], "mask_value": 1}), "bad_mask_value"),
    (json.dumps({"image": "a.png", "query": "q", "mask": "masks/colours.png", "mask_value": 1}), "bad_mask_value"),
    (json.dumps({"image": "a.png", "query": "q", "rle": {"counts": "abc"}}), "bad_rle"),  # no size
    (json.dumps({"image": "a.png", "query": "q", "polygon": "0 0 5 5"}), "bad_polygon"),  # not numbers
    (json.dumps({"image": "a.png", "query": "q", "polygon": [[1, "a", 3]]}), "bad_polygon"),
    (json.dumps({"image": "a.png", "qurey": "q", "mask": "masks/box.png"}), "misspelt_key"),  # a typo of query
    (json.dumps({"image": "a.png", "query": "q", "polygons": [[1, 1, 9, 1, 9, 9]]}), "misspelt_key"),
    (json.dumps({"image": "a.png", "query": "q", "objects": [{"masks": "masks/box.png"}]}), "misspelt_key"),
    (json.dumps({"image": "a.png", "query": "q", "mask": "masks/box.png", "id": "none"}), "duplicate_id"),
    (json.dumps({"image": "gone.png", "query": "q", "mask": "masks/box.png"}), "missing_image"),  # no such file
    (json.dumps({"image": "broken.png", "query": "q", "mask": "masks/box.png"}), "unreadable_image"),
    (json.dumps({"image": "a.png", "query": "q", "mask": "masks/gone.png"}), "missing_mask"),
    (json.dumps({"image": "a.png", "query": "q", "mask": "masks/garbage.png"}), "unreadable_mask"),
    (json.dumps({"image": "a.png", "query": "q", "mask": "masks/b_small.png"}), "mask_size_mismatch"),  # b's mask
    (json.dumps({"image": "a.png", "query": "q", "rle": _rle(B_RLE)}), "rle_size_mismatch"),  # b's RLE on a
    (json.dumps({"image": "a.png", "query": "q", "polygon": [[1, 1, 9, 9]]}), "polygon_too_few_points"),
    (json.dumps({"image": "a.png", "query": "q", "polygon": [200, 200, 300, 200, 300, 300]}), "empty_mask"),  # off
    (json.dumps({"image": "a.png", "query": "q", "mask": "masks/empty.png"}), "empty_mask"),  # no pixel set
    (json.dumps({"image": "a.png", "query": "q", "mask": "masks/ids.png", "mask_value": 7}), "empty_mask"),
    (json.dumps({"image": "a.png", "query": "q", "objects": [{"mask": "masks/box.png"}, {"mask": "masks/gone.png"}]}),
     "missing_mask"),  # one bad object drops its whole row
]  # fmt: skip


def _write_manifest(root: Path, name: str, lines: list[str]) -> Path:
    path = root / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def manifest(folder) -> Path:
    rows = [{"id": f"r{i}", **row} if "id" not in row else row for i, (row, _) in enumerate(GOOD)]
    return _write_manifest(folder, "manifest.jsonl", [json.dumps(r) for r in rows] + [""] + [line for line, _ in BAD])


def _cfg(manifest: Path, out: Path, **kw) -> BuildConfig:
    return BuildConfig(source="jsonl", manifest=str(manifest), out=str(out), frame=FRAME, progress=False, **kw)


@pytest.fixture(scope="module")
def multi(manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "multi"
    return out, build(_cfg(manifest, out, layout="multi", shard_size=1))


def _scaled_box(mask: np.ndarray, image: str) -> list[int]:
    """The mask's pixel extent, scaled into FRAME (integer scales: no rounding question)."""
    (w, h), (fw, fh) = SIZES[image], FRAME
    ys, xs = np.nonzero(mask)
    return [xs.min() * fw // w, ys.min() * fh // h, xs.max() * fw // w, ys.max() * fh // h]


def _on_mask(mask: np.ndarray, image: str, point) -> bool:
    """Whether the frame point comes from a mask pixel (the pixel it scales back to, integer scale)."""
    (w, h), (fw, fh) = SIZES[image], FRAME
    x, y = point
    return bool(mask[y * h // fh, x * w // fw])


def _upscaled(mask: np.ndarray, image: str) -> np.ndarray:
    """Nearest-neighbour resize to FRAME of an integer-scaled mask, as a pure repeat."""
    (w, h), (fw, fh) = SIZES[image], FRAME
    return mask.repeat(fh // h, axis=0).repeat(fw // w, axis=1)


def test_every_good_row_matches_its_drawn_mask(multi):
    out, stats = multi
    rows = {r["id"]: r for r in load_built(out)}
    assert detect_layout(load_built(out)) == "multi" and stats["frame"] == list(FRAME)
    for i, (row, masks) in enumerate(GOOD):
        got = rows[row.get("id", f"r{i}")]
        items = json.loads(got["solution"])
        assert len(items) == len(masks), row
        for item, mask in zip(items, masks, strict=True):
            assert item["bbox_2d"] == _scaled_box(mask, row["image"]), row
            assert _on_mask(mask, row["image"], item["point_2d"]), row
        assert (got["img_width"], got["img_height"]) == SIZES[row["image"]] and got["image"].size == FRAME
        assert got["problem"] == row["query"].strip()  # kept as written: no lower-casing, no punctuation stripped
        union = np.logical_or.reduce(masks) if masks else np.zeros(SIZES[row["image"]][::-1], bool)
        assert np.array_equal(np.asarray(got["mask"]) > 0, _upscaled(union, row["image"])), row  # eval column
        assert (got["text"], got["image_id"], got["ann_id"]) == (got["problem"], row["image"], got["id"])


def test_bad_rows_are_counted_by_reason(multi):
    out, stats = multi
    assert stats["dropped_rows"] == dict(Counter(reason for _, reason in BAD))
    assert stats["rows_planned"] == len(GOOD) + len(BAD) == stats["rows_written"] + sum(stats["dropped_rows"].values())
    assert stats["rows_written"] == len(load_built(out)) == len(GOOD)
    assert set(stats["examples"]) >= {reason for _, reason in BAD}
    assert stats["warnings"] == {"unknown_key": 1}  # the "note" key, ignored but reported
    assert "did you mean 'query'" in " ".join(stats["examples"]["misspelt_key"])
    assert json.loads((out / "stats.json").read_text()) == json.loads(json.dumps(stats))
    assert stats["source"] == "jsonl" and not (out / "_work").exists()


def test_single_layout_keeps_one_object_rows(manifest, tmp_path):
    from segzero.parsing import parse_solution

    stats = build(_cfg(manifest, tmp_path / "single"))
    rows = {r["id"]: r for r in load_built(tmp_path / "single")}
    for i, (row, masks) in enumerate(GOOD):
        rid = row.get("id", f"r{i}")
        if len(masks) != 1:  # counted, not written: the single layout holds exactly one object per row
            assert rid not in rows
            continue
        (obj,) = parse_solution(rows[rid]["solution"])
        assert list(obj.box) == _scaled_box(masks[0], row["image"])
        assert len(obj.points) == 2 and all(_on_mask(masks[0], row["image"], p) for p in obj.points)
    # the bad rows keep their reasons, except the two-object one: its object count is checked first (plan time)
    expected = Counter(reason for _, reason in BAD[:-1]) + Counter(
        {"no_target_single_layout": 1, "several_objects_single_layout": 2}
    )
    assert stats["dropped_rows"] == dict(expected)
    assert stats["rows_planned"] == stats["rows_written"] + sum(stats["dropped_rows"].values())


@pytest.mark.parametrize(
    ("split", "expected"),
    [
        ("train", {"t", "any"}),  # the train rows and the untagged one
        ("val", {"v", "any"}),  # an untagged row belongs to every split built
        ("all", {"t", "v", "any"}),  # every row
    ],
)
def test_split_field(folder, tmp_path, split, expected):
    rows = [
        {"id": "t", "image": "a.png", "query": "q", "mask": "masks/box.png", "split": "train"},
        {"id": "v", "image": "a.png", "query": "q", "mask": "masks/box.png", "split": "val"},
        {"id": "any", "image": "a.png", "query": "q", "mask": "masks/box.png"},
    ]
    path = _write_manifest(folder, f"split_{split}.jsonl", [json.dumps(r) for r in rows])
    stats = build(_cfg(path, tmp_path / "o", split=split))
    assert set(load_built(tmp_path / "o", split=split)["id"]) == expected
    assert sum(stats["rows_other_splits"].values()) == 3 - len(expected)


def test_a_split_without_rows_is_a_user_error(folder, tmp_path):
    path = _write_manifest(folder, "only_val.jsonl", [json.dumps({"image": "a.png", "query": "q", "split": "val"})])
    with pytest.raises(UserError, match="no rows in split 'train'.*'val': 1"):
        build(_cfg(path, tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_limit_is_a_seeded_sample(manifest, tmp_path):
    ids = []
    for k, seed in enumerate((1, 1, 2)):
        stats = build(_cfg(manifest, tmp_path / f"o{k}", layout="multi", limit=20, seed=seed))
        assert stats["rows_planned"] == 20 == stats["rows_written"] + sum(stats["dropped_rows"].values())
        ids.append(sorted(load_built(tmp_path / f"o{k}")["id"]))
    assert ids[0] == ids[1] and ids[0] != ids[2]  # same seed same sample, another seed another


def test_resume_reuses_finished_shards(manifest, multi, tmp_path):
    out = tmp_path / "out"
    cfg = _cfg(manifest, out, layout="multi", shard_size=1, keep_work=True)
    first = build(cfg)
    for name in ("dataset_dict.json", "stats.json", "train", "parquet"):  # killed before the final write
        shutil.rmtree(out / name) if (out / name).is_dir() else (out / name).unlink()
    (out / "_work" / "shard-00001.json").unlink()
    second = build(cfg)
    assert second["shards_resumed"] == first["shards"] - 1
    assert load_built(out).to_dict() == load_built(multi[0]).to_dict()  # as an uninterrupted build


def test_an_edited_manifest_never_resumes_old_shards(folder, tmp_path):
    from segzero.parsing import parse_solution

    path = folder / "edited.jsonl"
    row = {"id": "x", "image": "a.png", "query": "q", "mask": "masks/box.png"}
    path.write_text(json.dumps(row) + "\n")
    build(_cfg(path, tmp_path / "o", keep_work=True))
    path.write_text(json.dumps({**row, "mask": "masks/ids.png", "mask_value": 1}) + "\n")  # same id, another mask
    with pytest.raises(UserError, match="other options or annotations"):
        build(_cfg(path, tmp_path / "o", keep_work=True))
    build(_cfg(path, tmp_path / "o"), overwrite=True)
    (obj,) = parse_solution(load_built(tmp_path / "o")["solution"][0])
    assert list(obj.box) == _scaled_box(A_ID1, "a.png")  # the edited row, not the old shard


def test_built_folder_opens_in_eval_and_train(multi, tmp_path):
    from segzero.eval.datasets import load_eval_dataset
    from segzero.train.config import TrainConfig
    from segzero.train.data import build_train_dataset

    out, stats = multi
    ev = load_eval_dataset(str(out))
    rows = {r["id"]: r for r in load_built(out)}
    assert len(ev) == stats["rows_written"]
    for info in ev.samples:
        row = rows[info.ann_id]
        assert info.query == row["problem"] and info.image_key == row["image_id"]
        assert ev.image(info).size == FRAME
        assert np.array_equal(ev.mask(info), (np.asarray(row["mask"]) > 0).astype(np.uint8))
    ds, bad = build_train_dataset(TrainConfig(dataset=str(out), frame=56, reward_kind="visionreasoner"))
    assert bad == [] and len(ds) == stats["rows_written"]
    assert json.loads(dict(zip(ds["id"], ds["solution"], strict=True))["none"]) == []  # the "nothing here" row


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["data", "build", *argv, "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_default_build_is_read_by_eval_and_train(tmp_path, capsys):
    # the interface outside checks use: segzero data build --source jsonl --manifest F --out D (single layout)
    from segzero.data.synthetic import write_manifest_example
    from segzero.eval.datasets import load_eval_dataset
    from segzero.train.config import TrainConfig
    from segzero.train.data import build_train_dataset

    ex = write_manifest_example(tmp_path / "my_data")
    out = tmp_path / "built"
    code, printed, _ = _run(capsys, "--source", "jsonl", "--manifest", str(ex["manifest"]), "--out", str(out))
    assert code == 0 and "rows_written" in printed
    one_object = [k for k, m in ex["masks"].items() if k != "cars" and m.any()]
    ev = load_eval_dataset(str(out))
    assert sorted(s.ann_id for s in ev.samples) == sorted(one_object)
    for info in ev.samples:  # the stored gt mask is the drawn one at the frame (840 / 96 and 840 / 64, nearest)
        want = np.asarray(Image.fromarray(ex["masks"][info.ann_id]).resize((840, 840), Image.NEAREST))
        assert (ev.mask(info) != want).mean() < 0.01
    ds, bad = build_train_dataset(TrainConfig(dataset=str(out), frame=56))
    assert bad == [] and sorted(ds["id"]) == sorted(one_object)
    assert all(re.fullmatch(r"<box>\(.*\)</box><points>\(.*\),\(.*\)</points>", s) for s in ds["solution"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "jsonl"], "needs --manifest"),  # the manifest is the input
        (["--source", "jsonl", "--manifest", "nope.jsonl"], "manifest not found"),  # named
        (["--source", "jsonl", "--manifest", "m.jsonl", "--refer-dir", "d"], "--refer-dir does not apply"),
        (["--source", "jsonl", "--manifest", "m.jsonl", "--images", "d"], "--images does not apply"),
        (["--source", "refcocog", "--images", "d", "--manifest", "m.jsonl"], "--manifest does not apply"),
        (["--source", "refcocog", "--images", "d"], "needs --refer-dir"),
        ([], "give --source"),  # neither a source nor a mix
        (["--source", "jsonl", "--manifest", "m.jsonl", "--limit", "0"], "--limit"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    code, _, err = _run(capsys, *argv, "--out", str(tmp_path / "o"))
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_eval_columns_on_a_refer_build(tmp_path):
    # any source can write the eval columns; a refer build does when asked (its released layout has six columns)
    from segzero.data.synthetic import write_refer_fixture
    from segzero.eval.datasets import load_eval_dataset

    fx = write_refer_fixture(tmp_path / "fx", n_images=2, seed=0, broken=False)
    refer = {"source": "refcocog", "refer_dir": str(fx["refer_dir"]), "images_dir": str(fx["images_dir"])}
    build(BuildConfig(**refer, out=str(tmp_path / "plain"), progress=False))
    assert load_built(tmp_path / "plain").column_names == [
        "id",
        "problem",
        "solution",
        "image",
        "img_height",
        "img_width",
    ]
    build(BuildConfig(**refer, out=str(tmp_path / "o"), eval_columns=True, frame=840, progress=False))
    ev = load_eval_dataset(str(tmp_path / "o"))
    refs = {r["ref_id"]: r for r in fx["refs"]}
    for info in ev.samples:  # ids refcocog-umd-<ref>-<sent>: the mask is that ref's drawn mask at the frame
        mask = fx["masks"][refs[int(info.ann_id.split("-")[2])]["ann_id"]]
        want = np.asarray(Image.fromarray(mask).resize((840, 840), Image.NEAREST))
        assert (ev.mask(info) != want).mean() < 0.01, info.id
