"""Tests of the shapes world (``segzero.shapes``): determinism, exact visible masks, answers re-derived by an
independent rule, held-out test wordings, and the layouts ``segzero train`` / ``segzero eval`` read.

Run: ``pytest -q tests/test_worlds.py`` (a few seconds, no models).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter

import numpy as np
import pytest
from scipy import ndimage

from segzero.shapes import COLOURS, ShapesConfig, generate_rows, make_sample
from segzero.shapes.queries import TEMPLATES

FLAT = ShapesConfig(size=112)
CONFIGS = {
    "flat": FLAT,
    "noise+texture": ShapesConfig(size=(128, 96), noise=12.0, texture=40.0),
    "no overlap, 2-3 shapes": ShapesConfig(size=96, overlap=False, min_shapes=2, max_shapes=3),
    "many shapes": ShapesConfig(size=160, min_shapes=5, max_shapes=7),
    "tint gradient": ShapesConfig(size=96, gradient=40.0),
}


# ----------------------------------------------------------------------------- independent answer rules
# Written from the query semantics in plain Python over the shapes' facts (kind, colour, centre, area), without
# the generator's answer code. The generator only emits clear queries, so plain argmax/argmin (no margins) agree.
CORNERS = {"circle": 0, "triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6, "star": 10}
AFFORD = {
    "afford_roll": {"circle"},
    "afford_stack": {"square", "hexagon"},
    "afford_sharp": {"triangle", "star"},
    "afford_sky": {"star"},
    "afford_honeycomb": {"hexagon"},
}


def _ref(shapes, p):
    hits = [i for i, s in enumerate(shapes) if s["kind"] == p["ref_kind"] and p["ref_colour"] in ("", s["colour"])]
    assert len(hits) == 1, f"reference {p} must name exactly one shape"
    return hits[0]


def _arg(shapes, idx, key, best):
    idx = list(idx)
    return {best(idx, key=key)} if idx else set()


def expected_answers(sample) -> set[int]:
    shapes, p, t = sample["shapes"], sample["params"], sample["template"]
    every = range(len(shapes))
    if t == "name":
        return {i for i in every if (shapes[i]["colour"], shapes[i]["kind"]) == (p["colour"], p["kind"])}
    if t == "colour_all":
        return {i for i in every if shapes[i]["colour"] == p["colour"]}
    if t == "kind_all":
        return {i for i in every if shapes[i]["kind"] == p["kind"]}
    if t in ("largest", "smallest", "largest_colour", "smallest_colour"):
        pool = [i for i in every if t in ("largest", "smallest") or shapes[i]["colour"] == p["colour"]]
        return _arg(shapes, pool, lambda i: shapes[i]["area"], max if t.startswith("largest") else min)
    if t in ("extreme", "extreme_kind"):
        pool = [i for i in every if t == "extreme" or shapes[i]["kind"] == p["kind"]]
        axis = "cx" if p["direction"] in ("left", "right") else "cy"
        return _arg(shapes, pool, lambda i: shapes[i][axis], min if p["direction"] in ("left", "top") else max)
    if t in ("relation", "relation_kind"):
        r = shapes[_ref(shapes, p)]
        side = {
            "left": lambda s: s["cx"] < r["cx"],
            "right": lambda s: s["cx"] > r["cx"],
            "above": lambda s: s["cy"] < r["cy"],
            "below": lambda s: s["cy"] > r["cy"],
        }[p["rel"]]
        return {
            i
            for i in every
            if shapes[i] is not r and side(shapes[i]) and p.get("kind", shapes[i]["kind"]) == shapes[i]["kind"]
        }
    if t == "closest":
        r = _ref(shapes, p)
        centre = [(s["cx"], s["cy"]) for s in shapes]
        return _arg(shapes, [i for i in every if i != r], lambda i: math.dist(centre[i], centre[r]), min)
    corners = [CORNERS[s["kind"]] for s in shapes]
    if t == "most_corners":
        return {i for i in every if corners[i] == max(corners)}
    if t == "fewest_corners":
        return {i for i in every if corners[i] == min(corners)}
    if t == "n_corners":
        return {i for i in every if corners[i] == p["n"]}
    if t == "more_corners":
        return {i for i in every if corners[i] > corners[_ref(shapes, p)]}
    counts = Counter(s["colour"] for s in shapes)
    if t == "unique_colour":
        return {i for i in every if counts[shapes[i]["colour"]] == 1}
    if t == "common_colour":
        top = max(counts.values())
        return {i for i in every if counts[shapes[i]["colour"]] == top}
    if t in AFFORD:
        return {i for i in every if shapes[i]["kind"] in AFFORD[t]}
    raise AssertionError(f"no independent rule for template {t!r}")


def _samples(n, **kw):
    return [make_sample(i, **kw) for i in range(n)]


def test_same_seed_gives_identical_bytes_and_other_seeds_differ():
    for layout in ("single", "multi", "eval"):
        a, b = make_sample(5, seed=11, layout=layout), make_sample(5, seed=11, layout=layout)
        assert a["image"].tobytes() == b["image"].tobytes() and a["mask"].tobytes() == b["mask"].tobytes()
        assert (a["problem"], a["solution"], a["answers"]) == (b["problem"], b["solution"], b["answers"])
    imgs = {make_sample(5, seed=s).get("image").tobytes() for s in (0, 1)} | {make_sample(6).get("image").tobytes()}
    assert len(imgs) == 3  # seed and index both matter
    # the split is part of the stream: val sample 0 is not train sample 0
    assert make_sample(0, split="val")["image"].tobytes() != make_sample(0, split="train")["image"].tobytes()


def test_dataset_builds_are_byte_identical():
    from segzero.shapes.datasets import build_dataset

    for layout in ("multi", "eval"):
        one = build_dataset(layout, split="val", n=6, seed=3, config=ShapesConfig(size=64, noise=5.0))
        two = build_dataset(layout, split="val", n=6, seed=3, config=ShapesConfig(size=64, noise=5.0))
        assert one.data.table.equals(two.data.table)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_visible_masks_are_exact(name):
    cfg = CONFIGS[name]
    for s in _samples(12, seed=4, config=cfg, layout="multi"):
        rgb = np.asarray(s["image"]).astype(int)
        masks = s["shape_masks"]
        assert masks.shape == (len(s["shapes"]), cfg.wh[1], cfg.wh[0])
        assert (masks.sum(axis=0) <= 1).all()  # visible masks never overlap
        for m, facts in zip(masks, s["shapes"], strict=True):
            assert m.sum() == facts["visible_area"] > 0
            assert (rgb[m] == COLOURS[facts["colour"]]).all()  # every visible pixel has the shape's colour
            assert ndimage.label(m)[1] == 1  # one connected visible region
        for colour, value in COLOURS.items():  # and every pixel of a shape colour belongs to such a shape
            painted = (rgb == value).all(axis=2)
            owners = [m for m, f in zip(masks, s["shapes"], strict=True) if f["colour"] == colour]
            assert np.array_equal(painted, np.logical_or.reduce(owners) if owners else np.zeros_like(painted))
        union = np.logical_or.reduce([masks[i] for i in s["answers"]]) if s["answers"] else np.zeros_like(s["mask"])
        assert np.array_equal(s["mask"], union)
        if cfg.noise == 0 and cfg.texture == 0 and cfg.gradient == 0:
            assert (rgb[~masks.any(axis=0)] == cfg.background).all()
        if not cfg.overlap:
            assert all(m.sum() == f["area"] for m, f in zip(masks, s["shapes"], strict=True))


def _flat_and(**option):
    """The same sample drawn flat and with a rendering ``option``: (flat pixels, option pixels, shape pixels)."""
    flat = make_sample(3, seed=2, config=ShapesConfig(size=96))
    other = make_sample(3, seed=2, config=ShapesConfig(size=96, **option))
    assert flat["problem"] == other["problem"] and np.array_equal(flat["shape_masks"], other["shape_masks"])
    return np.asarray(flat["image"]).astype(int), np.asarray(other["image"]).astype(int), flat["shape_masks"].any(0)


def test_shape_noise_changes_only_shape_pixels():
    # same scene and query; noise lands on the shapes only, the flat background is untouched
    a, b, fg = _flat_and(shape_noise=10.0)
    assert np.array_equal(a[~fg], b[~fg])
    assert (a[fg] != b[fg]).any() and np.abs(a[fg] - b[fg]).mean() < 15


def test_gradient_tints_the_background_by_position_only():
    # same scene and query; the background carries x in red-blue and y in green, the shapes keep their colours
    a, b, fg = _flat_and(gradient=40.0)
    assert np.array_equal(a[fg], b[fg])
    d = b - a  # the tint alone, on background pixels
    ys, xs = np.nonzero(~fg)
    left, right = d[ys[xs < 10], xs[xs < 10]], d[ys[xs > 85], xs[xs > 85]]
    top, bottom = d[ys[ys < 10], xs[ys < 10]], d[ys[ys > 85], xs[ys > 85]]
    assert left[:, 0].mean() < -10 < 10 < right[:, 0].mean() and left[:, 2].mean() > 10 > -10 > right[:, 2].mean()
    assert top[:, 1].mean() < -10 < 10 < bottom[:, 1].mean()
    assert np.abs(d).max() <= 21  # faint: +-gradient/2 per channel (rounding)


def test_every_query_has_the_answers_an_independent_rule_finds():
    seen = Counter()
    for split in ("train", "test"):
        for cfg in (FLAT, CONFIGS["many shapes"]):
            for s in _samples(160, seed=2, config=cfg, split=split, layout="multi", answers="any"):
                assert set(s["answers"]) == expected_answers(s), (s["problem"], s["shapes"], s["answers"])
                seen[s["template"]] += 1
    assert set(seen) == {t.name for t in TEMPLATES}  # every template was exercised
    counts = Counter(len(make_sample(i, layout="multi")["answers"]) for i in range(60))
    assert counts[0] and counts[1] and sum(v for k, v in counts.items() if k >= 2)  # none, one and several


@pytest.mark.parametrize(
    ("answerable_only", "vacuous_drawn"),
    [
        (False, True),  # the world's own draw: queries about stars / hexagons mean nothing in a world without them
        (True, False),  # answerable only: every "nothing" query is one that another scene of the world answers
    ],
)
def test_answerable_only_keeps_nothing_queries_that_the_scene_decides(answerable_only, vacuous_drawn):
    # oracle: the affordance table (which kinds each affordance means) against the world's kinds, read here
    from segzero.shapes.rules import AFFORDANCES

    config = ShapesConfig(size=96, kinds=("circle", "square", "triangle"), min_shapes=2, max_shapes=3)
    never = {f"afford_{name}" for name, kinds in AFFORDANCES.items() if not set(kinds) & set(config.kinds)}
    assert never == {"afford_sky", "afford_honeycomb"}
    templates = Counter(
        make_sample(i, seed=3, config=config, layout="eval", answers="none", answerable_only=answerable_only)[
            "template"
        ]
        for i in range(120)
    )
    assert bool(set(templates) & never) is vacuous_drawn
    assert len(templates) >= 5  # still many templates (names, colours, kinds, superlatives, affordances)


def test_query_text_names_its_parameters():
    for s in _samples(80, seed=9, layout="multi", answers="any"):
        for key in ("colour", "kind", "ref_kind"):
            if s["params"].get(key):
                assert s["params"][key] in s["problem"], (key, s["problem"])


_KIND = "(?:" + "|".join(CORNERS) + ")"
SLOTS = {  # what each wording slot may be filled with, so a pattern matches only its own wording
    "colour": "(?:" + "|".join(COLOURS) + ")",
    "kind": _KIND,
    "kinds": _KIND + "s",
    "extreme": "(?:leftmost|rightmost|topmost|bottommost)",
    "side": "(?:left|right|top|bottom)",
    "rel": "(?:left of|right of|above|below)",
    "n": "(?:three|four|five|six|ten)",
    "ref": "(?:(?:" + "|".join(COLOURS) + ") )?" + _KIND,
}


def _pattern(wording: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", lambda m: SLOTS[m.group(1)], re.escape(wording)) + "$")


def test_heldout_wordings_appear_only_in_test():
    heldout = [(_pattern(w), t.name) for t in TEMPLATES for w in t.heldout]
    seen = {t.name: [_pattern(w) for w in t.wordings] for t in TEMPLATES}
    for split in ("train", "val"):
        for s in _samples(150, seed=1, split=split, layout="multi", answers="any"):
            assert ":s" in s["wording"]
            assert not any(p.match(s["problem"]) for p, _ in heldout), s["problem"]
            assert any(p.match(s["problem"]) for p in seen[s["template"]])
    for s in _samples(150, seed=1, split="test", layout="multi", answers="any"):
        assert ":h" in s["wording"]
        assert any(p.match(s["problem"]) for p, name in heldout if name == s["template"]), s["problem"]
        assert not any(p.match(s["problem"]) for p in seen[s["template"]]), s["problem"]


def test_corpus_covers_every_query_word():
    from segzero.shapes.queries import corpus

    words = set(re.findall(r"[a-z]+", " ".join(corpus())))
    for split in ("train", "test"):
        for s in _samples(120, seed=12, split=split, layout="multi", answers="any"):
            assert set(re.findall(r"[a-z]+", s["problem"])) <= words, s["problem"]


def test_single_and_multi_solutions_describe_the_answer_masks():
    from segzero.parsing import parse_solution

    for s in _samples(25, seed=6, layout="single"):
        assert len(s["answers"]) == 1
        (obj,) = parse_solution(s["solution"])
        ys, xs = np.nonzero(s["mask"])
        assert obj.box == (xs.min(), ys.min(), xs.max(), ys.max())  # box = exact visible extent
        assert len(obj.points) == 2 and all(s["mask"][int(y), int(x)] for x, y in obj.points)
    for s in _samples(25, seed=6, layout="multi"):
        objs = parse_solution(s["solution"])
        assert len(objs) == len(s["answers"])
        for obj, i in zip(objs, s["answers"], strict=True):
            ys, xs = np.nonzero(s["shape_masks"][i])
            assert obj.box == (xs.min(), ys.min(), xs.max(), ys.max())
            (x, y), *_ = obj.points
            assert s["shape_masks"][i][int(y), int(x)]


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"split": "dev"}, "split"),  # only train / val / test exist
        ({"layout": "coco"}, "layout"),  # unknown layout
        ({"layout": "single", "answers": "several"}, "single"),  # single-object rows need exactly one answer
        ({"families": ("poetry",)}, "families"),  # unknown query family
    ],
)
def test_bad_arguments_are_refused(kwargs, error):
    with pytest.raises(ValueError, match=error):
        make_sample(0, **kwargs)


def test_bad_config_is_refused():
    # a kind the renderer cannot draw
    with pytest.raises(ValueError, match="unknown shape"):
        ShapesConfig(kinds=("circle", "octagon"))


def test_generate_rows_keeps_the_training_columns():
    rows = generate_rows(3, seed=0, size=80)
    assert [sorted(r) for r in rows] == [sorted(["id", "problem", "solution", "image", "img_height", "img_width"])] * 3
    assert rows[0]["image"].size == (80, 80) and rows[0]["solution"].startswith("<box>")


def test_layouts_load_in_train_and_eval(tmp_path):
    from segzero.cli.main import main
    from segzero.eval.datasets import load_eval_dataset
    from segzero.train.data import load_raw_dataset, prepare_dataset

    for layout, kind in (("single", "segzero"), ("multi", "visionreasoner")):
        out = tmp_path / layout
        assert (
            main(["world", "build", "--out", str(out), "--layout", layout, "--n", "train=12,test=4", "--size", "96"])
            == 0
        )
        raw = load_raw_dataset(str(out), split="train")
        ds, bad = prepare_dataset(raw, kind=kind, prompt_kind=kind, frame=112)
        assert bad == [] and len(ds) == 12  # every row passes the bad-row rule, rescaled to the 112 frame
        if layout == "multi":
            assert "[]" in raw["solution"]  # no-answer rows are kept as empty gt lists
    out = tmp_path / "eval"
    argv = ["world", "build", "--out", str(out), "--layout", "eval", "--split", "val", "--n", "8", "--answers", "any"]
    assert main([*argv, "--size", "64"]) == 0
    info = json.loads((out / "world.json").read_text())
    assert info["splits"] == {"val": 8} and info["layout"] == "eval"
    ds = load_eval_dataset(str(out), split="val")
    assert len(ds) == 8
    for info_ in ds.samples:
        ref = make_sample(info_.index, split="val", layout="eval", answers="any", config=ShapesConfig(size=64))
        assert info_.query == ref["problem"]
        assert np.array_equal(ds.mask(info_), ref["mask"].astype(np.uint8))
        assert np.array_equal(np.asarray(ds.image(info_)), np.asarray(ref["image"]))


@pytest.mark.parametrize(
    "extra, word",
    [
        (["--families", "poetry"], "poetry"),  # unknown query family
        (["--kinds", "circle", "octagon"], "octagon"),  # a kind the renderer cannot draw
        (["--min-shapes", "4", "--max-shapes", "2"], "min-shapes"),  # empty range of shape counts
        (["--layout", "single", "--answers", "any"], "single"),  # single-object rows need exactly one answer
    ],
)
def test_cli_refuses_bad_options(tmp_path, capsys, extra, word):
    from segzero.cli.main import main

    assert main(["world", "build", "--out", str(tmp_path / "x"), *extra]) == 2
    assert word in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_kinds_and_colours_restrict_the_world(tmp_path):
    import datasets

    from segzero.cli.main import main

    argv = ["world", "build", "--out", str(tmp_path / "w"), "--n", "train=10", "--kinds", "circle", "square"]
    assert main([*argv, "--colours", "red", "blue", "--no-meta"]) == 0
    ds = datasets.load_from_disk(str(tmp_path / "w"))["train"]
    assert ds.column_names == ["id", "problem", "solution", "image", "img_height", "img_width"]
    info = json.loads((tmp_path / "w" / "world.json").read_text())
    assert info["config"]["kinds"] == ["circle", "square"] and info["config"]["colours"] == ["red", "blue"]
    for text in ds["problem"]:
        assert not re.search(r"triangle|pentagon|hexagon|star|green|yellow|purple|orange", text), text


def test_cli_preview_writes_a_contact_sheet(tmp_path):
    from PIL import Image

    from segzero.cli.main import main

    out = tmp_path / "sheet.png"
    assert main(["world", "preview", "--out", str(out), "--n", "5", "--size", "64", "--split", "test"]) == 0
    with Image.open(out) as im:
        assert im.size == (4 * 64, 2 * (64 + 28))  # 4 columns, 2 rows of scene + caption
