"""Reader for the ``refer`` toolkit's RefCOCO / RefCOCO+ / RefCOCOg annotations, and gRefCOCO's.

Layout (as released with https://github.com/lichengunc/refer): a folder holding ``refs(<split_by>).p`` (a
pickle, list of dicts ``ref_id, ann_id, image_id, split, sentences [{sent, raw, tokens, sent_id}],
category_id``) and ``instances.json`` (COCO style: ``images``, ``annotations``, ``categories``; segmentations
are polygon lists or RLE, compressed or not). The folder may also be the toolkit's ``data/`` root holding
``<dataset>/refs(...).p``.

gRefCOCO (GRES: expressions that mean several objects, or none) ships ``grefs(unc).json`` (or ``.p``) beside the
same ``instances.json``: ``ann_id`` is a list, ``[-1]`` for a "no target" expression, and ``category_id`` may be
a list. A ref then carries every annotation id (``ann_ids``; empty for no target), its mask is the OR of their
masks (all zeros for no target), and crowd annotations are left out, as GRES's own loader does.

Usage::

    from segzero.data.refer import load_refer
    ds = load_refer("data/refcocog", dataset="refcocog", split_by="umd")
    for ref in ds.refs_for_split("val"):
        mask = ds.mask(ref)            # (H, W) bool, original pixels; raises BadAnnotation
        print(ref.sentences[0], ref.file_name, ref.width, ref.height, mask.sum())

The refs pickle is read by ``RefsUnpickler``, which refuses every global (class or function) a pickle may name, so a
pickle from an untrusted download cannot run code while it loads (a refused file is a ``UserError``).

Masks are decoded with pycocotools: several polygons of one annotation are OR-ed; a polygon with fewer than
3 points is skipped (and reported); an annotation whose mask decodes empty raises ``BadAnnotation``. The
module imports only stdlib, numpy and pycocotools.
"""

from __future__ import annotations

import json
import pickle
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from segzero.errors import UserError

# Splits the refer toolkit ships per dataset (RefCOCO also has "google"; RefCOCO+ only "unc").
SPLITS_BY: dict[str, tuple[str, ...]] = {
    "refcoco": ("unc", "google"),
    "refcoco+": ("unc",),
    "refcocog": ("umd", "google"),
    "grefcoco": ("unc",),
}
DEFAULT_SPLIT_BY: dict[str, str] = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd", "grefcoco": "unc"}
NO_TARGET_ANN_ID = -1  # gRefCOCO's ann_id list of an expression that means nothing: [-1]


class BadAnnotation(ValueError):
    """An annotation that cannot give a usable mask; ``reason`` is a short stable code for stats."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Ref:
    """One referred object with its expressions.

    ``sentences`` are the toolkit's normalised lower-case ``sent`` strings, ``raw`` the annotators' text,
    ``sent_ids`` their ids (same order). ``width``/``height`` are the COCO image size in pixels (0 when the
    image id is unknown or instances.json omits it; ``RefDataset.mask`` then needs ``size``). ``segmentation`` is the annotation's raw COCO segmentation (None when the
    annotation id is unknown; ``problem`` then names the reason).
    """

    ref_id: int
    ann_id: int
    image_id: int
    split: str
    category_id: int
    sentences: tuple[str, ...]
    raw: tuple[str, ...]
    sent_ids: tuple[int, ...]
    file_name: str
    width: int
    height: int
    segmentation: object = field(default=None, repr=False)
    problem: str = ""
    ann_ids: tuple[int, ...] = ()  # every referred annotation (gRefCOCO: several, or none for no target)
    segmentations: tuple = field(default=(), repr=False)  # their segmentations, same order

    @property
    def no_target(self) -> bool:
        """Whether the expression means nothing in the image (gRefCOCO's ``ann_id == [-1]``)."""
        return not self.ann_ids and not self.problem


class RefusedPickleGlobal(pickle.UnpicklingError):
    """A refs pickle named a global (class or function); ``RefsUnpickler`` refuses them all."""


class RefsUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` that admits no global at all: only the plain data pickle builds by its own opcodes.

    Genuine refs pickles (the refer toolkit's, written by Python 2, protocols 0-2, and this repository's) hold a list
    of dicts of str/bytes, int, float and lists of the same. Pickle builds all of these (and tuples, None, True,
    False) by opcodes of its own, without naming any global, so ``find_class`` admits nothing: not the Python 2
    ``copy_reg._reconstructor`` (it instantiates any class it is given), not ``__builtin__``/``builtins`` names
    (``eval``, ``getattr``, ... run code), not ``set`` either (no refs file needs one), nor ``_codecs.encode`` (how
    Python 3, not Python 2, writes bytes at protocols 0-2; Python 2's str has opcodes of its own). Every pickle that
    calls something (``os.system``, ``builtins.eval`` via ``__reduce__``) must name it with a global first and is
    refused there, before anything runs (the objects pickle builds by itself are not callable). Persistent ids are
    refused by the base class (no ``persistent_load``); an extension code needs a ``copyreg.add_extension``
    registration (none exists here) and resolves through ``find_class`` as well.

    ``path``: the file, named in the error. Use ``RefsUnpickler(f, path, encoding="bytes").load()``.
    """

    def __init__(self, file, path, **kwargs) -> None:
        super().__init__(file, **kwargs)
        self.path = path

    def find_class(self, module: str, name: str):
        raise RefusedPickleGlobal(
            f"{self.path} names the global {module}.{name}; refused: a refs pickle holds only lists, dicts, strings "
            "and numbers, and loading a global could run code"
        )


_PICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    RecursionError,
)
"""what reading a corrupt (not malicious) refs pickle can raise besides ``OSError`` (RecursionError: absurd nesting)"""


def _to_str(obj):
    """Python-2 pickles load with ``encoding='bytes'``: turn bytes keys/values back into str, recursively."""
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    if isinstance(obj, dict):
        return {_to_str(k): _to_str(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_str(v) for v in obj)
    return obj


def decode_segmentation(segmentation, height: int, width: int, *, count: bool = False) -> tuple[np.ndarray, int]:
    """Decode one COCO segmentation into a (height, width) bool mask in original pixels (``count``: a uint8 mask of
    how many of its parts cover each pixel, as Seg-Zero's notebook sums them, instead of their union).

    Accepts a list of polygons ``[[x0, y0, x1, y1, ...], ...]`` (OR-ed), an uncompressed RLE
    ``{"size": [h, w], "counts": [int, ...]}`` or a compressed one (``counts`` str/bytes), or a list of RLEs.
    Returns ``(mask, skipped_polygons)``: the number of polygons skipped for having fewer than 3 points.
    Raises ``BadAnnotation`` with reason ``polygon_too_few_points`` (no usable polygon), ``rle_size_mismatch``,
    ``bad_segmentation`` (unreadable structure) or ``empty_mask``.
    """
    if height <= 0 or width <= 0:
        raise BadAnnotation("bad_image_size", f"{width}x{height}")
    skipped = 0
    try:
        if isinstance(segmentation, dict) or (
            isinstance(segmentation, list) and segmentation and isinstance(segmentation[0], dict)
        ):
            rles = [segmentation] if isinstance(segmentation, dict) else list(segmentation)
            encoded = []
            for rle in rles:
                size = [int(v) for v in rle["size"]]
                if size != [height, width]:
                    raise BadAnnotation("rle_size_mismatch", f"RLE size {size}, image {[height, width]}")
                counts = rle["counts"]
                if isinstance(counts, list):
                    encoded.append(mask_utils.frPyObjects({"size": size, "counts": counts}, height, width))
                else:
                    counts = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
                    encoded.append({"size": size, "counts": counts})
        elif isinstance(segmentation, list):
            polygons = []
            for poly in segmentation:
                coords = [float(v) for v in poly]
                if len(coords) < 6 or len(coords) % 2:
                    skipped += 1
                    continue
                polygons.append(coords)
            if not polygons:
                raise BadAnnotation("polygon_too_few_points", f"{len(segmentation)} polygon(s), none with >= 3 points")
            encoded = mask_utils.frPyObjects(polygons, height, width)
        else:
            raise BadAnnotation("bad_segmentation", f"unexpected type {type(segmentation).__name__}")
        if count:
            parts = mask_utils.decode(list(encoded))  # (H, W, parts)
            mask = parts.sum(axis=2, dtype=np.uint8) if parts.ndim == 3 else parts.astype(np.uint8)
        else:
            rle = mask_utils.merge(encoded) if len(encoded) > 1 else encoded[0]
            mask = mask_utils.decode(rle).astype(bool)
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, BadAnnotation):
            raise
        raise BadAnnotation("bad_segmentation", str(err)) from err
    if mask.ndim == 3 and not count:
        mask = mask.any(axis=2)
    if not mask.any():
        raise BadAnnotation("empty_mask", "the segmentation decodes to no pixel")
    return mask, skipped


class RefDataset:
    """Referring expressions joined to their COCO images and annotations.

    ``refs`` lists every ref of the pickle (in file order), including those whose annotation or image id did
    not match (``ref.problem`` says which: ``ann_id_not_found``, ``image_id_not_found``,
    ``ann_image_mismatch``); ``problems`` counts them.
    """

    def __init__(self, refs: list[Ref], *, dataset: str, split_by: str, refs_path: Path, instances_path: Path):
        self.refs = refs
        self.dataset = dataset
        self.split_by = split_by
        self.refs_path = refs_path
        self.instances_path = instances_path
        self.problems = Counter(r.problem for r in refs if r.problem)

    def __len__(self) -> int:
        return len(self.refs)

    def __iter__(self) -> Iterator[Ref]:
        return iter(self.refs)

    @property
    def splits(self) -> dict[str, int]:
        """Number of refs per split name."""
        return dict(Counter(r.split for r in self.refs))

    def refs_for_split(self, split: str | None) -> list[Ref]:
        """Refs of one split (``train``, ``val``, ``test``, ``testA``, ...); None or ``all`` gives all."""
        if split in (None, "all"):
            return list(self.refs)
        return [r for r in self.refs if r.split == split]

    def mask(self, ref: Ref, *, size: tuple[int, int] | None = None) -> np.ndarray:
        """The gt mask of ``ref``, (height, width) bool in original pixels. Raises ``BadAnnotation``.

        ``size`` = (W, H) overrides the annotated image size (needed when instances.json has none)."""
        if ref.problem:
            raise BadAnnotation(ref.problem, f"ref {ref.ref_id}")
        width, height = size or (ref.width, ref.height)
        if ref.no_target:
            return np.zeros((height, width), dtype=bool)
        masks = [decode_segmentation(s, height, width)[0] for s in ref.segmentations or (ref.segmentation,)]
        return np.logical_or.reduce(masks)


def refs_file_names(dataset: str, split_by: str) -> tuple[str, ...]:
    """The refs file names a dataset may ship, preferred first: ``refs(umd).p``; gRefCOCO ``grefs(unc).json``
    or ``grefs(unc).p``."""
    if dataset == "grefcoco":
        return (f"grefs({split_by}).json", f"grefs({split_by}).p")
    return (f"refs({split_by}).p",)


def _find_files(refer_dir: Path, dataset: str, split_by: str) -> tuple[Path, Path]:
    names = refs_file_names(dataset, split_by)
    for base in (refer_dir, refer_dir / dataset):
        for name in names:
            if (base / name).is_file() and (base / "instances.json").is_file():
                return base / name, base / "instances.json"
    missing = [str(refer_dir / n) for n in (names[0], "instances.json") if not (refer_dir / n).is_file()]
    raise UserError(f"refer annotations not found: missing {', '.join(missing)}")


def _read_refs(path: Path):
    """The refs list of a ``.json`` (gRefCOCO) or pickle (``RefsUnpickler``) file."""
    if path.suffix == ".json":
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    with open(path, "rb") as f:  # encoding="bytes": Python 2 str values load as bytes (see _to_str)
        return _to_str(RefsUnpickler(f, path, encoding="bytes").load())


def _ann_ids(value) -> list[int]:
    """A ref's ``ann_id`` as a list (gRefCOCO stores a list; refer an int)."""
    return [int(v) for v in value] if isinstance(value, list | tuple) else [int(value)]


def load_refer(refer_dir: str | Path, dataset: str = "refcocog", split_by: str | None = "umd") -> RefDataset:
    """Read ``refs(<split_by>).p`` and ``instances.json`` from ``refer_dir`` (or ``refer_dir/<dataset>``).

    ``dataset`` is ``refcoco``, ``refcoco+``, ``refcocog`` or ``grefcoco`` (``grefs(unc).json``); ``split_by``
    defaults per dataset when None (``unc``, ``unc``, ``umd``, ``unc``). Raises ``UserError`` naming missing files
    or an unknown dataset/split.
    """
    dataset = dataset.lower()
    if dataset not in SPLITS_BY:
        raise UserError(f"unknown refer dataset {dataset!r}; choose one of {', '.join(SPLITS_BY)}")
    split_by = split_by or DEFAULT_SPLIT_BY[dataset]
    if split_by not in SPLITS_BY[dataset]:
        raise UserError(f"{dataset} has no split_by {split_by!r}; choose one of {', '.join(SPLITS_BY[dataset])}")
    refer_dir = Path(refer_dir)
    if not refer_dir.is_dir():
        raise UserError(f"refer directory not found: {refer_dir}")
    refs_path, instances_path = _find_files(refer_dir, dataset, split_by)
    try:
        raw_refs = _read_refs(refs_path)
        with open(instances_path, encoding="utf-8") as f:
            instances = json.load(f)
    except (OSError, *_PICKLE_ERRORS, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read refer annotations in {refer_dir}: {err}") from err
    if not isinstance(raw_refs, list) or not isinstance(instances, dict):
        raise UserError(f"{refs_path} must hold a list and {instances_path} a COCO dict")
    images = {int(im["id"]): im for im in instances.get("images", [])}
    anns = {int(a["id"]): a for a in instances.get("annotations", [])}
    refs = []
    for r in raw_refs:
        sents = r.get("sentences", [])
        ids = _ann_ids(r["ann_id"])
        ids = [] if ids == [NO_TARGET_ANN_ID] else ids
        found = [anns.get(i) for i in ids]
        if dataset == "grefcoco":  # crowd annotations are left out, as GRES's loader does
            kept = [(i, a) for i, a in zip(ids, found, strict=True) if a is None or not a.get("iscrowd")]
            ids, found = [i for i, _ in kept], [a for _, a in kept]
        ann = found[0] if found else None
        image = images.get(int(r["image_id"]))
        problem = ""
        if any(a is None for a in found) or (not ids and dataset != "grefcoco"):
            problem = "ann_id_not_found"
        elif image is None:
            problem = "image_id_not_found"
        elif any(int(a["image_id"]) != int(r["image_id"]) for a in found):
            problem = "ann_image_mismatch"
        category = r.get("category_id", -1)
        refs.append(
            Ref(
                ref_id=int(r["ref_id"]),
                ann_id=ids[0] if ids else NO_TARGET_ANN_ID,
                image_id=int(r["image_id"]),
                split=str(r.get("split", "")),
                category_id=int((category or [-1])[0] if isinstance(category, list) else category),
                sentences=tuple(str(s.get("sent", s.get("raw", ""))).strip() for s in sents),
                raw=tuple(str(s.get("raw", s.get("sent", ""))) for s in sents),
                sent_ids=tuple(int(s.get("sent_id", i)) for i, s in enumerate(sents)),
                file_name=str(image["file_name"]) if image else "",
                width=int(image.get("width") or 0) if image else 0,
                height=int(image.get("height") or 0) if image else 0,
                segmentation=None if ann is None else ann.get("segmentation"),
                problem=problem,
                ann_ids=tuple(ids),
                segmentations=tuple(a.get("segmentation") for a in found if a is not None),
            )
        )
    return RefDataset(refs, dataset=dataset, split_by=split_by, refs_path=refs_path, instances_path=instances_path)
