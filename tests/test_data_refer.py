"""Tests of ``segzero.data.refer``: refer-layout reading and mask decoding (polygons, RLE, bad input).

Run: ``pytest tests/test_data_refer.py -q``.
"""

from __future__ import annotations

import builtins
import io
import os
import pickle
import pickletools
import shlex
import struct
from pathlib import Path

import numpy as np
import pytest

from segzero.data.refer import BadAnnotation, RefsUnpickler, RefusedPickleGlobal, decode_segmentation, load_refer
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


class _Python2Pickler(pickle._Pickler):
    """Writes bytes with the opcodes Python 2 used for its ``str`` (``BINSTRING``), not Python 3's ``_codecs.encode``
    call: a pickle as the released refs files are, with no global in it."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj: bytes) -> None:
        self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _python2_dumps(obj) -> bytes:
    buf = io.BytesIO()
    _Python2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


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

    data = _python2_dumps(to_bytes(refs))
    assert "BINSTRING" in {op.name for op, _, _ in pickletools.genops(data)}  # Python 2's str opcode
    (info["refer_dir"] / "refs(umd).p").write_bytes(data)
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


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])  # Python 2's text and binary, today's
def test_genuine_shaped_refs_load_through_the_restricted_unpickler(tmp_path, protocol):
    # a list of dicts of str/int/float/list needs no global: every protocol loads, equal to what was written
    info = write_refer_fixture(tmp_path, n_images=2, broken=False)
    refs_file = info["refer_dir"] / "refs(umd).p"
    refs = pickle.loads(refs_file.read_bytes())
    refs[0]["score"] = 0.5  # a float too
    refs_file.write_bytes(pickle.dumps(refs, protocol=protocol))
    opcodes = {op.name for op, _, _ in pickletools.genops(refs_file.read_bytes())}
    assert not opcodes & {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE"}  # built without naming any global
    with open(refs_file, "rb") as f:
        assert RefsUnpickler(f, refs_file, encoding="bytes").load() == refs
    ds = load_refer(info["refer_dir"], "refcocog", "umd")
    assert [r.ref_id for r in ds] == [r["ref_id"] for r in refs]


class _Shell:
    """Pickles as a call of ``os.system(command)``: what a malicious refs file does."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Eval:
    """Pickles as a call of ``builtins.eval(source)``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __reduce__(self):
        return (builtins.eval, (self.source,))


def _evil_pickle(kind: str, flag: Path) -> bytes:
    """A pickle naming a global; the ``live`` ones, loaded by plain ``pickle``, create ``flag``."""
    shell = f"echo pwned > {shlex.quote(str(flag))}"
    source = f"open({str(flag)!r}, 'w').write('pwned')"
    return {
        "os.system": lambda: pickle.dumps(_Shell(shell)),
        "builtins.eval": lambda: pickle.dumps(_Eval(source)),
        "py2 eval": lambda: b"c__builtin__\neval\n(S" + repr(source).encode() + b"\ntR.",
        "hidden": lambda: pickle.dumps([{"ref_id": 1, "sentences": [_Shell(shell)]}]),
        "py3 bytes": lambda: pickle.dumps([{b"ref_id": 1}], protocol=2),
        "copy_reg": lambda: b"ccopy_reg\n_reconstructor\n(c__builtin__\nobject\nc__builtin__\nobject\nNtR.",
    }[kind]()


@pytest.mark.parametrize(
    ("kind", "refused", "live"),
    [
        ("os.system", f"{os.system.__module__}.system", True),  # os.system via __reduce__
        ("builtins.eval", "builtins.eval", True),  # builtins.eval via __reduce__, today's protocol
        ("py2 eval", "__builtin__.eval", True),  # a hand-written Python 2 pickle (protocol 0, __builtin__)
        ("hidden", f"{os.system.__module__}.system", True),  # the call hidden inside genuine-looking refs
        ("copy_reg", "copy_reg._reconstructor", False),  # Python 2's generic object builder
        ("py3 bytes", "_codecs.encode", False),  # Python 3 bytes at protocol 2 (Python 2 files hold str opcodes)
    ],
)
def test_malicious_refs_pickle_is_refused_and_never_runs(tmp_path, kind, refused, live):
    flag = tmp_path / "pwned.txt"
    data = _evil_pickle(kind, flag)
    info = write_refer_fixture(tmp_path / "fx", n_images=1, broken=False)
    refs_file = info["refer_dir"] / "refs(umd).p"
    refs_file.write_bytes(data)
    with pytest.raises(UserError) as err:
        load_refer(info["refer_dir"], "refcocog", "umd")
    message = str(err.value)
    assert str(refs_file) in message and f"the global {refused};" in message and "\n" not in message
    assert isinstance(err.value.__cause__, RefusedPickleGlobal)
    assert not flag.exists()  # the payload did not run
    if live:  # the oracle that the payload is real: plain pickle runs it
        pickle.loads(data)
        assert flag.read_text().strip() == "pwned"


def test_malicious_refs_pickle_is_exit_2_at_the_cli(tmp_path, capsys):
    # `segzero data build` on a poisoned annotation folder: one line naming the file and the global, exit 2
    from segzero.cli.main import main

    flag = tmp_path / "pwned.txt"
    info = write_refer_fixture(tmp_path / "fx", n_images=1, broken=False)
    (info["refer_dir"] / "refs(umd).p").write_bytes(pickle.dumps(_Shell(f"echo pwned > {shlex.quote(str(flag))}")))
    argv = ["data", "build", "--source", "refcocog", "--refer-dir", str(info["refer_dir"])]
    argv += ["--images", str(info["images_dir"]), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("segzero data: error: ")
    assert "refs(umd).p" in err and f"{os.system.__module__}.system" in err and "Traceback" not in err
    assert not flag.exists()


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


@pytest.mark.parametrize(
    ("segmentation", "covered_once", "covered_twice"),
    [
        ([[1, 1, 4, 1, 4, 4, 1, 4], [6, 5, 9, 5, 9, 8, 6, 8]], 18, 0),  # apart: the union, each pixel once
        ([[1, 1, 5, 1, 5, 5, 1, 5], [3, 3, 7, 3, 7, 7, 3, 7]], 2 * (16 - 4), 4),  # overlapping 4x4 squares: 2x2
        ({"size": [10, 12], "counts": _rle_counts(RECT)}, 18, 0),  # one RLE
    ],
)
def test_decode_segmentation_counts_parts(segmentation, covered_once, covered_twice):
    covers, _ = decode_segmentation(segmentation, 10, 12, count=True)
    assert covers.dtype == np.uint8  # how many parts cover each pixel, as the notebook's sum over them
    assert (int((covers == 1).sum()), int((covers == 2).sum())) == (covered_once, covered_twice)
    union, _ = decode_segmentation(segmentation, 10, 12)
    np.testing.assert_array_equal(covers > 0, union)


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
