"""A first, simple shapes world: coloured circles/squares/triangles with exact masks and one-target queries.

Each sample is a scene of ``min_shapes..max_shapes`` non-overlapping shapes on a plain background and a
query that names exactly one of them through an attribute, a superlative or a spatial relation::

    the red circle / the largest blue shape / the smallest shape / the leftmost shape /
    the triangle left of the square / the circle above the green square

The query is chosen so that exactly one shape satisfies it (checked against the scene, with pixel margins so
the answer is visually clear). The ground truth is the target's exact mask turned into the Seg-Zero
single-object layout by ``segzero.points.mask_to_object``: ``<box>(x1,y1),(x2,y2)</box><points>(x,y),(x,y)</points>``,
in the pixel frame of the generated image (``size``; pass the model frame, e.g. 840 or 112, to get gt in the
model frame directly).

Deterministic: sample ``i`` of seed ``s`` depends only on ``(s, i)`` and the config.

Usage::

    from segzero.worlds.shapes import ShapesConfig, generate_rows, make_sample
    row = make_sample(0, seed=0, config=ShapesConfig(size=112))
    row["problem"], row["solution"], row["image"].size, row["mask"].shape

Imports only numpy, PIL and ``segzero.points`` (numpy/scipy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from segzero.points import mask_to_object

KINDS: tuple[str, ...] = ("circle", "square", "triangle")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 200, 30),
}
RELATIONS: dict[str, tuple[int, int]] = {"left of": (0, -1), "right of": (0, 1), "above": (1, -1), "below": (1, 1)}


@dataclass(frozen=True)
class ShapesConfig:
    """How scenes are drawn and queried. Sizes are in pixels of the generated image."""

    size: int | tuple[int, int] = field(default=112, metadata={"help": "Image side (int) or (width, height)."})
    min_shapes: int = field(default=2, metadata={"help": "Fewest shapes in a scene."})
    max_shapes: int = field(default=4, metadata={"help": "Most shapes in a scene."})
    min_radius_frac: float = field(default=0.08, metadata={"help": "Smallest shape radius / shorter image side."})
    max_radius_frac: float = field(default=0.18, metadata={"help": "Largest shape radius / shorter image side."})
    gap_frac: float = field(default=0.02, metadata={"help": "Free space between shapes / shorter image side."})
    area_ratio: float = field(default=1.25, metadata={"help": "Superlatives need max area >= ratio * runner-up."})
    margin_frac: float = field(default=0.04, metadata={"help": "Spatial terms need this centre margin / side."})
    background: tuple[int, int, int] = field(default=(235, 235, 235), metadata={"help": "Background RGB."})
    noise: float = field(default=0.0, metadata={"help": "Std of Gaussian pixel noise on the background (0 = flat)."})
    max_tries: int = field(default=200, metadata={"help": "Scene redraws before giving up (never hit in practice)."})

    @property
    def wh(self) -> tuple[int, int]:
        """``(width, height)`` of the generated image."""
        return (self.size, self.size) if isinstance(self.size, int) else (int(self.size[0]), int(self.size[1]))


@dataclass(frozen=True)
class Shape:
    """One drawn shape: kind, colour name, centre ``(cx, cy)`` and radius in pixels, exact (H, W) bool mask."""

    kind: str
    colour: str
    cx: float
    cy: float
    radius: float
    mask: np.ndarray = field(repr=False)

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def _shape_mask(kind: str, cx: float, cy: float, r: float, wh: tuple[int, int]) -> np.ndarray:
    """(H, W) bool mask of one shape drawn with PIL (circle: radius r; square: half-side 0.85 r; triangle: circumradius r)."""
    canvas = Image.new("L", wh, 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
    elif kind == "square":
        s = 0.85 * r
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=1)
    elif kind == "triangle":
        angles = np.deg2rad([-90.0, 30.0, 150.0])
        draw.polygon([(cx + r * np.cos(a), cy + r * np.sin(a)) for a in angles], fill=1)
    else:
        raise ValueError(f"unknown shape kind {kind!r}")
    return np.asarray(canvas, dtype=bool)


def make_scene(rng: np.random.Generator, config: ShapesConfig) -> list[Shape]:
    """Draw ``min_shapes..max_shapes`` non-overlapping shapes (circumscribed circles at least ``gap`` apart)."""
    w, h = config.wh
    side = min(w, h)
    gap = config.gap_frac * side
    n = int(rng.integers(config.min_shapes, config.max_shapes + 1))
    shapes: list[Shape] = []
    for _ in range(50 * n):
        if len(shapes) == n:
            break
        r = float(rng.uniform(config.min_radius_frac, config.max_radius_frac) * side)
        cx, cy = float(rng.uniform(r + 1, w - r - 2)), float(rng.uniform(r + 1, h - r - 2))
        if any(np.hypot(cx - s.cx, cy - s.cy) < r + s.radius + gap for s in shapes):
            continue
        kind = KINDS[int(rng.integers(len(KINDS)))]
        colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
        mask = _shape_mask(kind, cx, cy, r, (w, h))
        if mask.any():
            shapes.append(Shape(kind, colour, cx, cy, r, mask))
    return shapes


def _unique_extreme(
    values: list[float], target: int, *, largest: bool, ratio: float = 1.0, margin: float = 0.0
) -> bool:
    """True if ``values[target]`` is the strict extreme, beating the runner-up by ``ratio`` (x) and ``margin`` (+)."""
    if len(values) < 2:
        return False
    sign = 1.0 if largest else -1.0
    others = [sign * v for i, v in enumerate(values) if i != target]
    best_other, mine = max(others), sign * values[target]
    if largest:
        return mine >= best_other * ratio + margin
    return -mine * ratio + margin <= -best_other


def candidate_queries(shapes: list[Shape], target: int, config: ShapesConfig) -> list[str]:
    """Every query template that names ``shapes[target]`` and no other shape (with the config's margins)."""
    t = shapes[target]
    side = min(config.wh)
    margin = config.margin_frac * side
    out: list[str] = []
    if sum(s.kind == t.kind and s.colour == t.colour for s in shapes) == 1:
        out.append(f"the {t.colour} {t.kind}")
    same_colour = [i for i, s in enumerate(shapes) if s.colour == t.colour]
    for word, largest in (("largest", True), ("smallest", False)):
        areas = [float(shapes[i].area) for i in same_colour]
        if _unique_extreme(areas, same_colour.index(target), largest=largest, ratio=config.area_ratio):
            out.append(f"the {word} {t.colour} shape")
        if _unique_extreme([float(s.area) for s in shapes], target, largest=largest, ratio=config.area_ratio):
            out.append(f"the {word} shape")
    for word, axis, largest in (("leftmost", 0, False), ("rightmost", 0, True), ("topmost", 1, False)):
        coords = [(s.cx, s.cy)[axis] for s in shapes]
        if _unique_extreme(coords, target, largest=largest, margin=margin):
            out.append(f"the {word} shape")
    for ref_i, ref in enumerate(shapes):
        if ref_i == target or ref.kind == t.kind:
            continue
        ref_names = [f"the {ref.kind}"] if sum(s.kind == ref.kind for s in shapes) == 1 else []
        if sum(s.kind == ref.kind and s.colour == ref.colour for s in shapes) == 1:
            ref_names.append(f"the {ref.colour} {ref.kind}")
        for rel, (axis, sign) in RELATIONS.items():
            ref_c = (ref.cx, ref.cy)[axis]

            def offset(s: Shape, axis: int = axis, sign: int = sign, ref_c: float = ref_c) -> float:
                return sign * ((s.cx, s.cy)[axis] - ref_c)

            same_kind = [s for i, s in enumerate(shapes) if s.kind == t.kind and i != target]
            if offset(t) > margin and all(offset(s) < 0 for s in same_kind):
                out.extend(f"the {t.kind} {rel} {name}" for name in ref_names)
    return out


def solution_string(mask: np.ndarray) -> str:
    """Seg-Zero gt layout of one mask: ``<box>(x1,y1),(x2,y2)</box><points>(x,y),(x,y)</points>`` (ints, mask frame)."""
    obj = mask_to_object(mask)
    if obj is None or obj.box is None or len(obj.points) != 2:
        raise ValueError("empty mask has no box and points")
    x1, y1, x2, y2 = (int(round(v)) for v in obj.box)
    (px1, py1), (px2, py2) = ((int(round(x)), int(round(y))) for x, y in obj.points)
    return f"<box>({x1},{y1}),({x2},{y2})</box><points>({px1},{py1}),({px2},{py2})</points>"


def render(shapes: list[Shape], config: ShapesConfig, rng: np.random.Generator) -> Image.Image:
    """RGB image of the scene: background (plus optional noise), each shape filled with its colour."""
    w, h = config.wh
    pixels = np.empty((h, w, 3), dtype=np.float32)
    pixels[:] = config.background
    if config.noise > 0:
        pixels += rng.normal(0.0, config.noise, size=pixels.shape)
    for s in shapes:
        pixels[s.mask] = COLOURS[s.colour]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


def make_sample(index: int, *, seed: int = 0, config: ShapesConfig | None = None) -> dict:
    """Sample ``index`` of world ``seed``: a dict in the released single-object training layout.

    Keys: ``id`` (``"shapes-{seed}-{index}"``), ``problem`` (the query), ``solution`` (gt string in the image
    frame), ``image`` (PIL RGB, ``config.size``), ``img_height``, ``img_width``, plus ``mask`` ((H, W) bool, the
    target's exact mask) and ``shapes`` (kind/colour of every shape, for inspection).
    """
    config = config or ShapesConfig()
    rng = np.random.default_rng([seed, index])
    for _ in range(config.max_tries):
        shapes = make_scene(rng, config)
        order = rng.permutation(len(shapes))
        for target in order:
            queries = candidate_queries(shapes, int(target), config)
            if not queries:
                continue
            query = queries[int(rng.integers(len(queries)))]
            image = render(shapes, config, rng)
            w, h = config.wh
            mask = shapes[int(target)].mask
            return {
                "id": f"shapes-{seed}-{index}",
                "problem": query,
                "solution": solution_string(mask),
                "image": image,
                "img_height": h,
                "img_width": w,
                "mask": mask,
                "shapes": [{"kind": s.kind, "colour": s.colour} for s in shapes],
            }
    raise RuntimeError(f"no answerable scene in {config.max_tries} tries (seed {seed}, index {index})")


def generate_rows(n: int, *, seed: int = 0, config: ShapesConfig | None = None, size: int | None = None) -> list[dict]:
    """``n`` samples (see ``make_sample``) in the training layout, without the ``mask``/``shapes`` extras."""
    if size is not None:
        config = ShapesConfig(**{**(config.__dict__ if config else {}), "size": size})
    rows = []
    for i in range(n):
        row = make_sample(i, seed=seed, config=config)
        rows.append({k: row[k] for k in ("id", "problem", "solution", "image", "img_height", "img_width")})
    return rows
