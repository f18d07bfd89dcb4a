"""End-to-end tests of ``SegZeroPipeline`` on the tiny offline models (loaded from disk with from_pretrained).

The tiny reasoner has random weights, so its completions are mostly unparseable: the SAM path is checked with
known completions through ``pipe.segment`` / ``pipe.segment_many`` against direct ``Segmenter.predict`` calls.
Run: ``OMP_NUM_THREADS=1 pytest tests/test_pipeline.py -x -q``
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segzero.answer import Answer, SegObject
from segzero.errors import UserError
from segzero.pipeline import SegResult, SegZeroPipeline

FRAME = 56  # small model frame keeps generation fast
SINGLE = '<think>the cup</think><answer>{"bbox": [10, 5, 30, 40], "points_1": [15, 10], "points_2": [25, 30]}</answer>'
MULTI = (
    '<think>two</think><answer>[{"bbox_2d": [0, 0, 20, 20], "point_2d": [10, 10]}, '
    '{"bbox_2d": [30, 30, 55, 50], "point_2d": [40, 40]}]</answer>'
)

pytestmark = pytest.mark.slow


def _noise(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def pipe(tiny_models) -> SegZeroPipeline:
    return SegZeroPipeline.from_pretrained(
        reasoner=tiny_models["reasoner"], segmenter=tiny_models["segmenter"], frame=FRAME, max_new_tokens=6
    )


def _same(a: SegResult, b: SegResult) -> bool:
    return (
        a.completion == b.completion
        and a.parse_ok == b.parse_ok
        and a.objects == b.objects
        and np.array_equal(a.mask, b.mask)
        and np.allclose(a.scores, b.scores)
    )


def test_call_gives_mask_at_original_size(pipe):
    res = pipe(_noise(123, 77), "the cat on the left.")
    assert res.mask.shape == (77, 123) and res.mask.dtype == bool
    assert res.size == (123, 77)
    # (a random model may or may not parse: the failure and success branches have their own tests below, with
    # completions given)
    assert set(res.to_json()) >= {"reasoning", "objects", "scores", "parse_ok", "parse_error", "completion", "answer"}


@pytest.mark.parametrize(
    "completion, n_objects, layout",
    [
        (SINGLE, 1, "single"),  # Seg-Zero: box + both points in one SAM prompt
        (MULTI, 2, "multi"),  # VisionReasoner: each object's box + its point, masks OR-ed
        ("<answer>{'bbox': [10,5,30,40], 'points_1': [15,10], 'points_2': [25,30]}</answer>", 1, "single"),
        # single quotes, as in the prompt's own example: tolerant parsing still reads it
    ],
)
def test_known_answer_matches_direct_sam_call(pipe, completion, n_objects, layout):
    image = _noise(200, 100, seed=3)
    res = pipe.segment(image, completion)
    assert res.parse_ok and res.answer.layout == layout and len(res.objects) == n_objects
    # objects are mapped from the 56 x 56 frame to 200 x 100 pixels
    from segzero.geometry import to_original

    assert res.objects == [to_original(o, size=(200, 100), frame=FRAME) for o in res.answer.objects]
    pipe.segmenter.set_image(image)
    boxes = [o.box for o in res.objects]
    points = [o.points for o in res.objects]
    direct = pipe.segmenter.predict(boxes=boxes, points=points, labels=np.ones((n_objects, len(points[0]))))
    np.testing.assert_array_equal(np.stack(res.object_masks), direct.object_masks)
    np.testing.assert_allclose(res.scores, direct.scores, rtol=1e-6)
    np.testing.assert_array_equal(res.mask, np.logical_or.reduce(direct.object_masks, axis=0))


def test_answer_outside_frame_is_clipped(pipe):
    answer = Answer(objects=(SegObject((-40.0, -3.0, 900.0, 70.0), ((60.0, 80.0),)),), ok=True, layout="multi")
    res = pipe.segment(_noise(30, 20), answer)
    (obj,) = res.objects
    assert obj.box == (0, 0, 29, 19) and obj.points == ((29, 19),)
    assert res.mask.shape == (20, 30)


@pytest.mark.parametrize(
    "completion",
    [
        "I cannot see anything",  # no answer at all
        "<think>hmm</think><answer>{bbox: oops</answer>",  # broken JSON
        '<answer>{"bbox": [1, 2, "x", 4], "points_1": [1, 1], "points_2": [2, 2]}</answer>',  # not numbers
    ],
)
def test_unparseable_completion_is_an_empty_result(pipe, completion):
    res = pipe.segment(_noise(40, 30), completion)
    assert not res.parse_ok and res.parse_error
    assert res.mask.shape == (30, 40) and not res.mask.any() and res.objects == [] and res.object_masks == []


def test_empty_multi_answer_is_ok_and_empty(pipe):
    # a correct "nothing here" answer: parsed fine, no objects, empty mask, SAM not needed
    before = pipe.segmenter.num_embeddings
    res = pipe.segment(_noise(40, 30), "<think>none</think><answer>[]</answer>")
    assert res.parse_ok and res.objects == [] and not res.mask.any()
    assert pipe.segmenter.num_embeddings == before


def test_segment_many_embeds_each_distinct_image_once(pipe):
    a, b, c = _noise(64, 48, 1), _noise(64, 48, 2), _noise(30, 90, 3)
    images = [a, b, a.copy(), c, b, a]  # 3 distinct images (a copy counts as the same image)
    completions = [SINGLE, MULTI, MULTI, SINGLE, SINGLE, "no answer"]
    before = pipe.segmenter.num_embeddings
    many = pipe.segment_many(images, completions)
    assert pipe.segmenter.num_embeddings - before == 3
    single = [pipe.segment(im, comp) for im, comp in zip(images, completions, strict=True)]
    assert all(_same(x, y) for x, y in zip(many, single, strict=True))


@pytest.mark.parametrize(
    ("completions", "calls"),
    [
        ([SINGLE, SINGLE, SINGLE], 1),  # three queries on one image: one mask-decoder call for all their objects
        ([SINGLE, "no answer", SINGLE], 1),  # an unusable answer adds nothing to decode
        (["no answer"] * 3, 0),  # nothing to decode: no call
    ],
)
def test_segment_many_decodes_an_image_once(pipe, monkeypatch, completions, calls):
    seen = []
    real = pipe.segmenter.predict
    monkeypatch.setattr(pipe.segmenter, "predict", lambda **kw: seen.append(kw) or real(**kw))
    image = _noise(64, 48, 7)
    many = pipe.segment_many([image] * len(completions), completions)
    assert len(seen) == calls
    monkeypatch.setattr(pipe.segmenter, "predict", real)
    single = [pipe.segment(image, comp) for comp in completions]  # oracle: each completion on its own
    assert all(_same(x, y) for x, y in zip(many, single, strict=True))


def test_batch_equals_single_calls(pipe):
    images = [_noise(64, 48, 1), _noise(100, 50, 2), _noise(64, 48, 1), _noise(20, 30, 4)]
    queries = ["the cat", "the man holding an umbrella", "a dog", "the red car on the left"]
    batched = pipe.batch(images, queries, batch_size=3)
    single = [pipe(im, q) for im, q in zip(images, queries, strict=True)]
    assert all(_same(x, y) for x, y in zip(batched, single, strict=True))
    assert [r.mask.shape for r in batched] == [(48, 64), (50, 100), (48, 64), (30, 20)]


@pytest.fixture(scope="module")
def answering_pipe(tiny_answering_models) -> SegZeroPipeline:
    return SegZeroPipeline.from_pretrained(
        reasoner=tiny_answering_models["reasoner"],
        segmenter=tiny_answering_models["segmenter"],
        frame=FRAME,
        max_new_tokens=80,
    )


@pytest.mark.parametrize(
    "order, batch_size, distinct",
    [
        ("abac", 8, 3),  # one chunk: a is embedded once although it appears twice
        ("abac", 2, 3),  # equal images are grouped, so a's two uses land in one chunk
        ("aab", 1, 2),  # chunks of one: a's embedding is carried into the next chunk
    ],
)
def test_full_path_one_embedding_per_distinct_image(answering_pipe, order, batch_size, distinct):
    from segzero.geometry import to_original
    from segzero.models.tiny.teach import TAUGHT_ANSWER
    from segzero.parsing import parse_answer

    pool = {"a": _noise(64, 48, 1), "b": _noise(90, 40, 2), "c": _noise(33, 70, 3)}
    images = [pool[k].copy() for k in order]
    queries = [f"object number {i}" for i in range(len(order))]
    before = answering_pipe.segmenter.num_embeddings
    results = answering_pipe.batch(images, queries, batch_size=batch_size)
    assert answering_pipe.segmenter.num_embeddings - before == distinct
    expected = parse_answer(TAUGHT_ANSWER).objects
    for im, res in zip(images, results, strict=True):
        # the reasoner's answer went through parsing, frame -> pixel mapping and SAM
        assert res.completion == TAUGHT_ANSWER and res.parse_ok and res.reasoning == "The object is in the middle."
        assert res.objects == [to_original(o, size=im.size, frame=FRAME) for o in expected]
        assert res.mask.shape == (im.height, im.width) and len(res.object_masks) == 1
    single = [answering_pipe(im, q) for im, q in zip(images, queries, strict=True)]
    assert all(_same(x, y) for x, y in zip(results, single, strict=True))


def _save(tmp_path, name: str, im: Image.Image, **kw) -> str:
    path = tmp_path / name
    im.save(path, **kw)
    return str(path)


def _exif_rotated(tmp_path) -> str:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees on display -> width and height swap
    return _save(tmp_path, "rot.jpg", _noise(40, 20), exif=exif)


@pytest.mark.parametrize(
    "make, size",
    [
        (lambda p: _save(p, "gray.png", _noise(33, 21).convert("L")), (33, 21)),  # grayscale
        (lambda p: _save(p, "rgba.png", _noise(33, 21).convert("RGBA")), (33, 21)),  # alpha channel
        (
            lambda p: _save(p, "16bit.png", Image.fromarray(np.full((21, 33), 40000, dtype=np.uint16))),
            (33, 21),
        ),  # 16-bit grayscale PNG
        (lambda p: _save(p, "one.png", _noise(1, 1)), (1, 1)),  # a single pixel
        (lambda p: _save(p, "wide.png", _noise(5000, 300)), (5000, 300)),  # very wide
        (_exif_rotated, (20, 40)),  # EXIF orientation applied: 40 x 20 stored, 20 x 40 shown
        (lambda p: np.zeros((12, 17), dtype=np.uint8), (17, 12)),  # a numpy array, not a file
    ],
)
def test_odd_images_go_through(pipe, tmp_path, make, size):
    src = make(tmp_path)
    res = pipe(src, "the thing")
    assert res.mask.shape == (size[1], size[0])
    # and the SAM path with a known answer works on the same image
    known = pipe.segment(src, SINGLE)
    assert known.parse_ok and known.mask.shape == (size[1], size[0]) and len(known.object_masks) == 1


@pytest.mark.parametrize(
    "images, queries, message",
    [
        ([np.zeros((4, 4, 3), np.uint8)], [""], "query is empty"),  # empty query
        ([np.zeros((4, 4, 3), np.uint8)], ["a", "b"], "queries"),  # length mismatch
        (["/nonexistent/img.png"], ["a"], "not found"),  # missing file
    ],
)
def test_batch_bad_input_raises_user_error(pipe, images, queries, message):
    with pytest.raises(UserError, match=message):
        pipe.batch(images, queries)
