"""Tests of ``segzero data build --mix NAME=DIR:WEIGHT ...``: the counts follow the weights, every mixed row is its
set's row (renamed into the mix, with a ``source`` column), the sampling is seeded, repeats are marked, the eval
columns survive only when every set has them, sets that cannot be mixed are refused in one line, and the result
opens in ``segzero train``'s dataset builder and ``segzero eval``'s loader.

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_data_mix.py``.
"""

from __future__ import annotations

import json
from collections import Counter

import datasets
import numpy as np
import pytest

from segzero.cli.main import main
from segzero.data.build import BuildConfig, build
from segzero.data.export import load_built
from segzero.data.mix import MixConfig, MixPart, mix, mix_counts, parse_part
from segzero.data.synthetic import write_manifest_example, write_refer_fixture
from segzero.errors import UserError


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Built folders: ``mine`` (manifest, 6 rows) and ``coco`` (COCO queries, 3 rows), both multi at 840; ``refer``
    (refer fixture, multi, without eval columns); ``single`` (the manifest, single layout); ``small`` (frame 420)."""
    root = tmp_path_factory.mktemp("sets")
    ex = write_manifest_example(root / "my_data")
    common = {"progress": False, "layout": "multi"}
    build(BuildConfig(source="jsonl", manifest=str(ex["manifest"]), out=str(root / "mine"), **common))
    coco = {"instances": str(ex["instances"]), "images_dir": str(ex["images_dir"]), "queries": str(ex["queries"])}
    build(BuildConfig(source="coco", out=str(root / "coco"), **coco, **common))
    fx = write_refer_fixture(root / "fx", n_images=2, seed=0, broken=False)
    refer = {"refer_dir": str(fx["refer_dir"]), "images_dir": str(fx["images_dir"])}
    build(BuildConfig(source="refcocog", out=str(root / "refer"), **refer, **common))
    build(BuildConfig(source="jsonl", manifest=str(ex["manifest"]), out=str(root / "single"), progress=False))
    build(BuildConfig(source="jsonl", manifest=str(ex["manifest"]), out=str(root / "small"), frame=420, **common))
    return root


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("a=data/a:2", MixPart("a", "data/a", 2.0)),
        ("a=data/a", MixPart("a", "data/a", 1.0)),  # weight 1 by default
        ("a=data/a:0.25", MixPart("a", "data/a", 0.25)),
        ("a=c:/sets/a:3", MixPart("a", "c:/sets/a", 3.0)),  # only the last ':' separates the weight
        ("a=data:x", MixPart("a", "data:x", 1.0)),  # a ':' in the folder name, no weight
    ],
)
def test_parse_part(spec, expected):
    assert parse_part(spec) == expected


@pytest.mark.parametrize(
    "spec",
    ["data/a:2", "=data/a:2", "a=:2", "a/b=data/a:1", "a=data/a:0", "a=data/a:-1", "a=data/a:nan", "a=data/a:inf"],
)  # no name, no folder, a '/' in the name (ids are NAME/...), weights not positive and finite
def test_bad_parts_are_user_errors(spec):
    with pytest.raises(UserError, match="--mix"):
        parse_part(spec)


@pytest.mark.parametrize(
    ("sizes", "weights", "total", "expected"),
    [
        ([100, 30], [3, 1], None, [90, 30]),  # the 30-row set runs out first: N = 30 / (1/4) = 120
        ([10, 10], [1, 1], None, [10, 10]),
        ([6, 3], [2, 1], None, [6, 3]),
        ([100, 30], [1, 1], 7, [4, 3]),  # 3.5 + 3.5: the tie goes to the first set
        ([7, 7, 7], [1, 1, 1], 10, [4, 3, 3]),  # largest remainders, summing to the total
        ([5, 50], [1, 1], 40, [20, 20]),  # a total beyond the 5-row set: it repeats
        ([50, 50], [1, 3], 8, [2, 6]),
    ],
)
def test_mix_counts(sizes, weights, total, expected):
    assert mix_counts(sizes, weights, total) == expected


def _mix(sets, out, *parts, **kw):
    kw.setdefault("progress", False)
    return mix(MixConfig(parts=tuple(MixPart(n, str(sets / d), w) for n, d, w in parts), out=str(out), **kw))


def _raw(path):
    """Rows by id with images and masks as stored bytes."""
    ds = load_built(path)
    for column in ("image", "mask"):
        if column in ds.column_names:
            ds = ds.cast_column(column, datasets.Image(decode=False))
    return {r["id"]: r for r in ds}


def test_mixed_rows_are_their_sets_rows(sets, tmp_path):
    stats = _mix(sets, tmp_path / "m", ("mine", "mine", 2), ("coco", "coco", 1))
    mixed = _raw(tmp_path / "m")
    originals = {"mine": _raw(sets / "mine"), "coco": _raw(sets / "coco")}
    assert Counter(r["source"] for r in mixed.values()) == {"mine": 6, "coco": 3}  # 2:1, no row repeated
    assert stats["rows_written"] == stats["rows_planned"] == 9 and stats["layout"] == "multi"
    for rid, row in mixed.items():
        name, old = rid.split("/", 1)
        src = originals[name][old]
        assert name == row["source"]
        for column in ("problem", "solution", "img_width", "img_height", "text", "image", "mask"):
            assert row[column] == src[column], (rid, column)
        assert row["image_id"] == f"{name}/{src['image_id']}" and row["ann_id"] == rid
    assert {p["name"]: (p["rows_available"], p["rows_taken"], p["rows_repeated"]) for p in stats["mix"]} == {
        "mine": (6, 6, 0),
        "coco": (3, 3, 0),
    }
    assert json.loads((tmp_path / "m" / "stats.json").read_text()) == json.loads(json.dumps(stats))
    assert stats["mix"][0]["source"] == "jsonl" and stats["mix"][1]["source"] == "coco"


def test_seeded_order_and_repeats(sets, tmp_path):
    orders = []
    for k, seed in enumerate((0, 0, 1)):
        _mix(sets, tmp_path / f"m{k}", ("mine", "mine", 1), ("coco", "coco", 1), seed=seed)
        orders.append(load_built(tmp_path / f"m{k}")["id"])
    assert orders[0] == orders[1] and orders[0] != orders[2]  # same seed, same rows in the same order
    stats = _mix(sets, tmp_path / "big", ("mine", "mine", 1), ("coco", "coco", 1), limit=20)
    ids = load_built(tmp_path / "big")["id"]
    assert len(ids) == len(set(ids)) == 20  # a repeated row gets #k: ids stay unique
    assert sum(i.startswith("coco/") for i in ids) == 10 and sum("#3" in i for i in ids) == 1  # 3 passes + 1
    assert [p["rows_repeated"] for p in stats["mix"]] == [4, 7]


def test_mixed_folder_opens_in_train_and_eval(sets, tmp_path):
    from segzero.eval.datasets import load_eval_dataset
    from segzero.train.config import TrainConfig
    from segzero.train.data import build_train_dataset

    _mix(sets, tmp_path / "m", ("mine", "mine", 1), ("coco", "coco", 1))
    ds, bad = build_train_dataset(TrainConfig(dataset=str(tmp_path / "m"), frame=56, reward_kind="visionreasoner"))
    assert bad == [] and len(ds) == 6
    ev = load_eval_dataset(str(tmp_path / "m"))
    keys = {s.image_key for s in ev.samples}
    assert len(ev) == 6 and all(k.split("/")[0] in ("mine", "coco") for k in keys)  # images never shared across sets


def test_eval_columns_need_every_set(sets, tmp_path):
    from segzero.eval.datasets import load_eval_dataset
    from segzero.train.config import TrainConfig
    from segzero.train.data import build_train_dataset

    stats = _mix(sets, tmp_path / "m", ("mine", "mine", 1), ("refer", "refer", 1))
    assert stats["columns_left_out"] == ["text", "mask", "image_id", "ann_id"]  # the refer build has none
    assert load_built(tmp_path / "m").column_names == [*stats["columns"]]
    ds, bad = build_train_dataset(TrainConfig(dataset=str(tmp_path / "m"), frame=56, reward_kind="visionreasoner"))
    assert bad == [] and len(ds) == stats["rows_written"]
    with pytest.raises(UserError, match="lacks column"):  # as a refer build: not an evaluation set
        load_eval_dataset(str(tmp_path / "m"))


def test_the_mask_code_survives_when_every_set_has_it(sets, tmp_path):
    from segzero.rle import MASK_COLUMN, decode_mask, encode_mask

    for name in ("mine", "coco"):  # the two sets with the mask-reward column added (each row's own gt mask)
        ds = load_built(sets / name)
        codes = [encode_mask(np.asarray(m) > 0) for m in ds["mask"]]
        ds.add_column(MASK_COLUMN, codes).save_to_disk(str(tmp_path / name))
    parts = (MixPart("mine", str(tmp_path / "mine")), MixPart("coco", str(tmp_path / "coco")))
    stats = mix(MixConfig(parts=parts, out=str(tmp_path / "m"), progress=False))
    assert MASK_COLUMN in stats["columns"] and stats["columns_left_out"] == []
    for row in load_built(tmp_path / "m"):
        assert np.array_equal(decode_mask(row[MASK_COLUMN]), np.asarray(row["mask"]) > 0), row["id"]


@pytest.mark.parametrize(
    ("parts", "out", "message"),
    [
        ((("mine", "mine", 1), ("single", "single", 1)), "o", "differ in layout"),  # single and multi rows
        ((("mine", "mine", 1), ("small", "small", 1)), "o", "differ in frame"),  # 840 and 420
        ((("mine", "mine", 1),), "o", "at least two"),  # nothing to mix
        ((("a", "mine", 1), ("a", "coco", 1)), "o", "names must differ"),
        ((("mine", "mine", 1), ("gone", "nosuch", 1)), "o", "not found"),  # named by load_built
        ((("mine", "mine", 1), ("coco", "coco", 1)), "SETS/mine", "is the mixed set"),  # never write over an input
        ((("mine", "mine", 1), ("coco", "coco", 1)), "SETS", "not empty"),  # a foreign folder
    ],
)
def test_sets_that_cannot_be_mixed(sets, tmp_path, parts, out, message):
    target = sets / out[5:] if out.startswith("SETS") else tmp_path / out
    with pytest.raises(UserError, match=message):
        _mix(sets, target, *parts)
    assert not (tmp_path / "o").exists()


def test_overwrite_replaces_a_mix(sets, tmp_path):
    _mix(sets, tmp_path / "m", ("mine", "mine", 1), ("coco", "coco", 1))
    with pytest.raises(UserError, match="not empty"):
        _mix(sets, tmp_path / "m", ("mine", "mine", 1), ("coco", "coco", 1))
    cfg = MixConfig(
        parts=(MixPart("x", str(sets / "mine")), MixPart("y", str(sets / "coco"))), out=str(tmp_path / "m")
    )
    stats = mix(cfg, overwrite=True)
    assert {r.split("/")[0] for r in load_built(tmp_path / "m")["id"]} == {"x", "y"} and stats["rows_written"] == 6


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--source", "jsonl"], "either --source or --mix"),
        (["--frame", "420"], "--frame does not apply to --mix"),  # a mix re-samples rows, it never rebuilds them
        (["--layout", "multi"], "--layout does not apply to --mix"),
        (["--manifest", "m.jsonl"], "--manifest does not apply to --mix"),
        (["--mix", "bad"], "NAME=DIR:WEIGHT"),
        (["--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_cli_errors_are_one_line(sets, tmp_path, capsys, extra, message):
    argv = ["data", "build", "--mix", f"mine={sets / 'mine'}:2", "--mix", f"coco={sets / 'coco'}", *extra]
    code = main([*argv, "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_cli_mix(sets, tmp_path, capsys):
    argv = ["data", "build", "--mix", f"mine={sets / 'mine'}:2", "--mix", f"coco={sets / 'coco'}:1"]
    assert main([*argv, "--out", str(tmp_path / "o"), "--seed", "3", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0]) == {"rows_written": 9, "mix": {"mine": 6, "coco": 3}}
    stats = _mix(sets, tmp_path / "py", ("mine", "mine", 2), ("coco", "coco", 1), seed=3)
    assert load_built(tmp_path / "o")["id"] == load_built(tmp_path / "py")["id"]  # the CLI is the same mix
    assert stats["seed"] == 3
