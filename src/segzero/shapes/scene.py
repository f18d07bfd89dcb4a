"""Shapes-world scenes: coloured shapes (circle, square, triangle, pentagon, hexagon, star) with exact visible masks.

A scene is a list of ``Shape`` in painting order (later shapes are drawn on top). Shapes may overlap; each
``Shape.mask`` is the exact VISIBLE (H, W) bool mask after occlusion, ``Shape.full_mask`` the whole silhouette.
Generation keeps every scene readable: each shape stays at least ``min_visible`` visible and its visible part is
one 4-connected region, and two shapes of the same colour never touch (so every flat-colour region is exactly
one shape's visible mask). Backgrounds are flat, noisy (``noise``) or textured (``texture``), always grey, so
they never take a shape colour; ``gradient`` adds a faint tint ramp (at most ``MAX_GRADIENT``, so still near grey)
that writes the pixel position into the background colour. Shape pixels are flat colours unless ``shape_noise`` > 0.

Fixed orientations (so the words below stay true): triangles, pentagons and stars point up; squares are axis
aligned; hexagons have a flat top and bottom. ``CORNERS`` counts polygon vertices (a star has 10: 5 tips and 5
inner corners; a circle has none).

Usage::

    import numpy as np
    from segzero.shapes.scene import ShapesConfig, make_scene, render
    cfg = ShapesConfig(size=112)
    rng = np.random.default_rng(0)
    shapes = make_scene(rng, cfg)           # list[Shape]; pixel frame of the generated image
    image = render(shapes, cfg, rng)        # PIL RGB, cfg.wh

Imports only numpy, scipy and PIL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

KINDS: tuple[str, ...] = ("circle", "square", "triangle", "pentagon", "hexagon", "star")
PLURALS: dict[str, str] = {k: k + "s" for k in KINDS}
CORNERS: dict[str, int] = {"circle": 0, "triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6, "star": 10}
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 200, 30),
    "purple": (140, 50, 190),
    "orange": (245, 130, 20),
}
FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


MAX_GRADIENT = 80.0  # ShapesConfig.gradient: largest tint ramp (+-40 per channel around the grey)


@dataclass(frozen=True)
class ShapesConfig:
    """How scenes are drawn and queried. Sizes are in pixels of the generated image (its own frame)."""

    size: int | tuple[int, int] = field(default=112, metadata={"help": "Image side (int) or (width, height)."})
    min_shapes: int = field(default=3, metadata={"help": "Fewest shapes in a scene."})
    max_shapes: int = field(default=5, metadata={"help": "Most shapes in a scene."})
    kinds: tuple[str, ...] = field(default=KINDS, metadata={"help": "Shape kinds drawn (subset of KINDS)."})
    colours: tuple[str, ...] = field(default=tuple(COLOURS), metadata={"help": "Colour names drawn (of COLOURS)."})
    min_radius_frac: float = field(default=0.08, metadata={"help": "Smallest circumradius / shorter image side."})
    max_radius_frac: float = field(default=0.18, metadata={"help": "Largest circumradius / shorter image side."})
    overlap: bool = field(default=True, metadata={"help": "Allow shapes of different colours to overlap."})
    min_visible: float = field(default=0.6, metadata={"help": "Least visible fraction of an occluded shape."})
    gap_frac: float = field(default=0.02, metadata={"help": "Free space between non-overlapping shapes / side."})
    area_ratio: float = field(default=1.25, metadata={"help": "Size superlatives need best >= ratio * runner-up."})
    distance_ratio: float = field(default=1.3, metadata={"help": "'closest' needs runner-up >= ratio * nearest."})
    margin_frac: float = field(default=0.04, metadata={"help": "Spatial words need this centre margin / side."})
    background: tuple[int, int, int] = field(default=(235, 235, 235), metadata={"help": "Background RGB (grey)."})
    noise: float = field(default=0.0, metadata={"help": "Std of Gaussian noise on the background (0 = flat)."})
    texture: float = field(default=0.0, metadata={"help": "Amplitude of a smooth grey stripe texture (0 = none)."})
    shape_noise: float = field(default=0.0, metadata={"help": "Std of noise on shape pixels (0 = flat colours)."})
    gradient: float = field(
        default=0.0,
        metadata={
            "help": "Amplitude of a faint background tint ramp (0..MAX_GRADIENT): red-blue balance across x, green "
            "across y."
        },
    )
    max_tries: int = field(default=200, metadata={"help": "Scene redraws before giving up on a query."})

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in CORNERS] + [c for c in self.colours if c not in COLOURS]
        if bad:
            raise ValueError(f"unknown shape kinds/colours {bad}; kinds: {KINDS}, colours: {tuple(COLOURS)}")
        if not self.kinds or not self.colours or not 1 <= self.min_shapes <= self.max_shapes:
            raise ValueError("need at least one kind and colour and 1 <= min_shapes <= max_shapes")
        if not 0 <= self.gradient <= MAX_GRADIENT:  # a stronger tint would leave grey and could meet a shape colour
            raise ValueError(f"gradient must be in [0, {MAX_GRADIENT}], got {self.gradient}")

    @property
    def wh(self) -> tuple[int, int]:
        """``(width, height)`` of the generated image."""
        return (self.size, self.size) if isinstance(self.size, int) else (int(self.size[0]), int(self.size[1]))

    @property
    def side(self) -> int:
        """Shorter image side in pixels (the unit of the ``*_frac`` fields)."""
        return min(self.wh)


@dataclass(frozen=True, eq=False)
class Shape:
    """One drawn shape: kind, colour name, silhouette centre ``(cx, cy)`` and circumradius in pixels;
    ``mask`` the exact visible (H, W) bool mask, ``full_mask`` the whole (unoccluded) silhouette."""

    kind: str
    colour: str
    cx: float
    cy: float
    radius: float
    mask: np.ndarray = field(repr=False)
    full_mask: np.ndarray = field(repr=False)

    @property
    def area(self) -> int:
        """Pixel area of the whole silhouette: the shape's size, used by 'largest' / 'smallest'."""
        return int(self.full_mask.sum())

    @property
    def visible_area(self) -> int:
        return int(self.mask.sum())

    @property
    def corners(self) -> int:
        return CORNERS[self.kind]

    def describe(self) -> dict:
        """JSON-ready facts (no masks): kind, colour, cx, cy, radius, area, visible_area, corners."""
        return {
            "kind": self.kind,
            "colour": self.colour,
            "cx": round(self.cx, 3),
            "cy": round(self.cy, 3),
            "radius": round(self.radius, 3),
            "area": self.area,
            "visible_area": self.visible_area,
            "corners": self.corners,
        }


def polygon(kind: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Vertices (x, y) of a polygonal kind with circumradius ``r`` in its fixed orientation (see module doc)."""
    if kind == "square":
        s = 0.85 * r
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if kind in ("triangle", "pentagon"):
        n = 3 if kind == "triangle" else 5
        angles = -np.pi / 2 + 2 * np.pi * np.arange(n) / n
        return [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in angles]
    if kind == "hexagon":  # a vertex at 0 degrees: flat top and bottom
        angles = 2 * np.pi * np.arange(6) / 6
        return [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in angles]
    if kind == "star":
        angles = -np.pi / 2 + np.pi * np.arange(10) / 5
        radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
        return [(cx + q * np.cos(a), cy + q * np.sin(a)) for q, a in zip(radii, angles, strict=True)]
    raise ValueError(f"unknown shape kind {kind!r}")


def shape_mask(kind: str, cx: float, cy: float, r: float, wh: tuple[int, int]) -> np.ndarray:
    """(H, W) bool silhouette of one shape drawn with PIL in an image of ``wh = (W, H)``."""
    canvas = Image.new("L", wh, 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
    else:
        draw.polygon(polygon(kind, cx, cy, r), fill=1)
    return np.asarray(canvas, dtype=bool)


def visible_masks(full: list[np.ndarray]) -> list[np.ndarray]:
    """Visible part of each silhouette in painting order: ``full[i]`` minus everything drawn after it."""
    out: list[np.ndarray] = []
    above = np.zeros_like(full[0]) if full else None
    for m in reversed(full):
        out.append(m & ~above)
        above = above | m
    return out[::-1]


def _readable(full: list[np.ndarray], colours: list[str], min_visible: float) -> list[np.ndarray] | None:
    """Visible masks when every shape is >= ``min_visible`` visible, 4-connected and no same-colour shapes touch."""
    vis = visible_masks(full)
    for i, (f, v) in enumerate(zip(full, vis, strict=True)):
        if v.sum() < min_visible * f.sum() or ndimage.label(v, structure=FOUR_CONNECTED)[1] != 1:
            return None
        grown = ndimage.binary_dilation(v, structure=FOUR_CONNECTED, iterations=2)
        if any(colours[j] == colours[i] and (grown & vis[j]).any() for j in range(len(vis)) if j != i):
            return None
    return vis


def make_scene(rng: np.random.Generator, config: ShapesConfig) -> list[Shape]:
    """Draw ``min_shapes..max_shapes`` shapes (random kind, colour, centre, radius) that satisfy the module rules.

    Without ``config.overlap`` the circumscribed circles stay ``gap_frac * side`` apart (no occlusion at all).
    May return fewer shapes than drawn for when space runs out (never fewer than one).
    """
    w, h = config.wh
    side = config.side
    gap = config.gap_frac * side
    n = int(rng.integers(config.min_shapes, config.max_shapes + 1))
    drafts: list[tuple[str, str, float, float, float, np.ndarray]] = []
    vis: list[np.ndarray] = []
    for _ in range(60 * n):
        if len(drafts) == n:
            break
        r = float(rng.uniform(config.min_radius_frac, config.max_radius_frac) * side)
        cx, cy = float(rng.uniform(r + 1, w - r - 2)), float(rng.uniform(r + 1, h - r - 2))
        kind = config.kinds[int(rng.integers(len(config.kinds)))]
        colour = config.colours[int(rng.integers(len(config.colours)))]
        if any(
            np.hypot(cx - d[2], cy - d[3]) < r + d[4] + gap for d in drafts if not config.overlap or d[1] == colour
        ):
            continue
        full = shape_mask(kind, cx, cy, r, (w, h))
        if not full.any():
            continue
        trial = _readable([d[5] for d in drafts] + [full], [d[1] for d in drafts] + [colour], config.min_visible)
        if trial is None:
            continue
        drafts.append((kind, colour, cx, cy, r, full))
        vis = trial
    return [Shape(k, c, x, y, r, v, f) for (k, c, x, y, r, f), v in zip(drafts, vis, strict=True)]


def render(shapes: list[Shape], config: ShapesConfig, rng: np.random.Generator) -> Image.Image:
    """RGB image of the scene: grey background (+ texture, + noise), then each shape's visible pixels in its colour."""
    w, h = config.wh
    pixels = np.empty((h, w, 3), dtype=np.float32)
    pixels[:] = config.background
    if config.texture > 0:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        grey = np.zeros((h, w), dtype=np.float32)
        for _ in range(2):
            angle, period, phase = rng.uniform(0, np.pi), rng.uniform(0.1, 0.4) * config.side, rng.uniform(0, 6.3)
            grey += np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period + phase)
        pixels += (0.5 * config.texture * grey)[..., None]
    if config.gradient > 0:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        u, v = xx / max(1, w - 1) - 0.5, yy / max(1, h - 1) - 0.5
        pixels += config.gradient * np.stack([u, v, -u], axis=-1)
    if config.noise > 0:
        pixels += rng.normal(0.0, config.noise, size=pixels.shape)
    for s in shapes:
        pixels[s.mask] = COLOURS[s.colour]
    if config.shape_noise > 0:
        fg = np.logical_or.reduce([s.mask for s in shapes]) if shapes else np.zeros((h, w), dtype=bool)
        pixels[fg] += rng.normal(0.0, config.shape_noise, size=(int(fg.sum()), 3))
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


__all__ = [
    "COLOURS",
    "CORNERS",
    "KINDS",
    "PLURALS",
    "Shape",
    "ShapesConfig",
    "make_scene",
    "render",
    "shape_mask",
    "visible_masks",
]
