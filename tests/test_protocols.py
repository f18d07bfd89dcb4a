"""Tests of the reference evaluation protocols (``segzero.eval.protocols``): each expected value is what the
reference script's own lines compute, written out by hand. End-to-end runs: tests/test_eval_accounting.py.

Run: ``pytest tests/test_protocols.py -q``
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from segzero.answer import SegObject
from segzero.eval.protocols import reference_counts, reference_iou, reference_objects, score_reference

SZ_ANSWER = '"points_1": [1, 1], "points_2": [2, 2]}'


@pytest.mark.parametrize(
    ("completion", "size", "expected"),
    [
        # round(int(v) * 0.5): 10.7 truncates to 10 -> 5; 1 -> 0.5 -> 0 and 105 -> 52.5 -> 52 (half to even)
        (
            '<think>a</think><answer>{"bbox": [10.7, 1, 105, 3], ' + SZ_ANSWER + "</answer>",
            (420, 420),
            [SegObject((5, 0, 52, 2), ((0, 0), (1, 1)))],
        ),
        # no <think> block: the script's think_text is unbound, its failure branch
        ('<answer>{"bbox": [1, 1, 5, 5], ' + SZ_ANSWER + "</answer>", (840, 840), None),
        # an empty think does not match <think>([^<]+)</think> either
        ('<think></think><answer>{"bbox": [1, 1, 5, 5], ' + SZ_ANSWER + "</answer>", (840, 840), None),
        # single quotes are not JSON
        (
            "<think>a</think><answer>{'bbox': [1, 1, 5, 5], 'points_1': [1, 1], 'points_2': [2, 2]}</answer>",
            (840, 840),
            None,
        ),
        # the first {...} anywhere is the answer, even outside <answer> tags ...
        (
            '<think>a</think> {"bbox": [1, 1, 5, 5], ' + SZ_ANSWER,
            (840, 840),
            [SegObject((1, 1, 5, 5), ((1, 1), (2, 2)))],
        ),
        # ... so a brace in the reasoning is read first, and fails
        ('<think>see {a}</think><answer>{"bbox": [1, 1, 5, 5], ' + SZ_ANSWER + "</answer>", (840, 840), None),
        # one point key: the points are unbound, failure
        ('<think>a</think><answer>{"bbox": [1, 1, 5, 5], "points_1": [1, 1]}</answer>', (840, 840), None),
        # any key containing "bbox" / "points"; numbers as strings go through int(); nothing is clipped
        (
            '<think>a</think>{"bbox_2d": ["900", 1, 5, 5], "points_a": [1, 1], "points_b": [2, 2]}',
            (840, 840),
            [SegObject((900, 1, 5, 5), ((1, 1), (2, 2)))],
        ),
    ],
)
def test_seg_zero_reads_answers_like_its_script(completion, size, expected):
    assert reference_objects("seg-zero", completion, size=size, frame=840) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # int(v * f + 0.5) with fx = 1, fy = 0.5: 1 -> 1.0 -> 1, 3 -> 2.0 -> 2, 5 -> 3.0 -> 3
        ('[{"bbox_2d": [10, 1, 20, 3], "point_2d": [15, 5]}]', [SegObject((10, 1, 20, 2), ((15, 3),))]),
        ('[{"bbox_2d": [10.5, 0, 20, 2], "point_2d": [0, 0]}]', [SegObject((11, 0, 20, 1), ((0, 0),))]),  # 11.0
        ('[{"bbox_2d": [-3, 0, 20, 2], "point_2d": [0, 0]}]', [SegObject((-2, 0, 20, 1), ((0, 0),))]),  # int(-2.5)
        ("[]", []),  # no object: an empty mask, not a failure
        ('{"bbox_2d": [1, 1, 5, 5], "point_2d": [2, 2]}', None),  # a dict iterates its keys: failure
        ('[{"bbox": [1, 1, 5, 5], "points_1": [2, 2]}]', None),  # Seg-Zero's keys: failure
    ],
)
def test_visionreasoner_reads_answers_like_its_script(answer, expected):
    text = f"<think>a</think><answer>\n{answer}\n</answer>"
    assert reference_objects("visionreasoner", text, size=(840, 420), frame=840) == expected
    assert reference_objects("visionreasoner", answer, size=(840, 420), frame=840) is None  # no <answer> tags


GT = np.array([[1, 1, 0], [255, 0, 0]], dtype=np.uint8)
PRED = np.array([[1, 0, 0], [1, 1, 0]], dtype=bool)


@pytest.mark.parametrize(
    ("protocol", "pred", "gt", "expected", "iou"),
    [
        ("seg-zero", PRED, GT, (2, 4), 0.5),  # 255 is target: I = 2, U = 4
        ("lisa", PRED, GT, (1, 3), 1 / (3 + 1e-5)),  # 255 excluded: I = 1, U = 3, LISA's epsilon
        ("segzero", PRED, GT, (1, 3), 1 / 3),
        ("seg-zero", None, GT, (0, 3), 0.0),  # failed answer: union = gt pixels (255 included)
        ("seg-zero", None, np.zeros((2, 3), np.uint8), (0, 0), 0.0),  # failed on an empty target: IoU 0
        ("seg-zero", np.zeros((2, 3), bool), np.zeros((2, 3), np.uint8), None, None),  # union 0: skipped
        ("visionreasoner", np.zeros((3, 3), bool), GT, None, None),  # shapes differ: skipped
        ("lisa", np.zeros((2, 3), bool), np.zeros((2, 3), np.uint8), (0, 0), 1.0),  # LISA: no-object target
        ("segzero", np.zeros((2, 3), bool), np.zeros((2, 3), np.uint8), (0, 0), 1.0),
    ],
)
def test_reference_counts_and_iou(protocol, pred, gt, expected, iou):
    counts = reference_counts(protocol, pred, gt)
    assert counts == expected
    if counts is not None:
        assert reference_iou(protocol, *counts) == pytest.approx(iou, abs=1e-12)


@dataclass
class _Result:
    completion: str
    objects: list
    mask: np.ndarray
    parse_ok: bool = True
    frame: tuple = (840, 840)


@pytest.mark.parametrize(
    ("x2", "resegmented"),
    [
        (104, False),  # 52 both ways: the same prompts, segzero's mask is reused
        (105, True),  # 52.5: segzero rounds half up to 53, Seg-Zero's round() half to even gives 52
        (101, True),  # 50.5: 51 against 50
        (107, False),  # 53.5: 54 both ways (54 is even)
        (104.6, False),  # 52.3 -> 52; Seg-Zero truncates first: 104 -> 52
        (105.6, True),  # 52.8 -> 53; Seg-Zero: int(105.6) = 105 -> 52.5 -> 52
    ],
)
def test_a_reference_segments_its_own_prompts_only_when_they_differ(x2, resegmented):
    from segzero.geometry import to_original
    from segzero.parsing import parse_answer

    answer = '{"bbox": [8, 8, X2, 20], "points_1": [2, 2], "points_2": [4, 4]}'.replace("X2", str(x2))
    text = f"<think>a</think><answer>{answer}</answer>"
    own = [to_original(o, size=(420, 420), frame=840) for o in parse_answer(text).objects]  # segzero's prompts
    mask = np.zeros((420, 420), bool)
    mask[4:11, 4:53] = True
    calls = []

    def segment(objects):
        calls.append(objects)
        return np.zeros((420, 420), bool)  # the reference's own mask: empty here, to tell the two apart

    got = score_reference(
        "seg-zero", _Result(text, own, mask), mask.astype(np.uint8), image_size=(420, 420), segment=segment
    )
    assert got["resegmented"] is resegmented and bool(calls) is resegmented
    area = int(mask.sum())
    assert (got["intersection"], got["union"]) == ((0, area) if resegmented else (area, area))
