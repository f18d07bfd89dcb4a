"""Tests of ``segzero.eval.identity`` without models: content hashes of model folders, what counts as weights and
what as other loaded files, Hugging Face cache links, and comparing identities. The oracle is ``hashlib`` on the
bytes written here. Run: ``pytest tests/test_eval_identity.py -x -q``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from segzero.eval.identity import file_digest, folder_digest, identity_changes, samples_digest, weights_digest


def make_folder(path: Path) -> Path:
    """A model folder: weights (two shards + index), loaded files (config, tokenizer), and files no model loads."""
    path.mkdir(parents=True)
    files = {
        "model-00001-of-00002.safetensors": b"w1" * 1000,
        "model-00002-of-00002.safetensors": b"w2" * 1000,
        "model.safetensors.index.json": b'{"weight_map": {}}',
        "config.json": b'{"model_type": "x"}',
        "tokenizer.json": b"{}",
        "README.md": b"notes",
        "optimizer.pt": b"optimizer state",
    }
    for name, data in files.items():
        (path / name).write_bytes(data)
    return path


def _rewrite_same_size(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))


# (what is done to the folder, does the weights digest change, does the other-files digest change)
FOLDER_CHANGES = [
    ("nothing", False, False),  # same bytes: same digests
    ("weights rewritten in place, same size", True, False),  # the stress-test case: config.json untouched
    ("index file edited", True, False),  # the shard map belongs to the weights
    ("config.json edited", False, True),  # loaded, but not a weight
    ("tokenizer edited", False, True),  # the processor/tokenizer files are part of the identity
    ("README edited", False, False),  # not loaded by the model
    ("optimizer state edited", False, False),  # a training checkpoint's optimizer is never loaded for inference
    ("new weight shard added", True, False),  # another weight file
]


@pytest.mark.parametrize(("change", "weights_change", "files_change"), FOLDER_CHANGES)
def test_folder_digest_follows_the_files_a_model_loads(tmp_path, change, weights_change, files_change):
    folder = make_folder(tmp_path / "m")
    before = folder_digest(folder, weights=True), folder_digest(folder, weights=False)
    target = {
        "weights rewritten in place, same size": "model-00001-of-00002.safetensors",
        "index file edited": "model.safetensors.index.json",
        "config.json edited": "config.json",
        "tokenizer edited": "tokenizer.json",
        "README edited": "README.md",
        "optimizer state edited": "optimizer.pt",
    }.get(change)
    if target:
        _rewrite_same_size(folder / target)
    if change == "new weight shard added":
        (folder / "extra.bin").write_bytes(b"more")
    after = folder_digest(folder, weights=True), folder_digest(folder, weights=False)
    assert (before[0] != after[0], before[1] != after[1]) == (weights_change, files_change)


def test_folder_digest_is_content_not_path(tmp_path):
    # independent oracle: sha256 over "name\tsha256(bytes)\n" of the weight files in name order
    a = make_folder(tmp_path / "a")
    b = make_folder(tmp_path / "elsewhere" / "b")
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"]
    h = hashlib.sha256()
    for name in names:
        h.update(f"{name}\t{hashlib.sha256((a / name).read_bytes()).hexdigest()}\n".encode())
    expected = "sha256:" + h.hexdigest()[:16]
    assert folder_digest(a, weights=True) == folder_digest(b, weights=True) == expected
    assert weights_digest(a) == expected


def test_hub_cache_link_uses_the_blob_name(tmp_path):
    # the Hugging Face cache names blobs by their content hash: a snapshot link is hashed without reading it
    blobs = tmp_path / "models--o--m" / "blobs"
    blobs.mkdir(parents=True)
    blob = blobs / ("ab" * 32)
    blob.write_bytes(b"weights")
    link = tmp_path / "models--o--m" / "snapshots" / "c0ffee" / "model.safetensors"
    link.parent.mkdir(parents=True)
    os.symlink(os.path.relpath(blob, link.parent), link)
    assert file_digest(link) == "ab" * 32
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(b"weights")
    assert file_digest(plain) == hashlib.sha256(b"weights").hexdigest()


def test_uncached_hub_id_and_folders_without_weights(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    assert weights_digest("someone/unknown-model") == "hub:someone/unknown-model"  # nothing local to hash
    (tmp_path / "cfg_only").mkdir()
    (tmp_path / "cfg_only" / "config.json").write_text("{}")
    assert weights_digest(tmp_path / "cfg_only") == "none"


def test_samples_digest_changes_with_ids_and_queries():
    from segzero.eval.datasets import SampleInfo

    class DS:
        def __init__(self, samples):
            self.samples = samples

    base = [SampleInfo(0, "a:0", "the cup", "a", "a", "0"), SampleInfo(1, "b:0", "the dog", "b", "b", "0")]
    reworded = [base[0], SampleInfo(1, "b:0", "the cat", "b", "b", "0")]
    assert samples_digest(DS(base)) == samples_digest(DS(list(base)))
    assert samples_digest(DS(base)) != samples_digest(DS(reworded))  # a query re-worded
    assert samples_digest(DS(base)) != samples_digest(DS(base[:1]))  # a sample removed


@pytest.mark.parametrize(
    ("old", "new", "ignore", "expected"),
    [
        ({"a": 1, "b": 2}, {"a": 1, "b": 2}, (), []),  # equal
        ({"a": 1, "b": 2}, {"a": 1, "b": 3}, (), ["b"]),  # one value differs
        ({"a": 1}, {"a": 1, "c": 0}, (), ["c"]),  # a key only the new identity has
        ({"a": 1, "d": 0}, {"a": 1}, (), ["d"]),  # a key only the old identity has
        ({"shard": "0/2", "a": 1}, {"shard": "1/2", "a": 1}, ("shard",), []),  # merge ignores the shard
    ],
)
def test_identity_changes(old, new, ignore, expected):
    assert identity_changes(old, new, ignore=ignore) == expected
