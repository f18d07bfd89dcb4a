"""Video propagation and the video pipeline's pieces: keyframe plans, reading clips (frame folders, video files),
colour tracking against the moving-shapes world's exact masks, and SAM2's video model (a tiny random one built from
its config, loaded through from_pretrained like facebook/sam2-hiera-large).

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_video_propagation.py``
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segzero.errors import UserError
from segzero.models.video import ColorTracker, default_propagator_for, load_propagator
from segzero.shapes.scene import ShapesConfig
from segzero.shapes.video import make_video_sample
from segzero.video import keyframe_plan, load_video

CONFIG = ShapesConfig(size=80)


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    from segzero.models.tiny.video import build_tiny_video_segmenter

    return build_tiny_video_segmenter(tmp_path_factory.mktemp("tiny_video") / "sam2_video")


@pytest.fixture(scope="module")
def tiny_sam3_tracker(tmp_path_factory):
    from segzero.models.tiny.video import build_tiny_sam3_tracker

    return build_tiny_sam3_tracker(tmp_path_factory.mktemp("tiny_sam3") / "sam3_tracker_video")


@pytest.mark.parametrize(
    ("n", "count", "want"),
    [
        (8, 1, [(3, 0, 8)]),  # one keyframe: the middle frame
        (9, 1, [(4, 0, 9)]),  # odd length: the exact middle
        (10, 2, [(2, 0, 5), (7, 5, 10)]),  # two equal halves
        (7, 3, [(0, 0, 2), (3, 2, 5), (5, 5, 7)]),  # near-equal thirds (2, 3, 2 frames)
        (2, 5, [(0, 0, 1), (1, 1, 2)]),  # more keyframes than frames: every frame its own
    ],
)
def test_keyframe_plan_cuts_equal_segments_with_middle_keyframes(n, count, want):
    plan = keyframe_plan(n, count)
    assert plan == want
    assert [s for _, s, _ in plan] == [0] + [e for _, _, e in plan][:-1] and plan[-1][2] == n  # a partition


def test_load_video_reads_a_frame_folder_in_numeric_order(tmp_path):
    for t in (10, 2, 1):  # written out of order; "10" sorts after "2"
        Image.new("RGB", (6, 4), (t, 0, 0)).save(tmp_path / f"f{t}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    video = load_video(tmp_path)
    assert video.names == ["f1", "f2", "f10"] and [np.asarray(f)[0, 0, 0] for f in video.frames] == [1, 2, 10]
    assert load_video(tmp_path, stride=2).names == ["f1", "f10"] and load_video(tmp_path, max_frames=1).names == ["f1"]


def test_load_video_reads_a_video_file(tmp_path):
    import cv2

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (32, 24))
    for t in range(6):
        writer.write(np.full((24, 32, 3), 40 * t, dtype=np.uint8))
    writer.release()
    video = load_video(path)
    assert len(video.frames) == 6 and video.size == (32, 24) and video.fps == pytest.approx(5.0)
    grey = [int(np.asarray(f).mean()) for f in video.frames]
    assert all(abs(g - 40 * t) <= 3 for t, g in enumerate(grey))  # MJPG is lossy: close, in order


def _mixed_sizes(tmp_path):
    Image.new("RGB", (6, 4)).save(tmp_path / "a.png")
    Image.new("RGB", (5, 4)).save(tmp_path / "b.png")
    return tmp_path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "video not found"),  # nothing there
        (lambda p: p, "no frame images"),  # an empty folder
        (_mixed_sizes, "differ in size"),  # frames of two sizes
        (lambda p: (p / "x.txt").write_text("x") and p / "x.txt", "not a video file"),  # a file that is no video
    ],
)
def test_load_video_refuses_bad_sources_in_one_line(tmp_path, make, message):
    with pytest.raises(UserError, match=message):
        load_video(make(tmp_path))


@pytest.mark.parametrize(("index", "keyframe"), [(0, 0), (1, 2), (2, 5), (3, 3)])
def test_color_tracking_reproduces_the_worlds_masks_from_any_keyframe(index, keyframe):
    # flat colours and small steps: each shape's mask on the keyframe is followed exactly, forwards and backwards,
    # through occlusion; oracle: the world's own per-frame visible masks
    s = make_video_sample(index, config=CONFIG, frames=6)
    masks = s["masks"]  # (S, T, H, W)
    tracked = ColorTracker().propagate(s["frames"], keyframe, masks[:, keyframe])
    assert tracked.shape == masks.shape and (tracked == masks).all()


def test_color_tracking_loses_and_finds_an_object_again():
    # a red square that disappears on frame 1 and comes back shifted on frame 2
    frames, truth = [], []
    for x in (4, None, 6):
        pixels = np.full((20, 20, 3), 235, dtype=np.uint8)
        m = np.zeros((20, 20), dtype=bool)
        if x is not None:
            m[5:10, x : x + 5] = True
            pixels[m] = (220, 40, 40)
        frames.append(Image.fromarray(pixels))
        truth.append(m)
    tracked = ColorTracker().propagate(frames, 0, truth[0][None])
    assert (tracked[0] == np.stack(truth)).all()


@pytest.mark.parametrize(
    ("model", "description"),
    [
        ("tiny_video", "SAM2 video"),  # a sam2_video checkpoint, as facebook/sam2-hiera-large
        ("tiny_sam3_tracker", "SAM3 tracker video"),  # SAM3's video tracker: the same session interface
    ],
)
def test_tiny_video_models_track_through_the_clip(request, model, description):
    s = make_video_sample(0, config=CONFIG, frames=4)
    keyframe_masks = s["masks"][:, 1]
    keyframe_masks[0] = False  # an object with an empty keyframe mask stays empty
    prop = load_propagator(request.getfixturevalue(model))
    assert prop.description == description
    tracked = prop.propagate(s["frames"], 1, keyframe_masks)
    assert tracked.shape == s["masks"].shape and tracked.dtype == bool
    assert (tracked[:, 1] == keyframe_masks).all()  # the keyframe's masks as given
    assert not tracked[0].any()
    assert tracked[1:, [0, 2, 3]].any()  # the random model predicts something on the other frames
    again = prop.propagate(s["frames"], 1, keyframe_masks)
    assert (again == tracked).all()  # deterministic


def test_a_sam2_video_checkpoint_also_loads_as_the_keyframe_segmenter(tiny_video):
    # the hub's facebook/sam2-* checkpoints are sam2_video: one folder serves the image segmenter and the propagator
    from segzero.models.segmenter import Segmenter

    seg = Segmenter.from_pretrained(tiny_video)
    seg.set_image(Image.new("RGB", (40, 30), (200, 30, 30)))
    assert seg.predict(boxes=[[5, 5, 20, 20]]).mask.shape == (30, 40)


def test_an_image_only_sam2_checkpoint_is_refused_as_a_propagator(tiny_models):
    with pytest.raises(UserError, match="without a video model"):
        load_propagator(tiny_models["segmenter"])


@pytest.mark.parametrize(
    ("segmenter", "want"),
    [
        ("color", "color"),  # the colour segmenter's counterpart: colour tracking
        ("facebook/sam2-hiera-large", "facebook/sam2-hiera-large"),  # a SAM2 checkpoint carries its video model
    ],
)
def test_default_propagator_follows_the_segmenter(segmenter, want):
    assert default_propagator_for(segmenter) == want


def test_grabcut_has_no_default_propagator():
    with pytest.raises(UserError, match="--propagator"):
        default_propagator_for("grabcut")
