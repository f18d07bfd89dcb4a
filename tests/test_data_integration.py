"""Built data in the rest of the system: the GRPO data loader, ``segzero eval`` loaders, the ReasonSeg
converter, the SAM2 quality filter (tiny random SAM2) and the veRL export.

Run: ``pytest tests/test_data_integration.py -q``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from segzero.cli.main import main
from segzero.data.build import BuildConfig, build
from segzero.data.export import load_built
from segzero.data.synthetic import write_refer_fixture


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return write_refer_fixture(tmp_path_factory.mktemp("fx"), n_images=2, seed=2)


def _cfg(fx, out, **kw):
    return BuildConfig(
        source="refcocog",
        refer_dir=str(fx["refer_dir"]),
        images_dir=str(fx["images_dir"]),
        out=str(out),
        progress=False,
        **kw,
    )


@pytest.mark.parametrize(("layout", "kind"), [("single", "segzero"), ("multi", "visionreasoner")])
def test_training_loader_accepts_built_data(fx, tmp_path, layout, kind):
    # every written row must pass the trainer's bad-row rule (parseable gt inside the stored 840 image)
    train_data = pytest.importorskip("segzero.train.data")
    out = tmp_path / "out"
    stats = build(_cfg(fx, out, layout=layout))
    raw = train_data.load_raw_dataset(str(out), split="train")
    ds, bad = train_data.prepare_dataset(raw, kind=kind, prompt_kind=kind, frame=840)
    assert bad == []
    assert len(ds) == stats["rows_written"] > 0
    assert ds[0]["solution"] == load_built(out)[0]["solution"]  # already in the model frame: unchanged


def test_eval_loader_reads_refer_annotations(fx):
    # segzero eval opens RefCOCO-family splits through segzero.data.refer
    eval_datasets = pytest.importorskip("segzero.eval.datasets")
    ds = eval_datasets.load_eval_dataset(
        str(fx["refer_dir"]), split="val", refer_dataset="refcocog", images_dir=str(fx["images_dir"])
    )
    val = [r for r in fx["refs"] if r["split"] == "val"]
    assert len(ds.samples) == sum(len(r["sentences"]) for r in val)
    info = ds.samples[0]
    ref = next(r for r in val if str(r["ref_id"]) == info.ann_id)
    np.testing.assert_array_equal(ds.mask(info).astype(bool), fx["masks"][ref["ann_id"]])


def _lisa_folder(root):
    """Two ReasonSeg-style images: one target polygon each, the second with an 'ignore' polygon too."""
    folder = root / "ReasonSeg" / "val"
    folder.mkdir(parents=True)
    shapes = [
        [{"label": "target", "points": [[2, 2], [20, 2], [20, 15], [2, 15]]}],
        [
            {"label": "target", "points": [[5, 5], [30, 5], [30, 25], [5, 25]]},
            {"label": "ignore", "points": [[10, 10], [15, 10], [15, 14], [10, 14]]},
        ],
    ]
    for i, sh in enumerate(shapes):
        Image.fromarray(np.full((32, 40, 3), 60 * i, dtype=np.uint8)).save(folder / f"img{i}.jpg")
        (folder / f"img{i}.json").write_text(
            json.dumps({"text": [f"Query {i}?", f"Other {i}"], "is_sentence": True, "shapes": sh})
        )
    return root / "ReasonSeg"


@pytest.mark.parametrize(
    ("ignore", "sentences", "rows", "ignore_left"),
    [
        ("ignore", "first", 2, True),  # LISA protocol: 255 kept; one row per image
        ("target", "all", 4, False),  # hub-copy protocol: ignore pixels became target; every sentence a row
    ],
)
def test_convert_reasonseg_loads_in_eval(tmp_path, ignore, sentences, rows, ignore_left):
    pytest.importorskip("segzero.data.lisa")
    eval_datasets = pytest.importorskip("segzero.eval.datasets")
    lisa = _lisa_folder(tmp_path)
    out = tmp_path / "converted"
    assert (
        main(
            [
                "data",
                "convert-reasonseg",
                "--lisa-dir",
                str(lisa),
                "--split",
                "val",
                "--out",
                str(out),
                "--ignore",
                ignore,
                "--sentences",
                sentences,
            ]
        )
        == 0
    )
    ds = eval_datasets.load_eval_dataset(str(out), split="val")
    assert len(ds.samples) == rows
    masks = [ds.mask(s) for s in ds.samples]
    assert all(m.shape == (32, 40) for m in masks)
    assert any((m == 255).any() for m in masks) is ignore_left
    assert int((masks[0] == 1).sum()) == 19 * 14  # LISA rasterisation of the first rectangle (inclusive)
    assert ds.image(ds.samples[0]).size == (40, 32)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("min_iou", "kept"),
    [
        (0.0, True),  # every IoU passes a zero threshold: nothing dropped, every object scored
        (1.0, False),  # a random tiny SAM2 never reproduces a mask exactly: every object dropped, reason counted
    ],
)
def test_sam_filter_with_tiny_segmenter(tiny_models, tmp_path, min_iou, kept):
    pytest.importorskip("segzero.models.segmenter")
    info = write_refer_fixture(tmp_path / "fx", n_images=1, seed=5, broken=False)
    stats = build(
        BuildConfig(
            source="refcocog",
            refer_dir=str(info["refer_dir"]),
            images_dir=str(info["images_dir"]),
            out=str(tmp_path / "out"),
            progress=False,
            sam_filter=str(tiny_models["segmenter"]),
            min_iou=min_iou,
            sam_device="cpu",
        )
    )
    objects = sum(stats["histograms"]["sam_iou"])
    assert objects == 3  # the three train annotations of the image were each prompted once
    if kept:
        assert stats["rows_written"] == info["good_rows"]["train"] and stats["dropped_rows"] == {}
    else:
        assert stats["rows_written"] == 0
        assert stats["dropped_rows"] == {"sam_iou_below_threshold": info["good_rows"]["train"]}
        assert stats["dropped_objects"] == {"sam_iou_below_threshold": 3}


def test_verl_export(fx, tmp_path):
    pytest.importorskip("segzero.train.verl")
    out = tmp_path / "out"
    build(_cfg(fx, out))
    target = tmp_path / "verl" / "train.parquet"
    assert main(["data", "export", "--format", "verl", "--data", str(out), "--out", str(target)]) == 0
    assert target.is_file() and target.stat().st_size > 0
    from segzero.train.verl import export_verl_file

    result = export_verl_file(out, tmp_path / "again.parquet")  # the reusable entry point, kind from layout
    assert result["rows"] == len(load_built(out)) and result["dropped"] == []
