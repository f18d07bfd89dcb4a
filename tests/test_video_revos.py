"""The ReVOS / ReasonVOS reader on hand-written folders: expressions, frame files, gt as the union of objects
(compressed and uncompressed RLE, absent frames), split choice and one-line errors.

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_video_revos.py``
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from segzero.errors import UserError
from segzero.eval.revos import decode_rle, is_revos_folder, load_revos

H, W, T = 6, 8, 3


def box_mask(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


# two objects of one video: object 7 on frames 0 and 2 (absent on 1), object 9 on every frame
OBJ7 = [box_mask(0, 2, 0, 3), None, box_mask(1, 3, 1, 4)]
OBJ9 = [box_mask(4, 6, 5, 8), box_mask(3, 6, 4, 8), box_mask(4, 5, 6, 8)]


def compressed(m: np.ndarray | None):
    if m is None:
        return None
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [H, W], "counts": rle["counts"].decode("ascii")}


def uncompressed(m: np.ndarray) -> dict:
    """Column-major run lengths starting with a background run, as COCO writes iscrowd masks."""
    flat = m.T.reshape(-1).astype(int)
    runs, value, count = [], 0, 0
    for v in flat:
        if v == value:
            count += 1
        else:
            runs.append(count)
            value, count = v, 1
    runs.append(count)
    return {"size": [H, W], "counts": runs}


def write_frames(root, video: str, suffix: str = ".jpg") -> None:
    folder = root / "JPEGImages" / video
    folder.mkdir(parents=True)
    for t in range(T):
        Image.new("RGB", (W, H), (10 * t, 0, 0)).save(folder / f"{t:05d}{suffix}")


@pytest.fixture
def revos(tmp_path):
    root = tmp_path / "ReVOS"
    write_frames(root, "vid_a")
    write_frames(root, "vid_b", ".png")  # a shapes-world style PNG folder
    frames = [f"{t:05d}" for t in range(T)]
    meta = {
        "videos": {
            "vid_a": {
                "vid_id": 0,
                "frames": frames,
                "expressions": {
                    "0": {"exp": "both things", "obj_id": [0, 1], "anno_id": [7, 9], "type_id": 1},
                    "1": {"exp": "the first thing", "obj_id": [0], "anno_id": [7], "type_id": 0},
                },
            },
            "vid_b": {
                "vid_id": 1,
                "frames": frames,
                "expressions": {"0": {"exp": "x", "obj_id": [0], "anno_id": [11]}},
            },
        }
    }
    (root / "meta_expressions_valid_.json").write_text(json.dumps(meta))
    (root / "meta_expressions_train_.json").write_text(json.dumps({"videos": {}}))
    masks = {
        "7": [compressed(m) for m in OBJ7],
        "9": [uncompressed(OBJ9[0]), compressed(OBJ9[1]), uncompressed(OBJ9[2])],
        "11": [None, None, None],
    }
    (root / "mask_dict.json").write_text(json.dumps(masks))
    return root


def test_expressions_are_read_with_their_type_and_objects(revos):
    ds = load_revos(revos)
    assert ds.split == "valid" and is_revos_folder(revos)
    got = [(e.id, e.query, e.anno_ids, e.type_name) for e in ds.samples]
    assert got == [
        ("vid_a/0", "both things", ("7", "9"), "reason"),  # type 1: a reasoning expression
        ("vid_a/1", "the first thing", ("7",), "referring"),  # type 0: a referring one
        ("vid_b/0", "x", ("11",), "all"),  # no type given
    ]


@pytest.mark.parametrize(
    ("exp", "want"),
    [
        (0, [OBJ7[0] | OBJ9[0], OBJ9[1], OBJ7[2] | OBJ9[2]]),  # the union of both objects; object 7 absent on frame 1
        (1, [OBJ7[0], np.zeros((H, W), bool), OBJ7[2]]),  # one object: empty where it is absent
        (2, [np.zeros((H, W), bool)] * 3),  # an object absent from every frame
    ],
)
def test_gt_is_the_union_of_the_expressions_objects_per_frame(revos, exp, want):
    ds = load_revos(revos)
    gt = ds.gt(ds.samples[exp], size=(H, W))
    assert gt.shape == (T, H, W) and (gt == np.stack(want)).all()


def test_frames_are_found_as_jpg_or_png_in_order(revos):
    ds = load_revos(revos)
    for video in ("vid_a", "vid_b"):
        frames = ds.frames(video)
        assert [im.size for im in frames] == [(W, H)] * T
        assert [np.asarray(im)[0, 0, 0] for im in frames] == [0, 10, 20]  # the red channel numbers the frames


def test_decode_rle_reads_both_count_forms():
    # the two encodings of one mask decode to it
    m = OBJ9[1]
    assert (decode_rle(compressed(m)) == m).all() and (decode_rle(uncompressed(m)) == m).all()
    assert decode_rle(None) is None


def test_reasonvos_release_layout_is_read_too(tmp_path):
    # expressions as a list, one object each; masks as Annotations/<source>_<video>_<obj_id>/<frame>.png
    root = tmp_path / "ReasonVOS"
    write_frames(root, "v1")
    meta = {
        "videos": {
            "v1": {
                "source": "MeViS",
                "frames": [f"{t:05d}" for t in range(T)],
                "expressions": [{"exp_id": 0, "exp_text": "what moves", "obj_id": 3, "is_sent": True}],
            }
        }
    }
    (root / "meta_expressions.json").write_text(json.dumps(meta))
    folder = root / "Annotations" / "MeViS_v1_3"
    folder.mkdir(parents=True)
    for t, m in enumerate(OBJ9):
        Image.fromarray(m.astype(np.uint8) * 255).save(folder / f"{t:05d}.png")
    ds = load_revos(root)
    (e,) = ds.samples
    assert (ds.split, e.query, e.anno_ids, e.type_name) == ("all", "what moves", ("MeViS_v1_3",), "all")
    assert (ds.gt(e, size=(H, W)) == np.stack(OBJ9)).all()


@pytest.mark.parametrize(
    ("split", "want"),
    [
        (None, "valid"),  # valid is the default
        ("val", "valid"),  # the shapes world's and image eval's name for it
        ("train", "train"),  # another meta file of the folder
    ],
)
def test_split_picks_the_meta_file(revos, split, want):
    assert load_revos(revos, split=split).split == want


def _drop_frame(root):
    (root / "JPEGImages" / "vid_a" / "00001.jpg").unlink()


def _break_meta(root):
    (root / "meta_expressions_valid_.json").write_text("[1, 2]")


def _drop_masks(root):
    (root / "mask_dict.json").unlink()


@pytest.mark.parametrize(
    ("damage", "call", "message"),
    [
        (_drop_frame, lambda ds: ds.frames("vid_a"), "frame '00001' not found"),  # a frame file is missing
        (_break_meta, lambda ds: ds, "not a ReVOS meta file"),  # the meta file is not {"videos": ...}
        (_drop_masks, lambda ds: ds, "no gt masks"),  # neither mask_dict.json nor Annotations/
        (lambda root: None, lambda ds: load_revos(ds.root, split="test"), "no split 'test'"),  # an absent split
    ],
)
def test_bad_folders_fail_in_one_line(revos, damage, call, message):
    damage(revos)
    with pytest.raises(UserError, match=message):
        call(load_revos(revos))


def test_a_mask_list_of_the_wrong_length_is_a_value_error(revos):
    # a per-expression failure (the evaluation records it as the expression's gt error), not a crash of the run
    masks = json.loads((revos / "mask_dict.json").read_text())
    masks["7"] = masks["7"][:2]
    (revos / "mask_dict.json").write_text(json.dumps(masks))
    ds = load_revos(revos)
    with pytest.raises(ValueError, match="2 masks for 3 frames"):
        ds.gt(ds.samples[1], size=(H, W))
