"""Tests of ``segzero data build`` on a synthetic refer-style fixture: exact boxes, points on the mask,
frame scaling, drop accounting, resume, sampling, the multi-object layout and the CLI.

Run: ``pytest tests/test_data_build.py -q``.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from segzero.cli.main import main
from segzero.data.build import BuildConfig, build
from segzero.data.export import detect_layout, load_built
from segzero.data.synthetic import write_refer_fixture
from segzero.errors import UserError

COLUMNS = ["id", "problem", "solution", "image", "img_height", "img_width"]


def _round(v: float) -> int:
    """Round half up: the model-frame convention of segzero.geometry.to_frame."""
    return int(np.floor(v + 0.5))


def _parse(solution: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Independent reader of ``<box>(x1,y1),(x2,y2)</box><points>(x1,y1),(x2,y2)</points>``."""
    import re

    nums = [int(v) for v in re.findall(r"-?\d+", solution)]
    assert solution.startswith("<box>(") and "</box><points>(" in solution and solution.endswith(")</points>")
    return nums[:4], [(nums[4], nums[5]), (nums[6], nums[7])]


def _maps_from_mask(mask: np.ndarray, point: tuple[int, int], sx: float, sy: float) -> bool:
    """True when some mask pixel (x, y) scales to ``point`` in the frame (the point lies on the mask)."""
    xs = [x for x in range(mask.shape[1]) if _round(x * sx) == point[0]]
    ys = [y for y in range(mask.shape[0]) if _round(y * sy) == point[1]]
    return bool(mask[np.ix_(ys, xs)].any())


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return write_refer_fixture(tmp_path_factory.mktemp("fx"), n_images=4, seed=0)


def _cfg(fx, out: Path, **kw) -> BuildConfig:
    kw.setdefault("progress", False)
    return BuildConfig(
        source="refcocog", refer_dir=str(fx["refer_dir"]), images_dir=str(fx["images_dir"]), out=str(out), **kw
    )


@pytest.fixture(scope="module")
def built(fx, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "out"
    stats = build(_cfg(fx, out, shard_size=2))
    return out, stats


def _ann_of(fx, row_id: str) -> int:
    ref_id = int(row_id.split("-")[2])
    return next(r["ann_id"] for r in fx["refs"] if r["ref_id"] == ref_id)


@pytest.mark.parametrize("frame", [840, (640, 480)])  # square default and a (w, h) frame
def test_boxes_exact_and_points_on_mask(fx, tmp_path, frame):
    out = tmp_path / "out"
    stats = build(_cfg(fx, out, frame=frame, shard_size=2))
    dd = datasets.load_from_disk(str(out))
    assert isinstance(dd, datasets.DatasetDict) and list(dd) == ["train"]
    ds = dd["train"]
    assert ds.column_names == COLUMNS
    assert len(ds) == fx["good_rows"]["train"] == stats["rows_written"]
    fw, fh = (frame, frame) if isinstance(frame, int) else frame
    assert stats["frame"] == [fw, fh]
    for row in ds:
        mask = fx["masks"][_ann_of(fx, row["id"])]
        h, w = mask.shape
        assert (row["img_width"], row["img_height"]) == (w, h)
        assert row["image"].size == (fw, fh)
        sx, sy = fw / w, fh / h
        ys, xs = np.nonzero(mask)
        box, points = _parse(row["solution"])
        expected = [_round(xs.min() * sx), _round(ys.min() * sy), _round(xs.max() * sx), _round(ys.max() * sy)]
        assert box == expected, row["id"]
        for p in points:
            assert box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]
            assert _maps_from_mask(mask, p, sx, sy), (row["id"], p)
        assert row["problem"] == row["problem"].lower() and not row["problem"].endswith(".")


def test_stats_account_for_every_row(built, fx):
    out, stats = built
    on_disk = json.loads((out / "stats.json").read_text())
    assert on_disk == json.loads(json.dumps(stats))
    assert stats["dropped_rows"] == fx["broken"]
    assert stats["rows_planned"] == stats["rows_written"] + sum(stats["dropped_rows"].values())
    assert stats["warnings"] == {"polygon_skipped_too_few_points": 4}  # one 2-point polygon per image, all train
    assert sum(stats["histograms"]["box_width"]) == stats["rows_written"]  # one object per single-layout row
    assert sum(stats["histograms"]["point_x"]) == 2 * stats["rows_written"]
    assert set(stats["examples"]) >= set(fx["broken"])
    assert not (out / "_work").exists()
    assert len(datasets.Dataset.from_parquet(str(out / "parquet" / "train.parquet"))) == stats["rows_written"]


def test_solutions_parse_with_core_parser(built):
    parsing = pytest.importorskip("segzero.parsing")
    ds = load_built(built[0])
    for row in ds:
        (obj,) = parsing.parse_solution(row["solution"])
        box, points = _parse(row["solution"])
        assert list(obj.box) == box and [tuple(p) for p in obj.points] == points


def test_resume_reuses_finished_shards(fx, tmp_path, built):
    out = tmp_path / "out"
    cfg = _cfg(fx, out, shard_size=1, keep_work=True)
    first = build(cfg)
    # a killed build: some shards finished, no final dataset yet
    for name in ("dataset_dict.json", "stats.json", "train", "parquet"):
        p = out / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    for i in (1, 3):
        (out / "_work" / f"shard-{i:05d}.json").unlink()
    second = build(cfg)
    assert second["shards"] == first["shards"] == 5
    assert second["shards_resumed"] == 3
    assert load_built(out).to_dict() == load_built(built[0]).to_dict()  # same rows as an uninterrupted build
    assert {k: v for k, v in second.items() if k != "shards_resumed"} == {
        k: v for k, v in first.items() if k != "shards_resumed"
    }


def test_out_folder_guards(fx, tmp_path):
    out = tmp_path / "out"
    build(_cfg(fx, out, keep_work=True, shard_size=2))
    with pytest.raises(UserError, match="other options"):  # unfinished/kept work of another configuration
        build(_cfg(fx, out, frame=420))
    other = tmp_path / "other"
    other.mkdir()
    (other / "something.txt").write_text("x")
    with pytest.raises(UserError, match="not empty"):  # never write into a foreign folder
        build(_cfg(fx, other))
    stats = build(_cfg(fx, out, frame=420), overwrite=True)  # --overwrite replaces the build
    assert stats["frame"] == [420, 420] and stats["shards_resumed"] == 0


def test_limit_is_a_seeded_sample(fx, tmp_path):
    ids = []
    for k, seed in enumerate((3, 3, 4)):
        stats = build(_cfg(fx, tmp_path / f"o{k}", limit=6, seed=seed))
        assert stats["rows_planned"] == 6
        assert stats["rows_written"] + sum(stats["dropped_rows"].values()) == 6
        ids.append(sorted(load_built(tmp_path / f"o{k}")["id"]))
    assert ids[0] == ids[1]  # same seed, same sample
    assert ids[0] != ids[2]  # another seed, another sample


def test_workers_give_the_same_dataset(fx, tmp_path, built):
    build(_cfg(fx, tmp_path / "par", workers=2, shard_size=1))
    assert load_built(tmp_path / "par").to_dict() == load_built(built[0]).to_dict()


def test_multi_layout(fx, tmp_path):
    out = tmp_path / "multi"
    stats = build(_cfg(fx, out, layout="multi", seed=1, max_objects=3))
    ds = load_built(out)
    assert detect_layout(ds) == "multi" and ds.column_names == COLUMNS
    assert stats["rows_planned"] == stats["rows_written"] + sum(stats["dropped_rows"].values())
    assert stats["rows_written"] >= 3
    for row in ds:
        items = json.loads(row["solution"])
        refs = [int(part.split(".")[0]) for part in row["id"].split("-")[-1].split("+")]
        assert len(items) == len(refs) == row["problem"].count("' and '") + 1  # 'a' and 'b', as the reference
        assert row["problem"].startswith("'") and row["problem"].endswith("'")
        for item, ref_id in zip(items, refs, strict=True):
            ann = next(r["ann_id"] for r in fx["refs"] if r["ref_id"] == ref_id)
            mask = fx["masks"][ann]
            sx, sy = 840 / mask.shape[1], 840 / mask.shape[0]
            ys, xs = np.nonzero(mask)
            assert item["bbox_2d"] == [
                _round(xs.min() * sx),
                _round(ys.min() * sy),
                _round(xs.max() * sx),
                _round(ys.max() * sy),
            ]
            assert _maps_from_mask(mask, tuple(item["point_2d"]), sx, sy)


def _cli_build(refer_dir, images_dir, out, *extra) -> int:
    """``segzero data build --source refcocog`` through the CLI entry point; returns its exit code."""
    args = ["data", "build", "--source", "refcocog", "--refer-dir", str(refer_dir), "--images", str(images_dir)]
    return main([*args, "--out", str(out), *extra, "--no-progress"])


def test_cli_build_and_errors(fx, tmp_path, capsys, built):
    out = tmp_path / "cli"
    assert _cli_build(fx["refer_dir"], fx["images_dir"], out) == 0
    assert load_built(out).to_dict() == load_built(built[0]).to_dict()
    assert "rows_written" in capsys.readouterr().out
    assert _cli_build(tmp_path, fx["images_dir"], tmp_path / "x") == 2
    assert "refs(umd).p" in capsys.readouterr().err  # the missing file is named
    assert _cli_build(fx["refer_dir"], fx["images_dir"], tmp_path / "y", "--split", "nosuch") == 2


def test_bad_images_are_counted_by_reason(tmp_path):
    info = write_refer_fixture(tmp_path / "fx", n_images=3, seed=7, broken=False)

    def train_rows(image_id):
        return sum(len(r["sentences"]) for r in info["refs"] if r["image_id"] == image_id and r["split"] == "train")

    images = info["images_dir"]
    (images / "COCO_train2014_000000001000.jpg").write_bytes(b"not a jpeg")  # unreadable file
    w, h = info["sizes"][1001]
    Image.new("RGB", (w + 1, h)).save(images / "COCO_train2014_000000001001.jpg")  # not the annotated size
    sub = images / "train2014"  # COCO layout with a split folder: found through the fallback
    sub.mkdir()
    (images / "COCO_train2014_000000001002.jpg").rename(sub / "COCO_train2014_000000001002.jpg")
    stats = build(
        BuildConfig(
            source="refcocog",
            refer_dir=str(info["refer_dir"]),
            images_dir=str(images),
            out=str(tmp_path / "out"),
            progress=False,
        )
    )
    assert stats["dropped_rows"] == {"unreadable_image": train_rows(1000), "image_size_mismatch": train_rows(1001)}
    assert stats["rows_written"] == train_rows(1002)


def test_refs_without_sentences_and_sizes_missing_from_instances(tmp_path):
    info = write_refer_fixture(tmp_path / "fx", n_images=1, seed=8, broken=False)
    refs_path = info["refer_dir"] / "refs(umd).p"
    refs = pickle.loads(refs_path.read_bytes())
    refs[0]["sentences"] = []  # an object nobody described: counted, gives no row
    refs_path.write_bytes(pickle.dumps(refs))
    inst_path = info["refer_dir"] / "instances.json"
    inst = json.loads(inst_path.read_text())
    for im in inst["images"]:  # sizes absent: taken from the image files
        del im["width"], im["height"]
    inst_path.write_text(json.dumps(inst))
    stats = build(
        BuildConfig(
            source="refcocog",
            refer_dir=str(info["refer_dir"]),
            images_dir=str(info["images_dir"]),
            out=str(tmp_path / "out"),
            progress=False,
        )
    )
    assert refs[0]["split"] == "train"  # the fixture's first ref (ann 1) is a train ref with two sentences
    assert stats["dropped_objects"] == {"no_sentences": 1}
    ds = load_built(tmp_path / "out")
    assert set(zip(ds["img_width"], ds["img_height"], strict=True)) == {info["sizes"][1000]}
    assert stats["rows_written"] == info["good_rows"]["train"] - 2


@pytest.mark.slow
def test_killed_build_continues(tmp_path):
    # a real kill (SIGKILL mid-build): finished shards survive and the rerun computes only the rest
    import os
    import signal
    import subprocess
    import sys
    import time

    info = write_refer_fixture(tmp_path / "fx", n_images=16, seed=9, broken=False, min_size=500, max_size=640)
    out = tmp_path / "out"
    args = [
        "--source",
        "refcocog",
        "--refer-dir",
        str(info["refer_dir"]),
        "--images",
        str(info["images_dir"]),
        "--out",
        str(out),
        "--shard-size",
        "1",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "segzero.cli.main", "data", "build", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (out / "_work" / "shard-00002.json").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    if proc.poll() is not None:
        pytest.skip("the build finished before it could be killed")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "stats.json").exists()  # it really died mid-build
    stats = build(
        BuildConfig(
            source="refcocog",
            refer_dir=str(info["refer_dir"]),
            images_dir=str(info["images_dir"]),
            out=str(out),
            shard_size=1,
            progress=False,
        )
    )
    assert 3 <= stats["shards_resumed"] < stats["shards"] == 16
    expected = {
        f"refcocog-umd-{r['ref_id']}-{s['sent_id']}"
        for r in info["refs"]
        if r["split"] == "train"
        for s in r["sentences"]
    }
    ids = load_built(out)["id"]
    assert len(ids) == len(expected) and set(ids) == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limit": 0}, "--limit"),  # an empty sample is a mistake, not a build
        ({"layout": "multi", "min_objects": 3, "max_objects": 2}, "--min-objects"),  # impossible grouping
        ({"frame": 0}, "--frame"),  # no model frame
        ({"sam_filter": "x", "min_iou": 1.5}, "--min-iou"),  # IoU threshold outside [0, 1]
        ({"images_dir": "/nonexistent/images"}, "images folder not found"),  # named
        ({"split": "nosuch"}, "no refs in split"),  # names the splits that exist
    ],
)
def test_bad_options_are_user_errors(fx, tmp_path, options, message):
    cfg = _cfg(fx, tmp_path / "out", **{k: v for k, v in options.items() if k != "images_dir"})
    if "images_dir" in options:
        cfg = dataclasses.replace(cfg, images_dir=options["images_dir"])
    with pytest.raises(UserError, match=message):
        build(cfg)
    assert not (tmp_path / "out").exists()  # nothing written before the options are checked


@pytest.mark.parametrize(
    ("raw", "sent", "options", "expected"),
    [
        # the reference: raw.strip().strip(".?!").lower()
        ("  The man on the LEFT?  ", "the man on the left", {}, "the man on the left"),
        ("...what is it?!", "what is it", {}, "what is it"),  # both ends, several characters
        ("a cat . ", "a cat", {}, "a cat "),  # the inner space stays, as in the reference
        ("Dog.", "dog", {"strip": "."}, "dog"),
        ("Dog?", "dog", {"strip": "."}, "dog?"),  # only the characters asked for
        ("Dog?", "dog", {"text": "sent"}, "dog"),  # refer's tokenised sentence
    ],
)
def test_expression_text_options(raw, sent, options, expected):
    from segzero.data.build import _texts
    from segzero.data.refer import Ref

    ref = Ref(1, 2, 3, "train", 1, sentences=(sent,), raw=(raw,), sent_ids=(7,), file_name="a.jpg", width=9, height=9)
    opts = {"text": "raw", "strip": ".?!", **options}
    assert _texts(ref, opts["text"], opts["strip"]) == [(7, expected)]


@pytest.mark.parametrize("multimask", [False, True])  # False: SAM2's single mask, as the reference's filter
def test_sam_filter_asks_for_the_chosen_output(multimask):
    from segzero.answer import SegObject
    from segzero.data.samples import _sam_iou

    class Recorder:
        def predict(self, **kwargs):
            self.kwargs = kwargs
            return type("P", (), {"mask": np.ones((4, 4), bool)})()

    seg = Recorder()
    iou = _sam_iou(seg, SegObject((0, 0, 3, 3), ((1, 1), (2, 2))), np.ones((4, 4), bool), multimask=multimask)
    assert seg.kwargs["multimask"] is multimask and iou == 1.0
    assert seg.kwargs["points"].tolist() == [[[1.0, 1.0]]]  # the gt box and point 1 only


def test_grefcoco_rows_keep_several_objects_and_none(tmp_path):
    from segzero.data.synthetic import write_grefcoco_fixture
    from segzero.rewards import score

    fx = write_grefcoco_fixture(tmp_path / "g")
    out = tmp_path / "built"
    argv = ["data", "build", "--source", "grefcoco", "--refer-dir", str(fx["refer_dir"]), "--images"]
    argv += [str(fx["images_dir"]), "--out", str(out), "--split", "val", "--layout", "multi", "--frame", "30x20"]
    assert main([*argv, "--no-progress"]) == 0
    rows = {r["problem"]: r for r in load_built(out, split="val")}
    assert set(rows) == set(fx["targets"])  # every expression is a row, the no-target one included
    for text, anns in fx["targets"].items():
        items = json.loads(rows[text]["solution"])
        # one item per referred (non-crowd) object, its box the pixels the polygon covers (frame = image size here;
        # pycocotools leaves a polygon's right and bottom edges out)
        want = sorted((x1, y1, x2 - 1, y2 - 1) for x1, y1, x2, y2 in (fx["boxes"][a] for a in anns))
        assert sorted(tuple(i["bbox_2d"]) for i in items) == want
    assert json.loads(rows["the purple dog"]["solution"]) == []
    # the multi-object reward scores a correct "nothing here" answer as right, and any object there as wrong
    nothing, something = (
        "<think>no dog</think><answer>[]</answer>",
        '<think>x</think><answer>[{"bbox_2d": [1, 1, 5, 5], "point_2d": [2, 2]}]</answer>',
    )
    assert score("visionreasoner", nothing, "[]")["accuracy"] > score("visionreasoner", something, "[]")["accuracy"]


def test_grefcoco_needs_the_multi_layout(tmp_path):
    from segzero.data.synthetic import write_grefcoco_fixture

    fx = write_grefcoco_fixture(tmp_path / "g")
    cfg = BuildConfig(
        source="grefcoco", refer_dir=str(fx["refer_dir"]), images_dir=str(fx["images_dir"]), out=str(tmp_path / "o"),
        split="val", progress=False,
    )  # fmt: skip
    with pytest.raises(UserError, match="multi"):
        build(cfg)
