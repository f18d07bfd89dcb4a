"""Training data for GRPO: released Seg-Zero / VisionReasoner sets (hub or disk) or a registered source (the shapes
world's ``synthetic``).

Input rows use the released layout: ``id``, ``problem`` (query), ``solution`` (gt), ``image``,
``img_height``, ``img_width``. Single-object gt is ``<box>(x1,y1),(x2,y2)</box><points>(x,y),(x,y)</points>``
(``Ricky06662/refCOCOg_9k_840``); multi-object gt a JSON list of ``bbox_2d``/``point_2d``
(``Ricky06662/VisionReasoner_multi_object_7k_840``). gt coordinates are in the pixels of the stored image.

Output rows (what ``GRPOTrainer`` reads): ``prompt`` (conversational: the exact released prompt of
``segzero.prompts.build_messages``, with an image placeholder that TRL fills from the ``image`` column),
``image`` (PIL, ``frame x frame``), ``solution`` (gt re-serialised in the released layout of the reward kind,
integer coordinates in the model frame; the reward functions read this column), ``id``, ``problem``, and a video
row's clip and per-frame gt (``segzero.train.video_reward.VIDEO_COLUMNS``) as they are.

Bad-row rule (explicit, logged, every skipped id written to ``bad_rows.jsonl`` when an output dir is given):
a row is dropped when its image is missing or unreadable, its query is empty, its gt does not parse
(``segzero.parsing.parse_solution``), a single-object set has other than one gt object, or a gt coordinate
lies outside the stored image by more than ``out_of_frame_tolerance`` pixels. Images not at the model frame
are resized to it (``segzero.images.resize_to_frame``) and their gt scaled (``segzero.geometry.to_frame``).

Usage::

    from segzero.train.data import build_train_dataset
    ds, bad = build_train_dataset(cfg, output_dir="runs/x")     # cfg: segzero.train.config.TrainConfig
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from segzero.answer import LAYOUT_OF, SegObject
from segzero.errors import UserError
from segzero.geometry import DEFAULT_FRAME
from segzero.parsing import format_solution
from segzero.rle import MASK_COLUMN, decode_mask, encode_mask
from segzero.train.processes import is_main_process
from segzero.train.video_reward import VIDEO_COLUMNS

logger = logging.getLogger("segzero.train")

RELEASED_SETS = {
    "segzero": "Ricky06662/refCOCOg_9k_840",
    "visionreasoner": "Ricky06662/VisionReasoner_multi_object_7k_840",
}


def load_raw_dataset(
    source: str, *, split: str = "train", frame: int = DEFAULT_FRAME, dataset_args: dict | None = None
):
    """Rows in the released layout as a ``datasets.Dataset``.

    ``source``: a registered dataset source (``segzero.train.registry``, e.g. ``"synthetic"``: the shapes world,
    called with ``frame`` and ``dataset_args``), a local folder or file that ``segzero.data.export.load_built``
    opens (``save_to_disk`` Dataset / DatasetDict, then ``split``; a ``.parquet`` file; a folder of parquet files,
    ``split*.parquet`` preferred; e.g. ``segzero data build`` output), or a hub dataset id. An unreachable hub id
    raises ``UserError`` naming it.
    """
    import datasets

    from segzero.train.registry import check_arguments, is_registered

    if is_registered("datasets", source):
        args = dict(dataset_args or {})
        return check_arguments("datasets", source, "dataset_args", frame=frame, **args)(frame=frame, **args)
    path = Path(source).expanduser()
    if path.exists():  # save_to_disk folder, parquet file or folder of parquet files (segzero.data.export.load_built)
        from segzero.data.export import load_built

        return load_built(path, split=split)
    if source.startswith((".", "/", "~")) or source.endswith(".parquet"):
        raise UserError(f"training dataset not found: {source}")
    from segzero.models.reasoner import check_hub_reachable

    check_hub_reachable(source, what="training dataset", repo_type="dataset")  # offline: one line at once
    try:
        return datasets.load_dataset(source, split=split)
    except (OSError, datasets.exceptions.DatasetNotFoundError) as err:  # ConnectionError is an OSError
        raise UserError(
            f"cannot load training dataset {source!r} from the Hugging Face hub (offline or not found): "
            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}; pass a local folder or 'synthetic'"
        ) from err


def solution_text(objects: tuple[SegObject, ...], kind: str) -> str:
    """gt objects -> the released layout of answer family ``kind``: Seg-Zero ``<box>..</box><points>..</points>`` or
    a VisionReasoner JSON list (``segzero.parsing.format_solution``)."""
    return format_solution(objects, LAYOUT_OF[kind])


def check_objects(objects, *, width: int, height: int, tolerance: float, kind: str) -> str:
    """The bad-row reason for gt ``objects`` in an image of ``width x height`` (``""`` when the gt is usable)."""
    if kind == "segzero" and len(objects) != 1:
        return f"single-object set needs exactly one gt object, got {len(objects)}"
    for obj in objects:
        if obj.box is None:
            return "gt object without a box"
        if kind == "segzero" and len(obj.points) != 2:
            return f"single-object gt needs two points, got {len(obj.points)}"
        if kind == "visionreasoner" and len(obj.points) < 1:
            return "multi-object gt item without a point"
        xs = [obj.box[0], obj.box[2], *(p[0] for p in obj.points)]
        ys = [obj.box[1], obj.box[3], *(p[1] for p in obj.points)]
        if min(xs) < -tolerance or max(xs) > width - 1 + tolerance:
            return f"gt x outside the {width}x{height} image"
        if min(ys) < -tolerance or max(ys) > height - 1 + tolerance:
            return f"gt y outside the {width}x{height} image"
    return ""


def _clip(obj: SegObject, frame: int) -> SegObject:
    def c(v: float) -> float:
        return min(max(float(v), 0.0), float(frame - 1))

    box = None if obj.box is None else tuple(c(v) for v in obj.box)
    return SegObject(box=box, points=tuple((c(x), c(y)) for x, y in obj.points))  # type: ignore[arg-type]


def _mask_in_frame(code: dict | None, frame: int) -> dict | None:
    """A row's gt mask code resized (nearest) to ``frame`` x ``frame``, as the row's image is (unchanged when it
    already is: the shapes world draws at the frame)."""
    if code is None or list(code["size"]) == [frame, frame]:
        return code
    mask = np.asarray(Image.fromarray(decode_mask(code)).resize((frame, frame), Image.NEAREST))
    return encode_mask(mask)


def prepare_row(
    row: dict, *, kind: str, prompt_kind: str, frame: int, tolerance: float, with_mask: bool = False
) -> dict:
    """One released-layout row -> a training row (see the module docstring); ``skip_reason`` says why to drop it.
    ``with_mask``: the row's gt mask code (``MASK_COLUMN``) comes along, resized to the frame with the image."""
    from segzero.geometry import to_frame
    from segzero.images import load_image, resize_to_frame
    from segzero.parsing import parse_solution
    from segzero.prompts import build_messages

    out = {"prompt": None, "image": None, "solution": "", "skip_reason": ""} | (
        {MASK_COLUMN: None} if with_mask else {}
    )
    source = row.get("image")
    if isinstance(source, dict):  # an undecoded datasets Image value
        source = source.get("bytes") or source.get("path")
    if source is None:
        return {**out, "skip_reason": "missing image"}
    try:
        image = load_image(source)
        messages = build_messages(None, str(row.get("problem") or ""), kind=prompt_kind)
    except UserError as err:
        return {**out, "skip_reason": f"bad image or query: {err}"}
    try:
        objects = parse_solution(row.get("solution"))
    except ValueError as err:
        return {**out, "skip_reason": f"unparseable gt: {err}"}
    width, height = image.size
    reason = check_objects(objects, width=width, height=height, tolerance=tolerance, kind=kind)
    if reason:
        return {**out, "skip_reason": reason}
    if (width, height) != (frame, frame):
        image = resize_to_frame(image, frame)
        objects = tuple(to_frame(o, size=(width, height), frame=frame) for o in objects)
    objects = tuple(_clip(o, frame) for o in objects)
    for message in messages:  # TRL fills image placeholders from the `image` column
        message["content"] = [{"type": "image"} if p["type"] == "image" else p for p in message["content"]]
    mask = {MASK_COLUMN: _mask_in_frame(row.get(MASK_COLUMN), frame)} if with_mask else {}
    return {"prompt": messages, "image": image, "solution": solution_text(objects, kind), "skip_reason": "", **mask}


def prepare_dataset(raw, *, kind: str, prompt_kind: str, frame: int, tolerance: float = 1.0, num_proc=None):
    """Map ``prepare_row`` over ``raw`` and drop bad rows; returns ``(dataset, [(id, reason), ...])``."""
    if "id" not in raw.column_names:
        raw = raw.add_column("id", [str(i) for i in range(len(raw))])
    keep = {"id", "problem", *VIDEO_COLUMNS}  # a video row's clip and gt go to the video reward as they are
    mapped = raw.map(
        prepare_row,
        fn_kwargs={
            "kind": kind,
            "prompt_kind": prompt_kind,
            "frame": frame,
            "tolerance": tolerance,
            "with_mask": MASK_COLUMN in raw.column_names,
        },
        remove_columns=[c for c in raw.column_names if c not in keep],
        num_proc=num_proc,
        desc="preparing GRPO prompts",
    )
    reasons = mapped["skip_reason"]
    ids = mapped["id"]
    bad = [(str(ids[i]), r) for i, r in enumerate(reasons) if r]
    good = mapped.select([i for i, r in enumerate(reasons) if not r]).remove_columns("skip_reason")
    return good, bad


def build_train_dataset(cfg, *, output_dir: str | Path | None = None):
    """The GRPO training set of a ``TrainConfig``: load, prepare, drop bad rows (logged), cap ``max_samples``.

    Returns ``(dataset, bad_rows)``. With ``output_dir``, every dropped row is written to
    ``output_dir/bad_rows.jsonl`` as ``{"id": ..., "reason": ...}``. Raises ``UserError`` when no row is left.
    """
    raw = load_raw_dataset(cfg.dataset, split=cfg.dataset_split, frame=cfg.frame, dataset_args=cfg.dataset_args)
    ds, bad = prepare_dataset(
        raw,
        kind=cfg.reward_kind,
        prompt_kind=cfg.prompt_kind,
        frame=cfg.frame,
        tolerance=cfg.out_of_frame_tolerance,
        num_proc=cfg.num_proc,
    )
    if bad:
        shown = ", ".join(f"{i} ({r})" for i, r in bad[:10])
        logger.warning(
            "dropped %d of %d rows by the bad-row rule: %s%s",
            len(bad),
            len(raw),
            shown,
            " ..." if len(bad) > 10 else "",
        )
    if output_dir is not None and is_main_process():  # one writer under accelerate
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(output_dir) / "bad_rows.jsonl", "w") as fh:
            for rid, reason in bad:
                fh.write(json.dumps({"id": rid, "reason": reason}) + "\n")
    if cfg.max_samples is not None:
        ds = ds.select(range(min(cfg.max_samples, len(ds))))
    if len(ds) == 0:
        raise UserError(f"no usable training rows in {cfg.dataset!r} ({len(bad)} dropped by the bad-row rule)")
    logger.info("training set: %d rows from %s (%d dropped)", len(ds), cfg.dataset, len(bad))
    return ds, bad
