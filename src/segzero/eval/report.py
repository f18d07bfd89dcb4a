"""``DIR/report.html``: a self-contained page with the summary table (protocol stated) and a sample gallery.

The gallery shows the ``gallery`` best and worst samples by IoU: the image with the gt mask (green; ignore
pixels grey) and with the predicted mask (red), as embedded PNG thumbnails, plus the query, the reasoning and
the status/error. Images and gt masks are re-read from the dataset (passed in, or re-opened from ``run.json``);
predicted masks come from the records' RLE. When the dataset cannot be opened the panels show masks only.

Usage::

    segzero eval report DIR                 # (re)write DIR/report.html
    from segzero.eval.report import write_report; write_report("runs/x")
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from segzero.errors import UserError
from segzero.eval.records import read_records
from segzero.eval.summary import REPORT_FILE, SAMPLES_FILE, SUMMARY_FILE, read_header
from segzero.rle import decode_mask

GT_COLOR = (40, 200, 60)
PRED_COLOR = (230, 40, 40)
IGNORE_COLOR = (150, 150, 150)


def _png(rgb: np.ndarray) -> str:
    from PIL import Image  # noqa: PLC0415

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def overlay(
    image: np.ndarray | None, mask: np.ndarray | None, color, *, ignore=None, thumb: int = 320, alpha: float = 0.5
) -> str:
    """PNG data URI of ``image`` ((H, W, 3) uint8 or None -> black) with ``mask`` ((H, W) bool) tinted ``color``,
    downscaled so the longer side is at most ``thumb`` pixels."""
    from PIL import Image  # noqa: PLC0415

    shape = image.shape[:2] if image is not None else (mask.shape if mask is not None else (64, 64))
    base = image.astype(np.float32) if image is not None else np.zeros((*shape, 3), np.float32)
    for m, c in ((ignore, IGNORE_COLOR), (mask, color)):
        if m is not None and m.shape == tuple(shape):
            base[m] = (1 - alpha) * base[m] + alpha * np.asarray(c, np.float32)
    im = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    scale = thumb / max(im.size)
    if scale < 1 or scale >= 2:  # shrink large images; blow tiny ones up (nearest) so the masks stay visible
        size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        im = im.resize(size, Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.BILINEAR)
    return _png(np.asarray(im))


def _reopen(header: dict):
    """The run's dataset from ``run.json``'s config, or None when it cannot be opened here."""
    from segzero.eval.datasets import load_eval_dataset  # noqa: PLC0415

    cfg = header.get("config", {})
    try:
        return load_eval_dataset(
            cfg["data"],
            split=cfg.get("split"),
            fmt=cfg.get("fmt", "auto"),
            sentences=cfg.get("sentences", "first"),
            refer_dataset=cfg.get("refer_dataset", "refcocog"),
            split_by=cfg.get("split_by"),
            images_dir=cfg.get("images_dir"),
        )
    except (UserError, KeyError):
        return None


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, dict):
        return "<br>".join(f"{html.escape(str(k))}: {_fmt(x)}" for k, x in v.items())
    return html.escape(str(v))


def _card(rec: dict, ds, by_id: dict, thumb: int) -> str:
    image = gt = None
    info = by_id.get(rec["id"])
    if ds is not None and info is not None:
        try:
            image = np.asarray(ds.image(info).convert("RGB"))
            gt = ds.mask(info)
        except (UserError, OSError, ValueError):
            image = gt = None
    pred = decode_mask(rec.get("pred_rle"))
    target = None if gt is None else gt == 1
    ignore = None if gt is None else gt == 255
    panels = [
        ("gt", overlay(image, target, GT_COLOR, ignore=ignore, thumb=thumb)),
        ("prediction", overlay(image, pred, PRED_COLOR, thumb=thumb)),
    ]
    imgs = "".join(
        f'<figure><img src="{src}" alt="{name}"><figcaption>{name}</figcaption></figure>' for name, src in panels
    )
    status = rec["status"] + (f" ({rec['stage']}): {rec['error']}" if rec.get("error") else "")
    return (
        f'<div class="card"><div class="imgs">{imgs}</div>'
        f"<p><b>{html.escape(rec['id'])}</b> IoU {rec['iou']:.3f} (I {rec['intersection']} / U {rec['union']})"
        f" &middot; {html.escape(status)}</p><p class=q>{html.escape(rec['query'])}</p>"
        f"<details><summary>reasoning</summary><pre>{html.escape(rec.get('reasoning') or '')}</pre></details></div>"
    )


CSS = """body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
.grid{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ddd;padding:8px;width:680px}
.imgs{display:flex;gap:8px}figure{margin:0}figcaption{font-size:small;color:#555}
pre{white-space:pre-wrap;max-height:12em;overflow:auto}.q{font-style:italic}"""


def write_report(run_dir: str | Path, *, dataset=None, gallery: int = 6, thumb: int = 320) -> Path:
    """Write ``run_dir/report.html`` from its summary and records; returns the path."""
    run_dir = Path(run_dir)
    header = read_header(run_dir)
    summary = json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    records, _ = read_records(run_dir / SAMPLES_FILE)
    ds = dataset if dataset is not None else _reopen(header)
    by_id = {s.id: s for s in ds.samples} if ds is not None else {}
    ranked = sorted(records, key=lambda r: (r["iou"], r["index"]))
    worst = ranked[:gallery]
    best = [r for r in reversed(ranked[-gallery:]) if r not in worst]
    head = [
        "gIoU",
        "cIoU",
        "n",
        "n_expected",
        "complete",
        "failed",
        "parse_failures",
        "errors",
        "errors_by_stage",
        "empty_targets",
        "samples_with_ignore",
        "shard",
        "backend",
        "prompt",
        "frame",
        "models",
        "dataset",
        "package_version",
        "created",
    ]
    rows = "".join(f"<tr><th>{k}</th><td>{_fmt(summary.get(k))}</td></tr>" for k in head)
    proto = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in summary["protocol"].items())
    title = f"segzero eval: {html.escape(str(summary.get('dataset', {}).get('source', run_dir)))}"
    body = (
        f"<h1>{title}</h1><p>gIoU <b>{100 * summary['gIoU']:.2f}</b> &middot; cIoU <b>{100 * summary['cIoU']:.2f}</b>"
        f" over {summary['n']} samples (percent).</p><h2>Summary</h2><table>{rows}</table>"
        f"<h2>Protocol</h2><table>{proto}</table>"
        f"<h2>Worst {len(worst)}</h2><div class=grid>{''.join(_card(r, ds, by_id, thumb) for r in worst)}</div>"
        f"<h2>Best {len(best)}</h2><div class=grid>{''.join(_card(r, ds, by_id, thumb) for r in best)}</div>"
    )
    path = run_dir / REPORT_FILE
    page = f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>{CSS}</style></head>'
    path.write_text(page + f"<body>{body}</body></html>\n", encoding="utf-8")
    return path
