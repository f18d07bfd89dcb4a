"""The web demo served at ``/``: one self-contained HTML page (inline CSS and JS, no external resources).

The page lists the shapes examples (``GET /v1/examples``), lets the user pick an example or upload an image,
type a query and submit it to ``POST /v1/segment`` (multipart, ``mask_png=true``). It then draws the overlay on a
canvas (image; outside the mask dimmed to ``DIM`` of its brightness and the mask's edge drawn in cyan, so a mask
shows on shapes of any colour; boxes in green, points in yellow; all in original pixels scaled to the canvas), shows
the reasoning, the objects table and the raw JSON. An empty mask is said in words on the canvas and under the
reasoning. An error (the server's JSON error message, or an image the browser cannot show) clears the previous
result. Element ids used by the browser test: ``image-input``, ``query``, ``submit``, ``examples``, ``overlay``
(``data-state="done"`` once drawn, ``data-mask="empty"`` or ``"drawn"``), ``reasoning``, ``objects``, ``error``,
``status``.
"""

from __future__ import annotations

import html

DIM = 0.35  # brightness kept outside the mask


def render_page(*, title: str = "segzero", model: str = "", segmenter: str = "SAM2") -> str:
    """The demo page as an HTML string; ``title``, ``model`` (a one-line description) and ``segmenter`` (what turns
    the answer into a mask, in words, e.g. ``Segmenter.description``) are escaped."""
    out = _PAGE.replace("__TITLE__", html.escape(title)).replace("__MODEL__", html.escape(model))
    return out.replace("__SEGMENTER__", html.escape(segmenter)).replace("__DIM__", repr(DIM))


_PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__ demo</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1100px; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; } .muted { color: #666; font-size: .9rem; }
  form { display: flex; gap: .5rem; flex-wrap: wrap; align-items: center; margin: 1rem 0; }
  input[type=text] { flex: 1 1 320px; padding: .45rem; font-size: 1rem; }
  button { padding: .45rem 1rem; font-size: 1rem; cursor: pointer; }
  #examples { display: flex; gap: .5rem; flex-wrap: wrap; }
  #examples button { display: flex; flex-direction: column; align-items: center; width: 120px; padding: .3rem;
    font-size: .75rem; background: #f6f6f6; border: 1px solid #ccc; border-radius: 6px; }
  #examples img { width: 96px; height: 96px; }
  main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1.5rem; margin-top: 1rem; }
  canvas { max-width: 100%; border: 1px solid #ccc; background: #fafafa; }
  #reasoning { white-space: pre-wrap; background: #f4f7ff; padding: .6rem; border-radius: 6px; min-height: 1.2rem; }
  #error { color: #b00020; font-weight: 600; } table { border-collapse: collapse; font-size: .85rem; }
  td, th { border: 1px solid #ddd; padding: .2rem .4rem; text-align: left; }
  pre.raw { font-size: .75rem; max-height: 240px; overflow: auto; background: #f6f6f6; padding: .5rem; }
</style>
</head>
<body>
<h1>__TITLE__: reasoning segmentation</h1>
<div class="muted">Model: __MODEL__. The model reasons about the query, answers with boxes and points, and
__SEGMENTER__ turns them into a mask. API: <a href="/docs">/docs</a>.</div>

<h2 style="font-size:1rem">Examples (shapes world, drawn on the fly)</h2>
<div id="examples"></div>

<form id="form">
  <input type="file" id="image-input" accept="image/*">
  <input type="text" id="query" placeholder="what should be segmented? e.g. the red circle" maxlength="1000">
  <button type="submit" id="submit">Segment</button>
  <span id="status" class="muted"></span>
</form>
<div id="error" role="alert"></div>

<main>
  <div><canvas id="overlay" width="480" height="320" data-state="empty"></canvas></div>
  <div>
    <h3 style="margin-top:0">Reasoning</h3>
    <div id="reasoning"></div>
    <h3>Objects (original pixels)</h3>
    <table id="objects"><thead><tr><th>#</th><th>box (x1, y1, x2, y2)</th><th>points</th><th>score</th></tr></thead>
      <tbody></tbody></table>
    <details><summary>Raw JSON</summary><pre class="raw" id="raw"></pre></details>
  </div>
</main>

<script>
"use strict";
const $ = (id) => document.getElementById(id);
let currentFile = null;

function setStatus(text) { $("status").textContent = text; }
function clearResult() {
  $("reasoning").textContent = ""; $("raw").textContent = "";
  $("objects").querySelector("tbody").replaceChildren();
  delete $("overlay").dataset.mask;
}
function showError(text) { clearResult(); $("error").textContent = text; setStatus(""); }
function blankCanvas() {
  const canvas = $("overlay");
  canvas.width = 480; canvas.height = 320; canvas.getContext("2d").clearRect(0, 0, 480, 320);
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot display this image"));
    img.src = src;
  });
}

async function preview(file) {
  const canvas = $("overlay");
  const url = URL.createObjectURL(file);
  try {
    const img = await loadImage(url);
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    canvas.getContext("2d").drawImage(img, 0, 0);
    canvas.dataset.state = "preview";
  } catch (e) {
    blankCanvas(); canvas.dataset.state = "error"; showError(e.message);
  } finally { URL.revokeObjectURL(url); }
}

async function drawOverlay(file, result) {
  const canvas = $("overlay"), ctx = canvas.getContext("2d");
  const url = URL.createObjectURL(file);
  let img;
  try { img = await loadImage(url); } finally { URL.revokeObjectURL(url); }
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  ctx.drawImage(img, 0, 0);
  const [w, h] = result.image_size, sx = canvas.width / w, sy = canvas.height / h;
  if (result.mask_png) {
    const m = await loadImage("data:image/png;base64," + result.mask_png);
    const off = document.createElement("canvas");
    off.width = canvas.width; off.height = canvas.height;
    const octx = off.getContext("2d");
    octx.imageSmoothingEnabled = false;
    octx.drawImage(m, 0, 0, canvas.width, canvas.height);
    const md = octx.getImageData(0, 0, off.width, off.height).data;
    const W = canvas.width, H = canvas.height, dim = __DIM__;
    const id = ctx.getImageData(0, 0, W, H), d = id.data;
    const inside = (x, y) => x >= 0 && y >= 0 && x < W && y < H && md[4 * (y * W + x)] > 127;
    let area = 0;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const i = 4 * (y * W + x);
      if (!inside(x, y)) { d[i] *= dim; d[i + 1] *= dim; d[i + 2] *= dim; continue; }
      area++;
      if (!inside(x - 1, y) || !inside(x + 1, y) || !inside(x, y - 1) || !inside(x, y + 1)) {
        d[i] = 0; d[i + 1] = 229; d[i + 2] = 255;  // the mask's edge in cyan
      }
    }
    ctx.putImageData(id, 0, 0);
    canvas.dataset.mask = area > 0 ? "drawn" : "empty";
  } else canvas.dataset.mask = "empty";
  const lw = Math.max(2, Math.round(Math.min(canvas.width, canvas.height) / 150));
  const r = Math.max(3, Math.round(Math.min(canvas.width, canvas.height) / 60));
  for (const obj of result.objects) {
    if (obj.box) {
      const [x1, y1, x2, y2] = obj.box;
      const bx = x1 * sx, by = y1 * sy, bw = (x2 - x1 + 1) * sx, bh = (y2 - y1 + 1) * sy;
      ctx.lineWidth = lw + 2; ctx.strokeStyle = "#000"; ctx.strokeRect(bx, by, bw, bh);
      ctx.lineWidth = lw; ctx.strokeStyle = "#3cff5a"; ctx.strokeRect(bx, by, bw, bh);
    }
    for (const [x, y] of obj.points) {
      ctx.beginPath(); ctx.arc(x * sx, y * sy, r + 1, 0, 2 * Math.PI); ctx.fillStyle = "#000"; ctx.fill();
      ctx.beginPath(); ctx.arc(x * sx, y * sy, r - 1, 0, 2 * Math.PI); ctx.fillStyle = "#ffe600"; ctx.fill();
    }
  }
  if (canvas.dataset.mask === "empty") {
    const fs = Math.max(12, Math.round(Math.min(canvas.width, canvas.height) / 12));
    ctx.font = "bold " + fs + "px sans-serif"; ctx.textBaseline = "top";
    ctx.fillStyle = "rgba(0,0,0,.7)"; ctx.fillRect(0, 0, ctx.measureText("empty mask").width + fs, fs * 1.6);
    ctx.fillStyle = "#fff"; ctx.fillText("empty mask", fs / 2, fs * 0.3);
  }
  canvas.dataset.state = "done";
}

function showResult(result) {
  let text = result.reasoning ?? "(the model wrote no <think> reasoning)";
  if (!result.parse_ok) text += "\n\nThe answer could not be parsed: " + result.parse_error;
  else if (result.objects.length === 0) text += "\n\nThe model found nothing to segment.";
  else if (result.mask_area === 0) text += "\n\nThe mask is empty: the answer did not land on anything.";
  $("reasoning").textContent = text;
  const body = $("objects").querySelector("tbody");
  body.replaceChildren();
  result.objects.forEach((obj, i) => {
    const tr = document.createElement("tr");
    const cells = [String(i), obj.box ? obj.box.join(", ") : "-",
      obj.points.map((p) => "(" + p.join(", ") + ")").join(" "),
      result.scores[i] !== undefined ? result.scores[i].toFixed(3) : "-"];
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
    body.appendChild(tr);
  });
  const shown = Object.assign({}, result);
  if (shown.mask_png) shown.mask_png = "(" + shown.mask_png.length + " base64 chars)";
  $("raw").textContent = JSON.stringify(shown, null, 2);
}

async function submit(event) {
  event.preventDefault();
  $("error").textContent = ""; clearResult();
  const query = $("query").value.trim();
  if (!currentFile) { showError("Choose an image or an example first."); return; }
  if (!query) { showError("Type a query."); return; }
  const form = new FormData();
  form.append("image", currentFile);
  form.append("query", query);
  form.append("mask_png", "true");
  $("submit").disabled = true; $("overlay").dataset.state = "running";
  setStatus("running the model...");
  const t0 = performance.now();
  try {
    const resp = await fetch("/v1/segment", { method: "POST", body: form });
    const result = await resp.json();
    if (!resp.ok) {
      const e = result.error || {};
      await preview(currentFile);  // the plain image (or a blank canvas): no overlay of an earlier answer
      showError((e.message || resp.statusText) + (e.code ? " [" + e.code + "]" : ""));
      $("overlay").dataset.state = "error";
      return;
    }
    showResult(result);
    await drawOverlay(currentFile, result);
    setStatus("done in " + Math.round(performance.now() - t0) + " ms");
  } catch (e) {
    showError("request failed: " + e.message);
    $("overlay").dataset.state = "error";
  } finally { $("submit").disabled = false; }
}

async function loadExamples() {
  try {
    const resp = await fetch("/v1/examples");
    const examples = await resp.json();
    for (const ex of examples) {
      const b = document.createElement("button");
      b.type = "button"; b.className = "example"; b.dataset.index = ex.index;
      const img = document.createElement("img"); img.src = ex.url; img.alt = ex.query;
      const cap = document.createElement("span"); cap.textContent = ex.query;
      b.append(img, cap);
      b.addEventListener("click", async () => {
        const blob = await (await fetch(ex.url)).blob();
        currentFile = new File([blob], "example-" + ex.index + ".png", { type: "image/png" });
        $("query").value = ex.query;
        $("error").textContent = "";
        await preview(currentFile);
      });
      $("examples").appendChild(b);
    }
  } catch (e) { showError("could not load the examples: " + e.message); }
}

$("image-input").addEventListener("change", async () => {
  const f = $("image-input").files[0];
  if (f) { currentFile = f; $("error").textContent = ""; await preview(f); }
});
$("form").addEventListener("submit", submit);
loadExamples();
</script>
</body>
</html>
"""
