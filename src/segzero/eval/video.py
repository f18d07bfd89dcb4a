"""``segzero eval --format revos``: video reasoning segmentation scored with J, F and J&F, resumable.

Usage::

    from segzero.eval.runner import EvalConfig
    from segzero.eval.video import VideoEvalOptions, run_video_eval
    cfg = EvalConfig(data="data/ReVOS", out="runs/revos", fmt="revos", reasoner="...", segmenter="...")
    summary = run_video_eval(cfg, VideoEvalOptions(keyframes=1))     # summary["J"], ["F"], ["J&F"], ["splits"]

The set is a ReVOS-layout folder (``segzero.eval.revos``); ``cfg.split`` picks its meta file (default ``valid``).
Video by video, every expression of the video goes through ``segzero.video.VideoSegPipeline.segment_queries`` (one
generate batch over its keyframes and queries, one segmenter embedding per keyframe, then propagation), and each
expression's per-frame masks are scored against its gt (``segzero.eval.video_metrics``: J and F per frame, their
means over every frame of the video). One record per expression goes to ``OUT/samples.jsonl`` (fsynced after each
video); ``OUT/run.json`` holds the run's identity (``segzero.eval.identity`` plus the format, keyframes and
propagator), so rerunning the same command continues where it stopped and a changed setting is refused in one line
(``--overwrite`` starts over), exactly as image evaluation does.

Summary (``OUT/summary.json``, fractions in [0, 1]): per expression type (``splits``: ``referring`` and ``reason``
for ReVOS, ``all`` for a set without types) the mean of the expressions' J, F and J&F; the top-level ``J``, ``F``
and ``J&F`` are the means of the types' scores, as ReVOS's evaluation reports its overall score. An answer that
cannot be read, or a model error, is an empty prediction on the frames it covers (scored, never skipped); an
unreadable gt scores 0. Sharding (``--shard``) and ``report.html`` are not available for video sets.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segzero.errors import UserError
from segzero.eval.records import RecordWriter, StageError, attempt, repair_records
from segzero.eval.revos import RevosDataset, VideoExpression, load_revos
from segzero.eval.runner import EvalConfig, build_header, build_pipeline, check_run, prepare_out, start_run
from segzero.eval.summary import SAMPLES_FILE, SUMMARY_FILE, write_json
from segzero.eval.video_metrics import BOUND_FRAC, video_scores
from segzero.rle import encode_mask

FORMAT = "revos"
PROTOCOL = {
    "J": "per frame |pred & gt| / |pred | gt| (both empty: 1), averaged over every frame of the video",
    "F": f"per frame the boundary F-measure, tolerance ceil({BOUND_FRAC} x image diagonal) px (DAVIS; both empty: 1, "
    "one empty: 0), averaged over every frame",
    "J&F": "(J + F) / 2",
    "splits": "per expression type, the mean over its expressions",
    "overall": "J, F and J&F: the mean of the expression types' scores (ReVOS's overall)",
    "failure_rule": "unreadable answer or model error: an empty prediction on the frames it covers; unreadable gt: 0",
    "resolution": "frame pixels",
}


@dataclass
class VideoEvalOptions:
    """The video settings of ``segzero eval --format revos`` (its flags are made from these fields)."""

    keyframes: int = field(
        default=1, metadata={"help": "revos: keyframes the reasoner answers on per video (middle frames of segments)"}
    )
    propagator: str | None = field(
        default=None,
        metadata={
            "help": "revos: what carries keyframe masks to the other frames: 'color' or a SAM2 video checkpoint "
            "(default: color for --segmenter color, else the segmenter's own checkpoint)"
        },
    )


def propagator_identity(name: str) -> tuple[str, str | None]:
    """(``propagator``, ``propagator_weights``): ``ColorTracker`` and None, or ``model`` and its weights digest."""
    from segzero.eval.identity import weights_digest
    from segzero.models.video import WEIGHT_FREE_PROPAGATORS

    if name.lower() in WEIGHT_FREE_PROPAGATORS:
        return WEIGHT_FREE_PROPAGATORS[name.lower()].__name__, None
    return "model", weights_digest(name)


def video_header(cfg: EvalConfig, ds: RevosDataset, options: VideoEvalOptions, propagator: str) -> dict:
    """``run.json`` of a video run: the image runner's header with the format, keyframes and propagator in its
    identity (what a resume compares)."""
    header = build_header(cfg, ds, len(ds))
    kind, weights = propagator_identity(propagator)
    header["identity"].update(
        format=FORMAT, keyframes=int(options.keyframes), propagator=kind, propagator_weights=weights
    )
    header["video"] = {"format": FORMAT, "keyframes": int(options.keyframes), "propagator": propagator}
    return header


def _scored(gt, masks, *, status: str, stage=None, error="") -> dict:
    """The scoring part of a record: J, F and J&F of ``masks`` ((T, H, W) bool) against ``gt`` (array, or the
    ``StageError`` that stopped it: 0)."""
    if isinstance(gt, StageError):
        return {"status": "error", "stage": gt.stage, "error": gt.reason, "J": 0.0, "F": 0.0, "J&F": 0.0}
    scores = video_scores(list(masks), list(gt))
    return {"status": status, "stage": stage, "error": error, **scores}


def _record(expr: VideoExpression, gt, result, *, seconds: float, save_masks: bool, size) -> dict:
    rec = {
        "index": expr.index,
        "id": expr.id,
        "video": expr.video,
        "exp_id": expr.exp_id,
        "query": expr.query,
        "type": expr.type_name,
    }
    if isinstance(result, StageError):
        empty = np.zeros((len(gt) if not isinstance(gt, StageError) else 0, *size), dtype=bool)
        rec.update(_scored(gt, empty, status="error", stage=result.stage, error=result.reason))
        rec.update(keyframes=[], reasoning=[], completion=[], objects=[], pred_rle=None)
    else:
        failed = [r.parse_error or "unparseable answer" for r in result.keyframe_results if not r.parse_ok]
        status = "parse_failed" if failed else "ok"
        rec.update(_scored(gt, result.masks, status=status, error="; ".join(failed)))
        rec.update(
            keyframes=result.keyframes,
            reasoning=[r.reasoning for r in result.keyframe_results],
            completion=[r.completion for r in result.keyframe_results],
            objects=[[o.to_dict() for o in r.objects] for r in result.keyframe_results],
            pred_rle=[encode_mask(m) for m in result.masks] if save_masks and rec["status"] != "error" else None,
        )
    rec["failed"] = rec["status"] != "ok"
    rec["seconds"] = round(seconds, 4)
    return rec


def evaluate_video(pipe, ds: RevosDataset, video: str, exprs: list[VideoExpression], cfg, options) -> list[dict]:
    """Records of one video's expressions (never raises for an expression: a failing stage is its record)."""
    t0 = time.perf_counter()
    frames = attempt("frames", ds.frames, video)
    if isinstance(frames, StageError):
        return [_record(e, frames, frames, seconds=0.0, save_masks=False, size=(0, 0)) for e in exprs]
    size = frames[0].size[::-1]
    gts = {e.id: attempt("gt", ds.gt, e, size=size) for e in exprs}
    runnable = [e for e in exprs if not isinstance(gts[e.id], StageError)]
    results: dict[str, object] = {}
    if runnable:
        batch = attempt(
            "model", pipe.segment_queries, frames, [e.query for e in runnable], keyframes=options.keyframes
        )
        if isinstance(batch, StageError):  # one by one, so one bad expression cannot sink the video's others
            for e in runnable:
                one = attempt("model", pipe.segment_queries, frames, [e.query], keyframes=options.keyframes)
                results[e.id] = one if isinstance(one, StageError) else one[0]
        else:
            results = {e.id: r for e, r in zip(runnable, batch, strict=True)}
    seconds = (time.perf_counter() - t0) / max(1, len(exprs))
    return [
        _record(e, gts[e.id], results.get(e.id, gts[e.id]), seconds=seconds, save_masks=cfg.save_masks, size=size)
        for e in exprs
    ]


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def summarize_video(records: list[dict], header: dict, *, expected: int) -> dict:
    """``summary.json`` of a video run (module docstring): overall and per-type J, F, J&F, counts, provenance."""
    ordered = sorted(records, key=lambda r: (r["index"], r["id"]))
    splits = {}
    for name in dict.fromkeys(r["type"] for r in ordered):
        mine = [r for r in ordered if r["type"] == name]
        j, f = _mean([r["J"] for r in mine]), _mean([r["F"] for r in mine])
        splits[name] = {"J": j, "F": f, "J&F": (j + f) / 2, "n": len(mine)}
    j, f = _mean([s["J"] for s in splits.values()]), _mean([s["F"] for s in splits.values()])
    errors = [r for r in ordered if r["status"] == "error"]
    stages: dict[str, int] = {}
    for r in errors:
        stages[r["stage"]] = stages.get(r["stage"], 0) + 1
    return {
        "J": j,
        "F": f,
        "J&F": (j + f) / 2,
        "splits": splits,
        "n": len(ordered),
        "n_expected": expected,
        "complete": len(ordered) == expected,
        "parse_failures": sum(r["status"] == "parse_failed" for r in ordered),
        "errors": len(errors),
        "errors_by_stage": stages,
        "model_seconds": round(sum(float(r.get("seconds", 0.0)) for r in ordered), 3),
        "protocol": PROTOCOL,
        "video": header.get("video", {}),
        "models": header.get("models", {}),
        "dataset": header.get("dataset", {}),
        "prompt": header.get("prompt"),
        "frame": header.get("frame"),
        "package_version": header.get("package_version"),
        "identity": header.get("identity"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def run_video_eval(cfg: EvalConfig, options: VideoEvalOptions | None = None, *, dataset=None, pipeline=None) -> dict:
    """Evaluate (or resume) ``cfg`` on a ReVOS-layout set; returns the summary written to ``cfg.out/summary.json``.

    ``dataset`` (a ``RevosDataset``) / ``pipeline`` (a ``VideoSegPipeline``) may be given pre-built (tests).
    """
    from segzero.models.video import default_propagator_for, load_propagator
    from segzero.video import VideoSegPipeline

    options = options or VideoEvalOptions()
    if options.keyframes < 1 or cfg.batch_size < 1:
        raise UserError(f"--keyframes and --batch-size must be >= 1, got {options.keyframes}, {cfg.batch_size}")
    if cfg.shard != "0/1":
        raise UserError("--shard is not available for video sets (--format revos); run the whole set")
    ds = dataset or load_revos(cfg.data, split=cfg.split)
    propagator = options.propagator or default_propagator_for(str(cfg.segmenter))
    out = Path(cfg.out)
    header, done = prepare_out(out, video_header(cfg, ds, options, propagator), overwrite=cfg.overwrite)
    done_ids = {r["id"] for r in done}
    todo = [e for e in ds.samples if e.id not in done_ids]
    if cfg.max_samples is not None:
        todo = todo[: max(0, cfg.max_samples)]
    if todo and pipeline is None:
        pipeline = VideoSegPipeline(build_pipeline(cfg), load_propagator(propagator, device=cfg.device))
        header = check_run(out, video_header(cfg, ds, options, propagator))  # a hub model may have downloaded
    start_run(out, header)
    by_video: dict[str, list[VideoExpression]] = {}
    for e in todo:
        by_video.setdefault(e.video, []).append(e)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(ds), initial=len(done), disable=not cfg.progress, desc="eval revos", unit="expression")
    with RecordWriter(out / SAMPLES_FILE) as writer, bar:
        for video, exprs in by_video.items():
            records = evaluate_video(pipeline, ds, video, exprs, cfg, options)
            writer.write_many(records)
            bar.update(len(records))
    records, _ = repair_records(out / SAMPLES_FILE)
    summary = summarize_video(records, header, expected=len(ds))
    write_json(out / SUMMARY_FILE, summary)
    return summary


__all__ = ["PROTOCOL", "VideoEvalOptions", "evaluate_video", "run_video_eval", "summarize_video", "video_header"]
