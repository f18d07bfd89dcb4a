"""Drawing a result onto its image: the mask tinted and outlined, each object's box and points (``segment``'s
``overlay.png``, the video strip and ``overlay.mp4`` of ``segment --video``). Imports numpy and PIL when called."""

from __future__ import annotations


def draw_overlay(image, mask, objects, *, color=(255, 40, 40), alpha: float = 0.45):
    """The image (PIL RGB) with ``mask`` (H, W) bool tinted in ``color`` at ``alpha``, its outline (white on black), and each object's
    box (rectangle) and points (ringed dots) drawn in original pixels; line widths scale with the image size."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    m = np.asarray(mask, dtype=bool)
    tinted = base.copy()
    tinted[m] = (1 - alpha) * base[m] + alpha * np.asarray(color, dtype=np.float32)
    out = Image.fromarray(tinted.round().astype(np.uint8))
    if m.any() and min(m.shape) >= 3:  # outline: white on a dark halo, visible whatever the object's colour
        mask_im = Image.fromarray(m.astype(np.uint8) * 255)
        edge = Image.fromarray(((np.asarray(mask_im.filter(ImageFilter.FIND_EDGES)) > 0) & m).astype(np.uint8) * 255)
        halo = np.asarray(edge.filter(ImageFilter.MaxFilter(5))) > 0
        line = np.asarray(edge.filter(ImageFilter.MaxFilter(3))) > 0
        arr = np.asarray(out).copy()
        arr[halo] = (0, 0, 0)
        arr[line] = (255, 255, 255)
        out = Image.fromarray(arr)
    draw = ImageDraw.Draw(out)
    w, h = out.size
    lw = max(2, round(min(w, h) / 150))
    r = max(3, round(min(w, h) / 60))
    for obj in objects:  # dark under-stroke + bright stroke: visible on any background
        if obj.box is not None:
            x1, y1, x2, y2 = (float(v) for v in obj.box)
            x2, y2 = max(x1, x2), max(y1, y2)
            draw.rectangle((x1, y1, x2, y2), outline=(0, 0, 0), width=lw + 2)
            draw.rectangle((x1 + 1, y1 + 1, max(x1 + 1, x2 - 1), max(y1 + 1, y2 - 1)), outline=(60, 255, 90), width=lw)
        for x, y in obj.points:
            draw.ellipse((x - r - 1, y - r - 1, x + r + 1, y + r + 1), fill=(0, 0, 0))
            draw.ellipse((x - r + 1, y - r + 1, x + r - 1, y + r - 1), fill=(255, 230, 0))
    return out


__all__ = ["draw_overlay"]
