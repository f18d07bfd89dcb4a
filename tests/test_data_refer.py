"""Tests of ``segzero.data.refer``: refer-layout reading and mask decoding (polygons, RLE, bad input).

Run: ``pytest tests/test_data_refer.py -q``.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from segzero.data.refer import BadAnnotation, decode_segmentation, load_refer
from segzero.data.synthetic import _rle_counts, write_refer_fixture
from segzero.errors import UserError


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return write_refer_fixture(tmp_path_factory.mktemp("refer"), n_images=3, seed=1)


def test_load_refer_joins_refs_images_and_masks(fixture):
    ds = load_refer(fixture["refer_dir"], "refcocog", "umd")
    assert len(ds) == len(fixture["refs"])
    good = [r for r in ds if not r.problem]
    for ref in good:
        w, h = fixture["sizes"][ref.image_id]
        assert (ref.width, ref.height) == (w, h)
        assert ref.file_name == f"COCO_train2014_{ref.image_id:012d}.jpg"
        assert len(ref.sentences) == len(ref.sent_ids) == len(ref.raw) >= 1
        if ref.ann_id in fixture["masks"]:
            np.testing.assert_array_equal(ds.mask(ref), fixture["masks"][ref.ann_id])
    assert ds.problems == {"ann_id_not_found": 1, "image_id_not_found": 1}
    assert set(ds.splits) == {"train", "val"}
    assert all(r.split == "val" for r in ds.refs_for_split("val"))
    assert len(ds.refs_for_split("all")) == len(ds)
    bad = next(r for r in ds if r.problem == "ann_id_not_found")
    with pytest.raises(BadAnnotation) as err:
        ds.mask(bad)
    assert err.value.reason == "ann_id_not_found"


def test_python2_style_bytes_pickle(tmp_path):
    # the released refs pickles come from Python 2: keys and strings load as bytes with encoding="bytes"
    info = write_refer_fixture(tmp_path, n_images=1, broken=False)
    refs = pickle.loads((info["refer_dir"] / "refs(umd).p").read_bytes())

    def to_bytes(o):
        if isinstance(o, str):
            return o.encode()
        if isinstance(o, dict):
            return {to_bytes(k): to_bytes(v) for k, v in o.items()}
        if isinstance(o, list):
            return [to_bytes(v) for v in o]
        return o

    (info["refer_dir"] / "refs(umd).p").write_bytes(pickle.dumps(to_bytes(refs), protocol=2))
    ds = load_refer(info["refer_dir"], "refcocog", "umd")
    assert ds.refs[0].sentences[0] == refs[0]["sentences"][0]["sent"]
    assert ds.refs[0].split == "train"


@pytest.mark.parametrize(
    ("files", "dataset", "split_by", "message"),
    [
        (["instances.json"], "refcocog", "umd", "refs(umd).p"),  # refs pickle missing: named
        (["refs(umd).p"], "refcocog", "umd", "instances.json"),  # instances missing: named
        (["refs(umd).p", "instances.json"], "refcoco+", "google", "no split_by"),  # RefCOCO+ has only unc
        (["refs(umd).p", "instances.json"], "refclef", "unc", "unknown refer dataset"),  # not supported
    ],
)
def test_missing_files_and_bad_names_are_user_errors(tmp_path, files, dataset, split_by, message):
    for name in files:
        (tmp_path / name).write_bytes(pickle.dumps([]) if name.endswith(".p") else b"{}")
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_refer(tmp_path, dataset, split_by)


def test_dataset_subfolder_layout(tmp_path):
    # the toolkit's data/ root: data/refcocog/refs(umd).p
    info = write_refer_fixture(tmp_path / "x", n_images=1, broken=False)
    info["refer_dir"].rename(tmp_path / "refcocog")
    assert len(load_refer(tmp_path, "refcocog", "umd")) == len(info["refs"])


RECT = np.zeros((10, 12), dtype=bool)
RECT[2:5, 3:9] = True


@pytest.mark.parametrize(
    ("segmentation", "expected_sum", "skipped"),
    [
        ({"size": [10, 12], "counts": _rle_counts(RECT)}, 18, 0),  # uncompressed RLE: exact pixels
        ([[1, 1, 8, 1, 8, 6, 1, 6]], 35, 0),  # polygon: pycocotools rasterisation (7 x 5)
        ([[1, 1, 8, 1, 8, 6, 1, 6], [1, 1, 3, 3]], 35, 1),  # a 2-point polygon is skipped and counted
        ([[1, 1, 4, 1, 4, 4, 1, 4], [6, 5, 9, 5, 9, 8, 6, 8]], 18, 0),  # two polygons OR-ed (3x3 + 3x3)
        ([{"size": [10, 12], "counts": _rle_counts(RECT)}], 18, 0),  # a list of RLEs
    ],
)
def test_decode_segmentation(segmentation, expected_sum, skipped):
    mask, n_skipped = decode_segmentation(segmentation, 10, 12)
    assert mask.shape == (10, 12) and mask.dtype == bool
    assert int(mask.sum()) == expected_sum
    assert n_skipped == skipped


def test_compressed_rle_str_and_bytes():
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(RECT.astype(np.uint8)))
    for counts in (rle["counts"], rle["counts"].decode("ascii")):  # bytes as pycocotools writes, str as json has
        np.testing.assert_array_equal(decode_segmentation({"size": [10, 12], "counts": counts}, 10, 12)[0], RECT)


@pytest.mark.parametrize(
    ("segmentation", "reason"),
    [
        ([[1, 1, 5, 5]], "polygon_too_few_points"),  # only polygon has 2 points
        ([], "polygon_too_few_points"),  # no polygon at all
        ([[1.2, 1.2, 1.4, 1.4, 1.3, 1.3]], "empty_mask"),  # degenerate polygon rasterises to nothing
        ({"size": [10, 12], "counts": [120]}, "empty_mask"),  # all-background RLE
        ({"size": [11, 12], "counts": [132]}, "rle_size_mismatch"),  # RLE of another image size
        ({"counts": [120]}, "bad_segmentation"),  # RLE without size
        ("polygon", "bad_segmentation"),  # not a COCO segmentation
    ],
)
def test_decode_segmentation_bad_input(segmentation, reason):
    with pytest.raises(BadAnnotation) as err:
        decode_segmentation(segmentation, 10, 12)
    assert err.value.reason == reason
