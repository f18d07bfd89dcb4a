"""Accounting tests of the eval runner: every sample counted, failures recorded per stage, protocols, resume.

Random tiny VLMs rarely produce parseable answers, so the reasoning step here is a deterministic scripted
reasoner (answers looked up by query; a query containing "boom" makes ``generate`` raise). The segmenter is
the real tiny SAM2 and the pipeline the real ``SegZeroPipeline``. Run: ``pytest tests/test_eval_accounting.py``.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass

import numpy as np
import pytest

from segzero.errors import UserError
from segzero.eval.runner import EvalConfig, run_eval
from segzero.rle import decode_mask

ANSWER = '<think>it is the block</think><answer>{"bbox": [8, 8, 36, 28], "points_1": [14, 14], "points_2": [28, 20]}</answer>'
NOTHING = "<think>there is none</think><answer>[]</answer>"


@dataclass
class ScriptedReasoner:
    """Stands in for the VLM step only: deterministic completions by query; "boom" in a batch raises."""

    answers: dict[str, str]
    frame: int = 56

    def generate(self, images, queries, **_):
        if any("boom" in q for q in queries):
            raise RuntimeError("scripted model failure")
        return [self.answers.get(q, "no idea") for q in queries]


def _png(rng, h, w) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def make_rows() -> list[dict]:
    """Rows covering each outcome; the comment on each says which."""
    rng = np.random.default_rng(1)
    box = np.zeros((40, 48), np.uint8)
    box[5:20, 6:30] = 1
    ignore = box.copy()
    ignore[25:35, 10:20] = 255
    good = _png(rng, 40, 48)
    return [
        # parsed answer on a mask with an ignore region: counts checked against numpy
        {"image": good, "text": "the block", "mask": ignore, "image_id": "a", "ann_id": "0"},
        # same image, batch-mate of the failing query: must not be sunk by it
        {"image": good, "text": "the block again", "mask": box, "image_id": "a", "ann_id": "1"},
        # the model raises for this query: error at stage "model", union = gt area
        {"image": good, "text": "boom", "mask": box, "image_id": "a", "ann_id": "2"},
        # unparseable answer: parse_failed, intersection 0, union = gt area
        {"image": good, "text": "gibberish please", "mask": box, "image_id": "a", "ann_id": "3"},
        # empty target answered with an empty list: IoU 1 (LISA's convention)
        {
            "image": _png(rng, 32, 32),
            "text": "nothing",
            "mask": np.zeros((32, 32), np.uint8),
            "image_id": "b",
            "ann_id": "0",
        },
        # undecodable image bytes: error at stage "image"
        {"image": b"not an image", "text": "the block", "mask": box, "image_id": "c", "ann_id": "0"},
        # ragged gt mask rows: error at stage "gt" (intersection 0, union 1)
        {"image": good, "text": "the block", "mask": [[0, 1], [1]], "image_id": "d", "ann_id": "0"},
    ]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    import datasets

    rows = make_rows()
    from segzero.data.reasonseg import eval_features

    feats = eval_features()
    table = {
        "image": [{"bytes": r["image"], "path": None} for r in rows],
        "text": [r["text"] for r in rows],
        "mask": [np.asarray(r["mask"]).tolist() if isinstance(r["mask"], np.ndarray) else r["mask"] for r in rows],
        "image_id": [r["image_id"] for r in rows],
        "ann_id": [r["ann_id"] for r in rows],
        "img_height": [len(r["mask"]) for r in rows],
        "img_width": [len(r["mask"][0]) for r in rows],
    }
    path = tmp_path_factory.mktemp("acct") / "ds"
    datasets.Dataset.from_dict(table, features=feats).save_to_disk(str(path))
    return path, rows


@pytest.fixture(scope="module")
def pipeline(tiny_models):
    from segzero.models.segmenter import Segmenter
    from segzero.pipeline import SegZeroPipeline

    reasoner = ScriptedReasoner({"the block": ANSWER, "the block again": ANSWER, "nothing": NOTHING})
    return SegZeroPipeline(reasoner=reasoner, segmenter=Segmenter.from_pretrained(tiny_models["segmenter"]))


def _run(dataset, pipeline, out, **kw):
    cfg = EvalConfig(
        data=str(dataset[0]),
        out=str(out),
        batch_size=8,
        frame=56,
        progress=False,
        reasoner="scripted",
        segmenter="tiny",
        **kw,
    )
    summary = run_eval(cfg, pipeline=pipeline)
    records = {r["id"]: r for r in map(json.loads, (out / "samples.jsonl").read_text().splitlines())}
    return summary, records


@pytest.mark.slow
def test_every_outcome_is_counted(dataset, pipeline, tmp_path):
    summary, rec = _run(dataset, pipeline, tmp_path / "run")
    rows = dataset[1]
    assert len(rec) == len(rows) == summary["n"]  # nothing skipped
    expected = {  # id -> (status, stage)
        "a:0": ("ok", None),
        "a:1": ("ok", None),
        "a:2": ("error", "model"),
        "a:3": ("parse_failed", None),
        "b:0": ("ok", None),
        "c:0": ("error", "image"),
        "d:0": ("error", "gt"),
    }
    assert {k: (r["status"], r["stage"]) for k, r in rec.items()} == expected
    assert "scripted model failure" in rec["a:2"]["error"]
    for k in ("a:2", "a:3", "c:0"):  # failure rule: empty prediction against the gt area
        assert (rec[k]["intersection"], rec[k]["union"]) == (0, 24 * 15), k
    assert (rec["d:0"]["intersection"], rec["d:0"]["union"], rec["d:0"]["iou"]) == (0, 1, 0.0)
    assert rec["b:0"]["iou"] == 1.0 and rec["b:0"]["empty_target"] and rec["b:0"]["union"] == 0
    for k in ("a:0", "a:1"):  # ok samples: counts equal numpy on the saved mask and the gt (255 excluded)
        gt = np.asarray(rows[rec[k]["index"]]["mask"])
        pred = decode_mask(rec[k]["pred_rle"])
        valid, target = gt != 255, gt == 1
        assert rec[k]["intersection"] == int((pred & target & valid).sum())
        assert rec[k]["union"] == int(((pred | target) & valid).sum())
        assert rec[k]["objects"] and rec[k]["reasoning"] == "it is the block"
    assert summary["errors_by_stage"] == {"model": 1, "image": 1, "gt": 1}
    assert summary["n_failed"] == 4 and summary["parse_failures"] == 1
    ious = [r["iou"] for r in rec.values()]
    assert summary["gIoU"] == pytest.approx(sum(ious) / len(ious), abs=1e-12)
    assert summary["cIoU"] == pytest.approx(
        sum(r["intersection"] for r in rec.values()) / sum(r["union"] for r in rec.values()), abs=1e-12
    )


class _NoEmbedAhead:
    """The pipeline with a failing ``embed_images``: the runner must fall back to embedding in ``segment_many``."""

    def __init__(self, pipe):
        self._pipe = pipe

    def __getattr__(self, name):
        return getattr(self._pipe, name)

    def embed_images(self, images):
        raise RuntimeError("embedding ahead failed")


@pytest.mark.slow
def test_images_are_embedded_ahead_once_and_a_failed_embedding_changes_nothing(dataset, pipeline, tmp_path):
    seg = pipeline.segmenter
    before = seg.num_embeddings
    _, ahead = _run(dataset, pipeline, tmp_path / "ahead")
    # the two images that decode ("a"/"d" share bytes, "b"), each once, while their chunk generates; "b"'s answer is
    # [] and is embedded anyway (the embedding starts before the answer exists)
    assert seg.num_embeddings - before == 2
    before = seg.num_embeddings
    _, fallback = _run(dataset, _NoEmbedAhead(pipeline), tmp_path / "fallback")
    assert seg.num_embeddings - before == 1  # only the image with usable answers, embedded after generation

    def same(rec):  # a record without its timing and with object addresses in error texts blanked
        return {
            f: re.sub(r"0x[0-9a-f]+", "0x", v) if f == "error" and v else v for f, v in rec.items() if f != "seconds"
        }

    assert {k: same(r) for k, r in ahead.items()} == {k: same(r) for k, r in fallback.items()}  # the same records


@pytest.mark.slow
@pytest.mark.parametrize(
    ("ignore_label", "ignored_in_union"),
    [
        ("exclude", False),  # LISA: the 255 region is outside both counts
        ("target", True),  # hub copies: the 255 region is target, so it is in the union
    ],
)
def test_ignore_label_protocols(dataset, pipeline, tmp_path, ignore_label, ignored_in_union):
    summary, rec = _run(dataset, pipeline, tmp_path / ignore_label, ignore_label=ignore_label)
    gt = np.asarray(dataset[1][0]["mask"])
    pred = decode_mask(rec["a:0"]["pred_rle"])
    target = (gt != 0) if ignored_in_union else (gt == 1)
    valid = np.ones_like(target) if ignored_in_union else gt != 255
    assert rec["a:0"]["union"] == int(((pred | target) & valid).sum())
    assert rec["a:0"]["gt_area"] == int(target.sum())
    assert summary["protocol"]["ignore_label"] == ignore_label


@pytest.mark.slow
def test_resume_after_partial_run_gives_same_records(dataset, pipeline, tmp_path):
    once, rec_once = _run(dataset, pipeline, tmp_path / "once")
    part, _ = _run(dataset, pipeline, tmp_path / "resumed", max_samples=3)
    assert part["n"] == 3 and not part["complete"]
    again, rec_again = _run(dataset, pipeline, tmp_path / "resumed")
    drop = ("seconds", "error")  # timing, and error texts that embed object addresses
    assert {k: {f: v for f, v in r.items() if f not in drop} for k, r in rec_again.items()} == {
        k: {f: v for f, v in r.items() if f not in drop} for k, r in rec_once.items()
    }
    assert (again["gIoU"], again["cIoU"], again["n"]) == (once["gIoU"], once["cIoU"], once["n"])


def test_vllm_backend_without_vllm_is_a_user_error(monkeypatch):
    import segzero.eval.vllm_backend as vb

    monkeypatch.setattr(vb, "vllm_available", lambda: False)  # this machine has no vllm either way
    with pytest.raises(UserError, match="vllm"):
        vb.VLLMReasoner.from_pretrained("Ricky06662/Seg-Zero-7B")


@pytest.mark.slow
def test_vllm_prompts_equal_hf_prompts(tiny_models):
    """The vLLM request carries the same chat text and frame image the HF reasoner would feed its model."""
    from PIL import Image

    from segzero.eval.vllm_backend import VLLMReasoner
    from segzero.models.reasoner import Reasoner

    hf = Reasoner.from_pretrained(tiny_models["reasoner"], frame=56)
    vl = VLLMReasoner(llm=None, processor=hf.processor, name="tiny", prompt=hf.prompt, frame=56)
    image = Image.fromarray(np.zeros((30, 70, 3), np.uint8))
    req = vl.request(image, "The Red Cup.")
    assert req["multi_modal_data"]["image"].size == (56, 56)
    assert req["prompt"] == hf.prompt_text(hf.to_frame(image), "The Red Cup.")


def _snapshot(cache, commit: str, weights: bytes) -> None:
    """A hub-cache snapshot of ``someone/reasoner`` at ``commit`` (refs/main points at it), as a download leaves it."""
    repo = cache / "models--someone--reasoner"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (snap / "model.safetensors").write_bytes(weights)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)


@pytest.mark.slow
def test_hub_model_downloaded_at_the_first_start_resumes(dataset, pipeline, tmp_path, monkeypatch):
    import huggingface_hub.constants

    import segzero.eval.runner as runner

    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    downloads = iter([("c1", b"weights v1"), ("c1", b""), ("c2", b"weights v2")])

    def load(cfg):  # loading the pipeline "downloads" the hub reasoner into the cache (the first time, then a new one)
        commit, weights = next(downloads)
        if weights:
            _snapshot(cache, commit, weights)
        return pipeline

    monkeypatch.setattr(runner, "build_pipeline", load)
    out = tmp_path / "run"
    cfg = dict(data=str(dataset[0]), out=str(out), frame=56, progress=False, reasoner="someone/reasoner")
    cfg["segmenter"] = "color"
    run_eval(EvalConfig(**cfg, max_samples=2))
    stored = json.loads((out / "run.json").read_text())["identity"]["reasoner_weights"]
    assert stored.startswith("sha256:")  # the downloaded files, not the bare hub id
    # resumed: the cached snapshot is the run's reasoner
    assert run_eval(EvalConfig(**cfg, max_samples=2))["n"] == 4
    # a newer revision arrives while loading: the identity taken after loading refuses it
    with pytest.raises(UserError, match="reasoner_weights"):
        run_eval(EvalConfig(**cfg))
    assert len((out / "samples.jsonl").read_text().splitlines()) == 4


def _reference_oracle(protocol: str, rows, pred) -> dict:
    """(intersection, union) per id as each reference script computes it, None = skipped; ``pred`` is the mask the
    scripted answer gets (the same prompts under every protocol here: no rounding difference at these sizes)."""
    gt_ignore, box = np.asarray(rows[0]["mask"]), np.asarray(rows[1]["mask"])

    def counts(g, *, exclude=False):
        valid = g != 255 if exclude else np.ones(g.shape, bool)
        target = (g == 1) if exclude else (g != 0)
        return int((pred & target & valid).sum()), int(((pred | target) & valid).sum())

    if protocol == "seg-zero":
        return {
            "a:0": counts(gt_ignore),  # the 255 region is target (the hub copies the script reads)
            "a:1": counts(box),
            "a:2": (0, 360),  # the model failed: the script's failure branch, union = gt pixels
            "a:3": (0, 360),  # no {...} in the answer: failure
            "b:0": (0, 0),  # "[]" has no {...}: failure on an empty target, counted with IoU 0
            "c:0": None,  # unreadable image / gt: the script skips
            "d:0": None,
        }
    if protocol == "visionreasoner":
        return {
            "a:0": (0, 460),  # a Seg-Zero dict is not a list of bbox_2d objects: failure, union = 360 + 100
            "a:1": (0, 360),
            "a:2": (0, 360),
            "a:3": (0, 360),
            "b:0": None,  # "[]": no object, an empty mask on an empty target: union 0, skipped
            "c:0": None,
            "d:0": None,
        }
    return {  # lisa: segzero's mask, 255 excluded, nothing skipped
        "a:0": counts(gt_ignore, exclude=True),
        "a:1": counts(box, exclude=True),
        "a:2": (0, 360),
        "a:3": (0, 360),
        "b:0": (0, 0),
        "c:0": None,  # unreadable image / gt: no scoring at all
        "d:0": None,
    }


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["seg-zero", "visionreasoner", "lisa"])
def test_reference_protocol_beside_segzeros(dataset, pipeline, tmp_path, protocol):
    from segzero.eval.protocols import reference_iou

    summary, rec = _run(dataset, pipeline, tmp_path / protocol, protocol=protocol)
    expected = _reference_oracle(protocol, dataset[1], decode_mask(rec["a:0"]["pred_rle"]))
    got = {
        k: None if r["reference"]["union"] is None else (r["reference"]["intersection"], r["reference"]["union"])
        for k, r in rec.items()
    }
    assert got == expected
    kept = [v for v in expected.values() if v is not None]
    ious = [reference_iou(protocol, i, u) for i, u in kept]
    ref = summary["reference"]
    assert ref["protocol"] == protocol and ref["n"] == len(kept) and ref["skipped"] == len(expected) - len(kept)
    assert ref["gIoU"] == pytest.approx(np.mean(ious), abs=1e-12)
    eps = 1e-10 if protocol == "lisa" else 0.0
    assert ref["cIoU"] == pytest.approx(sum(i for i, _ in kept) / (sum(u for _, u in kept) + eps), abs=1e-12)
    differs = sum(v is None or abs(reference_iou(protocol, *v) - rec[k]["iou"]) > 1e-9 for k, v in expected.items())
    assert ref["differs"] == differs and ref["resegmented"] == 0
    own, _ = _run(dataset, pipeline, tmp_path / "own")  # segzero's own scores do not move with --protocol
    assert (summary["gIoU"], summary["cIoU"], summary["n"]) == (own["gIoU"], own["cIoU"], own["n"])
    assert "reference" not in own
