"""A contact sheet of shapes-world samples: each scene with its answer masks tinted and its query underneath.

Usage::

    from segzero.shapes.preview import contact_sheet
    sheet = contact_sheet(n=8, seed=0, split="test", layout="multi")   # PIL RGB image
    sheet.save("shapes.png")

CLI: ``segzero world preview --out shapes.png [--n 8] [--split test] [--layout multi] [--size 160]``.
Imports only numpy and PIL.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from segzero.shapes.scene import ShapesConfig
from segzero.shapes.world import make_sample


def overlay(image: Image.Image, mask: np.ndarray, *, colour=(255, 255, 255), alpha: float = 0.55) -> Image.Image:
    """``image`` with the (H, W) bool ``mask`` blended towards ``colour`` by ``alpha`` and outlined in black."""
    rgb = np.asarray(image.convert("RGB")).astype(np.float32)
    rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.asarray(colour, dtype=np.float32)
    edge = mask & ~(
        np.pad(mask, 1)[2:, 1:-1] & np.pad(mask, 1)[:-2, 1:-1] & np.pad(mask, 1)[1:-1, 2:] & np.pad(mask, 1)[1:-1, :-2]
    )
    rgb[edge] = 0
    return Image.fromarray(rgb.clip(0, 255).astype(np.uint8))


def contact_sheet(
    *,
    n: int = 8,
    seed: int = 0,
    split: str = "train",
    layout: str = "multi",
    config: ShapesConfig | None = None,
    columns: int = 4,
    text_height: int = 28,
) -> Image.Image:
    """``n`` samples (``make_sample(0..n-1, ...)``) in a grid of ``columns``; answers tinted, query and answer
    count written below each scene (``text_height`` pixels per caption)."""
    config = config or ShapesConfig(size=160)
    w, h = config.wh
    rows = (n + columns - 1) // columns
    sheet = Image.new("RGB", (columns * w, rows * (h + text_height)), "white")
    draw = ImageDraw.Draw(sheet)
    for i in range(n):
        s = make_sample(i, seed=seed, config=config, split=split, layout=layout)
        x, y = (i % columns) * w, (i // columns) * (h + text_height)
        sheet.paste(overlay(s["image"], s["mask"]), (x, y))
        caption = s["problem"] if len(s["problem"]) * 6 <= w else s["problem"][: w // 6 - 1] + "…"
        draw.text((x + 2, y + h + 2), caption, fill="black")
        draw.text((x + 2, y + h + 14), f"{len(s['answers'])} answer(s), {s['template']}", fill="gray")
    return sheet


__all__ = ["contact_sheet", "overlay"]
