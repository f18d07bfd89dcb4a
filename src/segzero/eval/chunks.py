"""The evaluation's three stages over chunks of whole images, working at once (``evaluate_chunks``).

    from segzero.eval.chunks import evaluate_chunks
    for records in evaluate_chunks(pipeline, dataset, chunks, cfg):   # cfg: the run's EvalConfig
        writer.write_many(records)                                     # one record per sample, chunk by chunk

The calling thread loads chunk k (``load_chunk``: each image and gt decoded once) and generates its completions
(``generate_chunk``: one ``pipe.generate`` call); an embedding thread computes the SAM2 embeddings of chunk k's
images as soon as they are loaded (``pipe.embed_images``); a segmenting thread decodes chunk k's masks and scores
them into records (``finish_chunk``) once both are done. A stage that raises becomes the sample's ``StageError``
(``segzero.eval.records.attempt``); a chunk's generate or segment call that raises is retried sample by sample, so
one bad sample cannot sink its neighbours. ``segzero.eval.runner`` plans the chunks and writes the records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from segzero.eval.datasets import EvalDataset, SampleInfo
from segzero.eval.protocols import SEGZERO, score_reference
from segzero.eval.records import StageError, attempt, make_record


@dataclass
class LoadedChunk:
    """A chunk's decoded images (by ``SampleInfo.image_key``) and gts, each value or the ``StageError`` that stopped
    it, and the seconds spent decoding them."""

    samples: list[SampleInfo]
    images: dict[str, object]
    gts: dict[str, object]
    seconds: float

    def usable_images(self) -> list:
        """The distinct images that decoded."""
        return [im for im in self.images.values() if not isinstance(im, StageError)]


@dataclass
class GeneratedChunk:
    """A chunk after its first half (``generate_chunk``): decoded images and gts (or the ``StageError`` that
    stopped them), each runnable sample's completion (or ``StageError``) and the seconds spent."""

    samples: list[SampleInfo]
    images: dict[str, object]
    gts: dict[str, object]
    completions: dict[str, object]
    seconds: float


def load_chunk(ds: EvalDataset, chunk: list[SampleInfo]) -> LoadedChunk:
    """Decode a chunk's images (once per image) and gts. Never raises for a sample."""
    t0 = time.perf_counter()
    images: dict[str, object] = {}
    gts = {}
    for s in chunk:
        if s.image_key not in images:
            images[s.image_key] = attempt("image", ds.image, s)
        gts[s.id] = attempt("gt", ds.mask, s)
    return LoadedChunk(chunk, images, gts, time.perf_counter() - t0)


def generate_chunk(pipe, loaded: LoadedChunk) -> GeneratedChunk:
    """Generate a loaded chunk's completions in one call (``pipe.generate``); when that call raises, each sample is
    generated alone, so one bad sample cannot sink its neighbours. Never raises for a sample."""
    t0 = time.perf_counter()
    images, completions = loaded.images, {}
    runnable = [s for s in loaded.samples if not isinstance(images[s.image_key], StageError)]
    if runnable:
        pairs = [images[s.image_key] for s in runnable], [s.query for s in runnable]
        outs = attempt("model", pipe.generate, *pairs, batch_size=len(runnable))  # no tail batch split off
        if isinstance(outs, StageError) or len(outs) != len(runnable):
            outs = [attempt("model", pipe.generate, [images[s.image_key]], [s.query]) for s in runnable]
            outs = [o if isinstance(o, StageError) else o[0] for o in outs]
        completions = {s.id: o for s, o in zip(runnable, outs, strict=True)}
    seconds = loaded.seconds + time.perf_counter() - t0
    return GeneratedChunk(loaded.samples, images, loaded.gts, completions, seconds)


def finish_chunk(pipe, job: GeneratedChunk, cfg, embeddings=None) -> list[dict]:
    """The second half: segment the completions (``pipe.segment_many``: one SAM2 embedding and one decoder call
    per image; per sample when that raises) and score them into records by ``cfg`` (the run's ``EvalConfig``: its
    ``ignore_label``, ``save_masks`` and ``protocol``). ``embeddings``: a future of the chunk's
    images' embeddings (``pipe.embed_images``, computed while the chunk generated); an image it lacks (its
    embedding failed) is embedded here, so a failure is recorded exactly as without it. Never raises for a
    sample."""
    t0 = time.perf_counter()
    ahead = embeddings.result() if embeddings is not None else None
    ahead = None if isinstance(ahead, StageError) else ahead
    results: dict[str, object] = {}
    for s in job.samples:  # the first stage that failed (image, then generation) is the sample's result
        failed = [v for v in (job.images[s.image_key], job.completions.get(s.id)) if isinstance(v, StageError)]
        if failed:
            results[s.id] = failed[0]
    todo = [s for s in job.samples if s.id not in results]
    if todo:
        images, texts = [job.images[s.image_key] for s in todo], [job.completions[s.id] for s in todo]
        outs = attempt("model", pipe.segment_many, images, texts, embeddings=ahead)
        if isinstance(outs, StageError) or len(outs) != len(todo):
            outs = [attempt("model", pipe.segment, im, text) for im, text in zip(images, texts, strict=True)]
        results.update({s.id: r for s, r in zip(todo, outs, strict=True)})
    seconds = (job.seconds + time.perf_counter() - t0) / len(job.samples)
    records = [
        make_record(
            s, job.gts[s.id], results[s.id], ignore_label=cfg.ignore_label, seconds=seconds, save_masks=cfg.save_masks
        )
        for s in job.samples
    ]
    if cfg.protocol != SEGZERO:
        for s, rec in zip(job.samples, records, strict=True):
            rec["reference"] = _reference(pipe, cfg.protocol, job.images[s.image_key], job.gts[s.id], results[s.id])
    return records


def evaluate_chunks(pipe, ds: EvalDataset, chunks: list[list[SampleInfo]], cfg):
    """Yield each chunk's records, in chunk order, from three stages that work at the same time: the calling
    thread loads chunk k and generates its completions; an embedding thread computes the SAM2 embeddings of chunk
    k's images as soon as they are loaded (while chunk k generates: the segmenter does not wait for the reasoner);
    a segmenting thread decodes chunk k's masks and scores them once both are done. At most one chunk waits to be
    segmented, so the embeddings run at most two chunks ahead. ``cfg``: the run's ``EvalConfig`` (``finish_chunk``)."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="segzero-embed") as embedder,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="segzero-segment") as segmenter,
    ):
        pending = None
        for chunk in chunks:
            loaded = load_chunk(ds, chunk)
            embeddings = embedder.submit(attempt, "model", pipe.embed_images, loaded.usable_images())
            job = generate_chunk(pipe, loaded)
            if pending is not None:
                yield pending.result()
            pending = segmenter.submit(finish_chunk, pipe, job, cfg, embeddings)
        if pending is not None:
            yield pending.result()


def _reference(pipe, protocol: str, image, gt, result) -> dict:
    """The ``reference`` field of a record: the sample scored by ``protocol`` (``segzero.eval.protocols``)."""
    if isinstance(image, StageError) or isinstance(gt, StageError):
        return score_reference(protocol, None, None, image_size=(1, 1), segment=None)
    scored = attempt(
        "reference",
        score_reference,
        protocol,
        None if isinstance(result, StageError) else result,
        gt,
        image_size=(gt.shape[1], gt.shape[0]),  # original pixels (W, H)
        segment=lambda objects: pipe.mask_for(image, objects),
    )
    if isinstance(scored, StageError):  # the reference's own segmentation raised: its script skips the sample
        return {"intersection": None, "union": None, "resegmented": True, "error": scored.reason}
    return scored
