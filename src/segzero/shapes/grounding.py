"""Does a shapes-world reasoner look at the image? Grounding checks beyond gIoU, on drawn scenes with exact masks.

Three measurements, each on scenes of a world (``segzero.shapes.world``; settings as a recipe's
``dataset_args.world``) run through the real ``SegZeroPipeline`` (reasoner + segmenter, batched):

- ``scene_checks``: the scene's own query (one answer). A sample is *right* when the mask IoU with the answer's
  visible mask is above ``right_iou`` (0.5);
- ``by_name_checks``: every shape of a scene asked for by name, "the <colour> <kind>" (shapes whose colour and
  kind another shape of the scene shares are skipped: the name would not be unique). *Lands* = mask IoU with that
  shape's visible mask above ``right_iou``. A model that ignores the image answers the same box for every name
  and lands about once per scene;
- ``agreement``: whether the reasoning names the shape the answer lands on. The named shape is the last
  "The query means the <colour> <kind>, N." of the reasoning (``segzero.shapes.perception.named_shape``); the
  landed shape is the one with the largest mask IoU (none when every IoU is 0). A reasoning that names
  "blue square" while the mask lies on the red circle disagrees; a reasoning that names nothing is counted apart.

Each returns per-sample rows; ``summarise`` turns rows into rates. Usage (what ``benchmarks/shapes_grounding.py``
and the shipped-model test run)::

    from segzero.shapes.grounding import by_name_checks, scene_checks, summarise
    rows = scene_checks(pipe, world=world, size=128, n=256, split="val")
    summarise(rows)     # {"n": 256, "right": 0.9, "agree": ..., "named": ...}
"""

from __future__ import annotations

import numpy as np

from segzero.metrics import intersection_union, sample_iou

RIGHT_IOU = 0.5
"""A mask with IoU above this with the intended shape's visible mask counts as right (lands on that shape)."""


def _iou(pred: np.ndarray, target: np.ndarray) -> float:
    """Mask IoU with the evaluation's own convention (``segzero.metrics``: empty and empty -> 1)."""
    return sample_iou(*intersection_union(pred, target))


def _judge(result, target: np.ndarray, sample: dict, *, right_iou: float) -> dict:
    """One row: IoU with ``target``, right or not, the shape the mask lands on and the shape the reasoning names."""
    from segzero.shapes.perception import named_shape

    mask = np.asarray(result.mask, dtype=bool)
    ious = [_iou(mask, m) for m in sample["shape_masks"]]
    landed = int(np.argmax(ious)) if max(ious) > 0 else None
    named = named_shape(result.reasoning)
    landed_name = None if landed is None else (sample["shapes"][landed]["colour"], sample["shapes"][landed]["kind"])
    iou = _iou(mask, target)
    return {
        "iou": round(iou, 4),
        "right": iou > right_iou,
        "landed": None if landed_name is None else " ".join(landed_name),
        "named": None if named is None else " ".join(named),
        "agree": None if named is None or landed_name is None else named == landed_name,
        "reasoning": result.reasoning,
        "parse_ok": bool(result.parse_ok),
    }


def draw(n: int, *, world: dict | None, size: int, split: str = "val", seed: int = 0, start: int = 0) -> list[dict]:
    """Samples ``start .. start + n - 1`` of the world's ``split`` (one answer each) at ``size`` px."""
    from segzero.shapes.world import make_sample, world_from_spec

    config, families = world_from_spec(world, size=size)
    return [
        make_sample(i, seed=seed, config=config, split=split, layout="eval", families=families)
        for i in range(start, start + n)
    ]


def scene_checks(pipe, samples: list[dict], *, right_iou: float = RIGHT_IOU, batch_size: int = 32) -> list[dict]:
    """Each sample's own query through ``pipe``; rows as ``_judge`` plus ``query``, ``family`` and ``wording``."""
    results = pipe.batch([s["image"] for s in samples], [s["problem"] for s in samples], batch_size=batch_size)
    rows = []
    for s, r in zip(samples, results, strict=True):
        row = _judge(r, np.asarray(s["mask"], dtype=bool), s, right_iou=right_iou)
        rows.append({"id": s["id"], "query": s["problem"], "family": s["family"], "wording": s["wording"], **row})
    return rows


def name_probes(samples: list[dict]) -> list[tuple[dict, int, str]]:
    """``(sample, shape index, "the <colour> <kind>")`` for every shape whose colour + kind is unique in its scene."""
    probes = []
    for s in samples:
        names = [(f["colour"], f["kind"]) for f in s["shapes"]]
        for i, (colour, kind) in enumerate(names):
            if names.count((colour, kind)) == 1 and s["shape_masks"][i].any():
                probes.append((s, i, f"the {colour} {kind}"))
    return probes


def by_name_checks(pipe, samples: list[dict], *, right_iou: float = RIGHT_IOU, batch_size: int = 32) -> list[dict]:
    """Every uniquely named shape of each scene asked for by name; rows as ``_judge`` plus ``query``."""
    probes = name_probes(samples)
    results = pipe.batch([s["image"] for s, _, _ in probes], [q for _, _, q in probes], batch_size=batch_size)
    rows = []
    for (s, i, q), r in zip(probes, results, strict=True):
        rows.append({"id": s["id"], "query": q, "shape": i, **_judge(r, s["shape_masks"][i], s, right_iou=right_iou)})
    return rows


def summarise(rows: list[dict]) -> dict:
    """``n``, ``right`` (fraction right), ``mean_iou``, ``named`` (fraction whose reasoning names a shape), ``agree``
    (of the rows with a named and a landed shape, the fraction where they are the same; None when there are none)
    and ``agree_n`` (how many such rows)."""
    n = len(rows)
    judged = [r["agree"] for r in rows if r["agree"] is not None]
    return {
        "n": n,
        "right": round(sum(r["right"] for r in rows) / n, 4) if n else 0.0,
        "mean_iou": round(float(np.mean([r["iou"] for r in rows])), 4) if n else 0.0,
        "named": round(sum(r["named"] is not None for r in rows) / n, 4) if n else 0.0,
        "agree": round(sum(judged) / len(judged), 4) if judged else None,
        "agree_n": len(judged),
    }
