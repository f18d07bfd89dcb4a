"""The moving-shapes world: its masks against the rendered pixels, motion and occlusion, determinism, and the ReVOS
layout `segzero world build --layout video` writes (read back by the ReVOS reader).

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_video_world.py``
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from segzero.cli.main import main
from segzero.eval.revos import load_revos
from segzero.shapes.scene import COLOURS, ShapesConfig
from segzero.shapes.video import make_video_sample, track_centres, type_id

CONFIG = ShapesConfig(size=80)


@pytest.mark.parametrize("index", range(4))
def test_each_frames_masks_are_exactly_its_pixels_of_the_shapes_colour(index):
    # flat colours: a shape's visible mask is where the frame shows its colour (same-colour shapes never touch, so
    # a colour's pixels are the union of its shapes' masks) and the rest of the frame is the grey background
    s = make_video_sample(index, config=CONFIG, frames=5)
    colours = [d["colour"] for d in s["shapes"]]
    for t, frame in enumerate(s["frames"]):
        pixels = np.asarray(frame)
        for name in set(colours):
            shown = (pixels == COLOURS[name]).all(axis=2)
            union = np.logical_or.reduce([s["masks"][i, t] for i, c in enumerate(colours) if c == name])
            assert (shown == union).all(), (t, name)
        background = (pixels == CONFIG.background).all(axis=2)
        assert (background == ~s["masks"][:, t].any(axis=0)).all()


def test_shapes_move_and_pass_under_one_another():
    # over a few clips: every shape's silhouette changes between frames somewhere, and some frame hides part of one
    moved, occluded = False, False
    for index in range(6):
        s = make_video_sample(index, config=CONFIG, frames=6)
        full, vis = s["full_masks"], s["masks"]
        assert (vis <= full).all()  # visible parts lie inside the silhouettes
        moved |= bool((full[:, 1:] != full[:, :-1]).any())
        occluded |= bool((vis != full).any())
    assert moved and occluded


def test_a_clip_depends_only_on_its_seed_split_and_index():
    a, b = (make_video_sample(3, seed=5, config=CONFIG, frames=4) for _ in range(2))
    c = make_video_sample(3, seed=6, config=CONFIG, frames=4)
    assert all((np.asarray(x) == np.asarray(y)).all() for x, y in zip(a["frames"], b["frames"], strict=True))
    assert [q.text for q in a["queries"]] == [q.text for q in b["queries"]]
    assert not all((np.asarray(x) == np.asarray(y)).all() for x, y in zip(a["frames"], c["frames"], strict=True))


@pytest.mark.parametrize(
    ("start", "velocity", "want_x"),
    [
        (10.0, 2.0, [10, 12, 14, 16]),  # free flight
        (18.0, 3.0, [18, 19, 16, 13]),  # bounces off the right wall at 20
        (1.0, -2.0, [1, 1, 3, 5]),  # bounces off the left wall at 0 (reflected, not clipped: 1 -> -1 -> 1)
    ],
)
def test_track_centres_reflect_at_the_walls(start, velocity, want_x):
    got = track_centres((start, 5.0), (velocity, 0.0), (0.0, 0.0), (20.0, 9.0), 4)
    assert got[:, 0].tolist() == want_x and set(got[:, 1].tolist()) == {5.0}


def test_world_build_video_writes_the_revos_layout_read_back_as_the_worlds_masks(tmp_path):
    out = tmp_path / "video"
    argv = ["world", "build", "--layout", "video", "--out", str(out), "--n", "2", "--size", "72", "--frames", "3"]
    assert main(argv) == 0
    assert {p.name for p in out.iterdir()} == {
        "JPEGImages",
        "mask_dict.json",
        "meta_expressions_train_.json",
        "meta_expressions_valid_.json",
        "meta_expressions_test_.json",
        "world.json",
    }
    ds = load_revos(out)  # the valid split by default
    assert ds.split == "valid" and len(ds.videos) == 2
    for index in range(2):  # the reader's gt of each expression is the union of the world's masks of its answers
        s = make_video_sample(index, config=ShapesConfig(size=72), split="val", frames=3)
        mine = [e for e in ds.samples if e.video == s["id"]]
        assert [e.query for e in mine] == [q.text for q in s["queries"]]
        for e, q in zip(mine, s["queries"], strict=True):
            assert e.type_name == {0: "referring", 1: "reason"}[type_id(q.family)]
            gt = ds.gt(e, size=(72, 72))
            assert (gt == s["masks"][list(q.answers)].any(axis=0)).all()
        assert all(
            (np.asarray(a) == np.asarray(b)).all() for a, b in zip(ds.frames(s["id"]), s["frames"], strict=True)
        )
    meta = json.loads((out / "meta_expressions_valid_.json").read_text())["videos"]
    assert all(v["frames"] == ["00000", "00001", "00002"] for v in meta.values())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--frames", "0"], "--frames"),  # a clip needs a frame
        (["--answers", "mix"], "--answers"),  # one answer count per video set
    ],
)
def test_world_build_video_refuses_bad_options_in_one_line(tmp_path, capsys, extra, message):
    argv = ["world", "build", "--layout", "video", "--out", str(tmp_path / "v"), "--n", "1", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
