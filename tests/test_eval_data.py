"""Tests of the evaluation data sources and bookkeeping (no models): LISA folders, refer annotations, ReasonSeg
save_to_disk / parquet, gt mask normalisation, shard and chunk planning, crash-tolerant record files.

Run: ``pytest tests/test_eval_data.py -x -q``.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from segzero.errors import UserError
from segzero.eval.datasets import SampleInfo, load_eval_dataset, mask_array
from segzero.eval.records import read_records, repair_records
from segzero.eval.runner import plan_chunks, select_shard


def write_lisa(folder, *, missing_json: bool = False):
    """Two images: 'a' with a target, an overlapping smaller ignore polygon and a 'flag'; 'b' with two sentences."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("a", "b"):
        Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(folder / f"{name}.jpg")
    shapes_a = [
        {"label": "target", "points": [[2, 2], [30, 2], [30, 20], [2, 20]], "shape_type": "polygon"},
        {"label": "ignore", "points": [[10, 5], [15, 5], [15, 10], [10, 10]], "shape_type": "polygon"},
        {"label": "flag", "points": [[0, 0], [39, 0], [39, 29], [0, 29]], "shape_type": "polygon"},
    ]
    (folder / "a.json").write_text(json.dumps({"text": ["the box"], "is_sentence": False, "shapes": shapes_a}))
    if not missing_json:
        shapes_b = [{"label": "target", "points": [[5, 5], [9, 5], [9, 9]], "shape_type": "polygon"}]
        (folder / "b.json").write_text(
            json.dumps({"text": ["first?", "second?"], "is_sentence": True, "shapes": shapes_b})
        )


def test_lisa_folder_masks_and_sentences(tmp_path):
    write_lisa(tmp_path / "ReasonSeg" / "val")
    ds = load_eval_dataset(tmp_path / "ReasonSeg", split="val")
    assert ds.kind == "lisa" and [s.id for s in ds.samples] == ["a:0", "b:0"]  # first sentence per image
    mask = ds.mask(ds.samples[0])
    expected = np.zeros((30, 40), np.uint8)
    expected[2:21, 2:31] = 1  # LISA draws the outline too: inclusive corners
    expected[5:11, 10:16] = 255  # the smaller ignore polygon is drawn last, on top; "flag" is skipped
    np.testing.assert_array_equal(mask, expected)
    every = load_eval_dataset(tmp_path / "ReasonSeg", split="val", sentences="all")
    assert [s.query for s in every.samples] == ["the box", "first?", "second?"]
    assert every.samples[1].image_key == every.samples[2].image_key  # one image, two queries
    assert ds.image(ds.samples[0]).size == (40, 30)


def test_lisa_missing_json_names_the_file(tmp_path):
    write_lisa(tmp_path / "val", missing_json=True)
    with pytest.raises(UserError, match="b.json"):
        load_eval_dataset(tmp_path / "val")


def test_refer_one_sample_per_expression(tmp_path):
    root = tmp_path / "refcocog"
    (root / "images").mkdir(parents=True)
    # the image carries an EXIF "rotate 90" tag: COCO masks index the stored pixels, so it must not be rotated
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(root / "images" / "COCO_1.jpg", exif=exif.tobytes())
    refs = [
        {
            "ref_id": 7,
            "ann_id": 70,
            "image_id": 1,
            "split": "val",
            "category_id": 1,
            "sentences": [
                {"sent": "left thing", "raw": "Left thing", "sent_id": 100},
                {"sent": "the thing at left", "raw": "The thing at left.", "sent_id": 101},
            ],
        },
        {
            "ref_id": 8,
            "ann_id": 70,
            "image_id": 1,
            "split": "train",
            "category_id": 1,
            "sentences": [{"sent": "train only", "raw": "train only", "sent_id": 102}],
        },
    ]
    with open(root / "refs(umd).p", "wb") as f:
        pickle.dump(refs, f)
    instances = {
        "images": [{"id": 1, "file_name": "COCO_1.jpg", "width": 30, "height": 20}],
        "annotations": [{"id": 70, "image_id": 1, "segmentation": [[2, 2, 12, 2, 12, 10, 2, 10]], "category_id": 1}],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (root / "instances.json").write_text(json.dumps(instances))
    ds = load_eval_dataset(root, split="val", refer_dataset="refcocog", images_dir=root / "images")
    assert ds.kind == "refer" and [s.id for s in ds.samples] == ["7:100", "7:101"]
    assert [s.query for s in ds.samples] == ["left thing", "the thing at left"]
    mask = ds.mask(ds.samples[0])
    assert mask.shape == (20, 30) and mask.dtype == np.uint8 and mask[5, 5] == 1 and mask[15, 20] == 0
    assert ds.image(ds.samples[1]).size == (30, 20)
    with pytest.raises(UserError, match="image folder"):
        load_eval_dataset(root, split="val", images_dir=tmp_path / "nope")


def _rows(n=2):
    img = Image.fromarray(np.zeros((4, 5, 3), np.uint8))
    return {
        "image": [img] * n,
        "text": ["q"] * n,
        "mask": [[[True] * 5] * 4] * n,
        "image_id": ["i"] * n,
        "ann_id": [str(k) for k in range(n)],
        "img_height": [4] * n,
        "img_width": [5] * n,
    }


def test_reasonseg_dataset_parquet_and_missing_column(tmp_path):
    import datasets

    rows = _rows()
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "plain"))  # a Dataset, not a DatasetDict
    ds = load_eval_dataset(tmp_path / "plain")
    assert [s.id for s in ds.samples] == ["i:0", "i:1"] and ds.mask(ds.samples[0]).sum() == 20
    datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "t.parquet"))
    assert len(load_eval_dataset(tmp_path / "t.parquet")) == 2
    del rows["mask"]
    datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows)}).save_to_disk(str(tmp_path / "nomask"))
    with pytest.raises(UserError, match="mask"):
        load_eval_dataset(tmp_path / "nomask")
    with pytest.raises(UserError, match="split 'val'"):
        load_eval_dataset(tmp_path / "nomask", split="val")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([[True, False]], [[1, 0]]),  # hub copies: nested list of bools
        (np.array([[0, 1, 255]], np.uint8), [[0, 1, 255]]),  # LISA-converted: 255 = ignore kept
        (np.array([[0, 2, 255]], np.int64), [[0, 1, 255]]),  # any other non-zero value is target
        (Image.fromarray(np.array([[0, 1]], np.uint8)), [[0, 1]]),  # a mask stored as an image
        (np.ones((1, 2, 1), bool), [[1, 1]]),  # (H, W, 1) squeezed
    ],
)
def test_mask_array_normalises(value, expected):
    np.testing.assert_array_equal(mask_array(value), np.array(expected, np.uint8))


@pytest.mark.parametrize(
    "value",
    [
        [[1, 0], [1]],  # ragged rows
        np.zeros((2, 2, 3)),  # a colour image is not a mask
        [["a", "b"]],  # not numbers
    ],
)
def test_mask_array_rejects(value):
    with pytest.raises(ValueError):
        mask_array(value)


def _samples(spec: str) -> list[SampleInfo]:
    """'aab c' -> samples with image keys a, a, b, c (spaces ignored)."""
    keys = spec.replace(" ", "")
    return [SampleInfo(i, f"{k}:{i}", "q", k, k, str(i)) for i, k in enumerate(keys)]


@pytest.mark.parametrize("n", [1, 2, 3, 5])  # more shards than images leaves some empty, still a partition
def test_shards_partition_by_image(n):
    samples = _samples("aaabbcdddde")
    parts = [select_shard(samples, f"{i}/{n}") for i in range(n)]
    assert sorted(s.index for p in parts for s in p) == list(range(len(samples)))
    keys = [{s.image_key for s in p} for p in parts]
    assert all(not (keys[i] & keys[j]) for i in range(n) for j in range(i + 1, n))
    with pytest.raises(UserError):
        select_shard(samples, f"{n}/{n}")


def test_chunks_keep_images_whole():
    chunks = plan_chunks(_samples("aaabbcdddde"), 2)
    assert ["".join(s.image_key for s in c) for c in chunks] == ["aaa", "bb", "cdddd", "e"]


def test_records_tolerate_truncation_and_duplicates(tmp_path):
    path = tmp_path / "samples.jsonl"
    lines = [json.dumps({"id": "x", "v": 1}), json.dumps({"id": "y"}), json.dumps({"id": "x", "v": 2})]
    path.write_text("\n".join(lines) + "\n" + '{"id": "z", "inter')  # the kill cut the last line
    records, bad = read_records(path)
    assert [r["id"] for r in records] == ["x", "y"] and records[0]["v"] == 1 and bad == 1
    repair_records(path)
    assert path.read_text().endswith("\n") and len(path.read_text().splitlines()) == 2


def test_grefcoco_expressions_mean_several_objects_or_none(tmp_path):
    from segzero.data.refer import decode_segmentation
    from segzero.data.synthetic import write_grefcoco_fixture

    root = write_grefcoco_fixture(tmp_path / "grefcoco")["refer_dir"]
    ds = load_eval_dataset(root, split="val", refer_dataset="grefcoco", images_dir=root / "images")
    assert ds.kind == "refer" and [s.query for s in ds.samples] == ["both things", "the purple dog", "left thing"]

    def square(x1, y1, x2, y2):  # the mask of one polygon, decoded as the reader decodes it
        return decode_segmentation([[x1, y1, x2, y1, x2, y2, x1, y2]], 20, 30)[0]

    both, nothing, left = (ds.mask(s).astype(bool) for s in ds.samples)
    assert np.array_equal(both, square(2, 2, 10, 10) | square(20, 5, 28, 15))  # the union of the two objects
    assert nothing.shape == (20, 30) and not nothing.any()  # no target: an empty mask of the image's size
    assert np.array_equal(left, square(2, 2, 10, 10))  # the crowd annotation is not part of the target


@pytest.mark.slow
def test_grefcoco_eval_reports_gres_accuracies(tmp_path, tiny_models):
    from segzero.cli.main import main
    from segzero.data.synthetic import write_grefcoco_fixture

    root, out = write_grefcoco_fixture(tmp_path / "grefcoco")["refer_dir"], tmp_path / "run"
    argv = ["eval", "--data", str(root), "--format", "refer", "--refer-dataset", "grefcoco", "--split", "val"]
    argv += ["--images", str(root / "images"), "--reasoner", str(tiny_models["reasoner"]), "--frame", "56"]
    assert main([*argv, "--segmenter", str(tiny_models["segmenter"]), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    (empty,) = [r for r in records if r["gt_area"] == 0]  # "the purple dog"
    assert summary["n"] == 3 and summary["no_target"]["n_no_target"] == 1 and summary["no_target"]["n_target"] == 2
    assert summary["no_target"]["N-acc"] == float(empty["pred_area"] == 0)
