"""Mix built datasets into one (``segzero data build --mix NAME=DIR:WEIGHT ... --out OUT``).

Usage::

    segzero data build --mix refcocog=data/rcg840:3 --mix mine=data/my_set:1 --out data/mixed [--limit 8000]
    # or from Python
    from segzero.data.mix import MixConfig, mix, parse_part
    stats = mix(MixConfig(parts=(parse_part("a=data/a:3"), parse_part("b=data/b:1")), out="data/mixed"))

Each ``DIR`` is a folder ``segzero data build`` (or ``segzero world build``, or a hub copy's parquet) wrote; its
split ``split`` is read (``segzero.data.export.load_built``). ``WEIGHT`` (default 1) is the set's sampling
proportion: of the ``N`` mixed rows, set ``i`` gives ``round(N * w_i / sum(w))`` (largest remainders, so the counts
add up to ``N``). ``N`` is ``limit``, or by default the most rows the proportions allow without repeating a row of
any set (``min_i len_i * sum(w) / w_i``); a larger ``limit`` repeats rows of the sets it exhausts (whole passes,
then a seeded sample; ``rows_repeated`` in the stats). The rows of each set are a seeded sample, interleaved in a
seeded random order.

The output is the same folder layout as a build (``dataset_dict.json`` + ``<split>/``, ``parquet/<split>.parquet``,
``stats.json``), so ``segzero train --set dataset=OUT`` and ``segzero data export`` read it like any build, plus a
``source`` column naming each row's set (``NAME/<its source>`` when the set was itself a mix). Ids become
``NAME/<id>`` (and ``#k`` on the k-th repeat), ``image_id`` ``NAME/<image_id>``, so rows of different sets never
share an id or an image. The eval columns (``text``, ``mask``, ``image_id``, ``ann_id``) are kept when every set has
them (then ``segzero eval --data OUT`` reads it), and so is the gt mask code of the mask reward (``mask_rle``); any
other column is left out (``columns_left_out`` in the stats). The sets must share their
layout (single or multi) and model frame (``stats.json``'s, else their first image's size): a ``UserError`` says
which differ.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from segzero.errors import UserError


@dataclass(frozen=True)
class MixPart:
    """One set of a mix: its name (the ``source`` column), its built folder and its sampling weight."""

    name: str
    data: str
    weight: float = 1.0


@dataclass(frozen=True)
class MixConfig:
    """Options of one mix; see the module docstring."""

    parts: tuple[MixPart, ...]
    out: str
    split: str = "train"  # the split read from every set and written to OUT
    limit: int | None = None  # mixed rows; None: the most the weights allow without repeating a row
    seed: int = 0  # seed of each set's sample and of the interleaving
    progress: bool = True


def parse_part(spec: str) -> MixPart:
    """``NAME=DIR:WEIGHT`` (or ``NAME=DIR``, weight 1) -> ``MixPart``; ``UserError`` on a malformed spec."""
    name, sep, rest = spec.partition("=")
    data, weight = rest, 1.0
    head, colon, tail = rest.rpartition(":")
    if colon:
        try:
            data, weight = head, float(tail)
        except ValueError:
            data = rest  # a ':' inside the folder name, no weight
    if not sep or not name or "/" in name or not data:
        raise UserError(f"--mix takes NAME=DIR:WEIGHT (a name without '/'), got {spec!r}")
    if not (math.isfinite(weight) and weight > 0):
        raise UserError(f"--mix weight must be a positive number, got {spec!r}")
    return MixPart(name, data, weight)


def mix_counts(sizes: list[int], weights: list[float], total: int | None) -> list[int]:
    """Rows taken from each set: proportional to ``weights``, summing to ``total`` (None: the most without a repeat).

    >>> mix_counts([100, 30], [3, 1], None)
    [90, 30]
    >>> mix_counts([100, 30], [1, 1], 7)
    [4, 3]
    """
    shares = [w / sum(weights) for w in weights]
    if total is None:
        total = min(math.floor(n / p + 1e-9) for n, p in zip(sizes, shares, strict=True))
    exact = [total * p for p in shares]
    counts = [math.floor(e) for e in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _picks(size: int, count: int, rng: random.Random) -> list[tuple[int, int]]:
    """``count`` (row index, repeat) picks from a set of ``size`` rows: whole passes, then a sample without repeat."""
    passes, rest = divmod(count, size)
    picks = [(i, k) for k in range(passes) for i in range(size)]
    return picks + [(i, passes) for i in sorted(rng.sample(range(size), rest))]


def _frame(data: str, ds) -> tuple[int, int]:
    from segzero.data.export import built_frame

    return built_frame(data) or tuple(ds[0]["image"].size)


def _stats_of(data: str) -> dict:
    path = Path(data) / "stats.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _load(cfg: MixConfig) -> list:
    """The parts' datasets, checked: names unique, folders exist and are not OUT, rows present, layouts/frames agree."""
    from segzero.data.export import detect_layout, load_built

    names = [p.name for p in cfg.parts]
    if len(cfg.parts) < 2:
        raise UserError("--mix needs at least two sets (NAME=DIR:WEIGHT each)")
    if len(set(names)) != len(names):
        raise UserError(f"--mix names must differ, got {', '.join(names)}")
    if cfg.limit is not None and cfg.limit < 1:
        raise UserError("--limit must be at least 1")
    out = Path(cfg.out).resolve()
    sets = []
    for part in cfg.parts:
        if Path(part.data).resolve() == out:
            raise UserError(f"--out {cfg.out} is the mixed set {part.name}; write the mix elsewhere")
        ds = load_built(part.data, split=cfg.split)
        if len(ds) == 0:
            raise UserError(f"set {part.name} ({part.data}) has no rows in split {cfg.split!r}")
        sets.append((part, ds, detect_layout(ds), _frame(part.data, ds)))
    for what, k in (("layout", 2), ("frame", 3)):
        values = {s[0].name: s[k] for s in sets}
        if len(set(values.values())) > 1:
            raise UserError(f"the mixed sets differ in {what}: {values}; build them alike")
    return sets


def _columns(sets) -> tuple[object, list[str]]:
    """The output features (the build columns; the eval columns and the gt mask code ``mask_rle`` where every set
    has them; ``source``) and the columns of some set left out."""
    import datasets

    from segzero.data.export import EVAL_FEATURES, FEATURES
    from segzero.rle import MASK_COLUMN

    for part, ds, _, _ in sets:
        missing = [c for c in FEATURES if c not in ds.column_names]
        if missing:
            raise UserError(f"set {part.name} ({part.data}) lacks the column(s) {', '.join(missing)}")
    optional = {c: EVAL_FEATURES[c] for c in EVAL_FEATURES if c not in FEATURES}
    if MASK_COLUMN in sets[0][1].column_names:
        optional[MASK_COLUMN] = sets[0][1].features[MASK_COLUMN]
    kept = {c: f for c, f in optional.items() if all(c in ds.column_names for _, ds, _, _ in sets)}
    features = datasets.Features({**FEATURES, **kept, "source": datasets.Value("string")})
    seen = dict.fromkeys(c for _, ds, _, _ in sets for c in ds.column_names)
    return features, [c for c in seen if c not in features]


def _rows(part: MixPart, ds, picks: list[tuple[int, int]], features):
    """The picked rows of one set as a pyarrow table of ``features``, ids and images renamed into the mix."""
    import pyarrow as pa

    table = ds.with_format("arrow")[[i for i, _ in picks]]
    repeats = [k for _, k in picks]
    ids = [f"{part.name}/{v}" + (f"#{k}" if k else "") for v, k in zip(table["id"].to_pylist(), repeats, strict=True)]
    old = table["source"].to_pylist() if "source" in table.column_names else [None] * len(picks)
    columns = {c: table[c] for c in features if c in table.column_names and c != "source"}
    columns["id"] = pa.array(ids, pa.string())
    columns["source"] = pa.array([part.name if s is None else f"{part.name}/{s}" for s in old], pa.string())
    if "image_id" in columns:
        columns["image_id"] = pa.array([f"{part.name}/{v}" for v in table["image_id"].to_pylist()], pa.string())
        columns["ann_id"] = columns["id"]
    return pa.table({c: columns[c] for c in features}).cast(features.arrow_schema)


def mix(cfg: MixConfig, *, overwrite: bool = False) -> dict:
    """Write the mixed dataset to ``cfg.out``; returns the stats written to ``OUT/stats.json``."""
    import pyarrow as pa

    from segzero.data.build import clear_build
    from segzero.data.export import save_dataset

    sets = _load(cfg)
    features, left_out = _columns(sets)
    out = Path(cfg.out)
    if overwrite and out.exists():
        clear_build(out, cfg.split)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"output folder {out} is not empty; pass --overwrite or another --out")
    counts = mix_counts([len(ds) for _, ds, _, _ in sets], [p.weight for p, _, _, _ in sets], cfg.limit)
    rng = random.Random(cfg.seed)
    order = [(s, pick) for s, (_, ds, _, _) in enumerate(sets) for pick in _picks(len(ds), counts[s], rng)]
    rng.shuffle(order)
    tables, offsets, position = [], [], {}
    for s, (part, ds, _, _) in enumerate(sets):
        picks = [pick for t, pick in order if t == s]
        offsets.append(sum(len(t) for t in tables))
        tables.append(_rows(part, ds, picks, features))
    seen = [0] * len(sets)
    for rank, (s, _) in enumerate(order):
        position[rank] = offsets[s] + seen[s]
        seen[s] += 1
    table = pa.concat_tables(tables).take(pa.array([position[r] for r in range(len(order))], pa.int64()))
    total = sum(w.weight for w in cfg.parts)
    parts = [
        {
            "name": part.name,
            "data": part.data,
            "weight": part.weight,
            "share": part.weight / total,
            "rows_available": len(ds),
            "rows_taken": counts[s],
            "rows_repeated": max(0, counts[s] - len(ds)),
            "source": _stats_of(part.data).get("source"),
            "fingerprint": _stats_of(part.data).get("fingerprint"),
        }
        for s, (part, ds, _, _) in enumerate(sets)
    ]
    layout, frame = sets[0][2], sets[0][3]
    description = "segzero data build --mix: " + ", ".join(f"{p['name']} {p['share']:.0%}" for p in parts)
    out.mkdir(parents=True, exist_ok=True)
    written = save_dataset(
        table, out, split=cfg.split, description=description, progress=cfg.progress, features=features
    )
    stats = {
        "source": "mix",
        "mix": parts,
        "split": cfg.split,
        "layout": layout,
        "frame": list(frame),
        "coordinates": "model frame (frame = [w, h]); img_width/img_height are the original size",
        "limit": cfg.limit,
        "seed": cfg.seed,
        "columns": list(features),
        "columns_left_out": left_out,
        "rows_planned": len(order),
        "rows_written": written,
        "dropped_rows": {},
        "dropped_objects": {},
        "warnings": {},
        "shards_resumed": 0,
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    return stats
