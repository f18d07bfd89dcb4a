"""Small synthetic datasets in the ``refer`` toolkit layout (for tests and the data benchmark) and a your-own-data
example (``write_manifest_example``: a manifest and COCO instances, the README's ``my_data/``).

Usage::

    from segzero.data.synthetic import write_refer_fixture
    info = write_refer_fixture(tmp_path, n_images=4, seed=0)
    # tmp_path/refer/refs(umd).p, tmp_path/refer/instances.json, tmp_path/images/*.jpg
    info["masks"][ann_id]      # the expected (H, W) bool gt mask of each good annotation
    info["broken"]             # {reason: n rows} the builder must report for the deliberately bad refs

Each image gets a polygon rectangle, a two-polygon annotation (OR-ed), an uncompressed RLE and a compressed
RLE, each referred by a ref with two expressions (split ``train``, every fourth ref ``val``). With
``broken=True`` it adds one of each bad case on the first image(s): a ref to a missing annotation, an
annotation whose only polygon has 2 points, one whose polygon is degenerate (decodes empty), a ref to an
image id that is not in instances.json, and an image listed but absent from the image folder.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils


def _rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts (column-major runs starting with zeros)."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])) != 0)
    return np.diff(np.concatenate([[0], changes])).tolist()


def write_refer_fixture(
    root: str | Path,
    *,
    n_images: int = 4,
    seed: int = 0,
    broken: bool = True,
    min_size: int = 40,
    max_size: int = 120,
    dataset_split_by: str = "umd",
) -> dict:
    """Write ``root/refer/refs(<split_by>).p``, ``root/refer/instances.json`` and ``root/images/``.

    Image sizes are random in ``[min_size, max_size]`` (W and H independently). Returns ``{"refer_dir",
    "images_dir", "masks": {ann_id: (H, W) bool}, "sizes": {image_id: (W, H)}, "refs": [...],
    "good_rows": {split: n}, "broken": {reason: n rows}}``.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    refer_dir, images_dir = root / "refer", root / "images"
    refer_dir.mkdir(parents=True, exist_ok=True)
    images_dir.mkdir(parents=True, exist_ok=True)
    images, anns, refs, masks, sizes = [], [], [], {}, {}
    good_rows: dict[str, int] = {}
    ann_id = ref_id = sent_id = 0

    def add_ref(image_id: int, aid: int, split: str, texts: list[str]) -> None:
        nonlocal ref_id, sent_id
        ref_id += 1
        sents = []
        for t in texts:
            sent_id += 1
            sents.append({"sent": t.lower(), "raw": t + ".", "tokens": t.lower().split(), "sent_id": sent_id})
        refs.append(
            {
                "ref_id": ref_id,
                "ann_id": aid,
                "image_id": image_id,
                "split": split,
                "sentences": sents,
                "category_id": 1,
            }
        )

    for i in range(n_images):
        image_id = 1000 + i
        w, h = (int(v) for v in rng.integers(min_size, max_size + 1, size=2))
        file_name = f"COCO_train2014_{image_id:012d}.jpg"
        images.append({"id": image_id, "file_name": file_name, "width": w, "height": h})
        sizes[image_id] = (w, h)
        pixels = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images_dir / file_name, quality=90)

        def box(rw, rh, w=w, h=h):
            x0 = int(rng.integers(0, w - rw))
            y0 = int(rng.integers(0, h - rh))
            return x0, y0, x0 + rw, y0 + rh

        segs = []
        x0, y0, x1, y1 = box(w // 3, h // 3)  # polygon rectangle
        segs.append([[x0, y0, x1, y0, x1, y1, x0, y1]])
        xa, ya, xb, yb = box(w // 5, h // 5)  # two polygons, one annotation (plus a 2-point polygon, skipped)
        xc, yc, xd, yd = box(w // 6, h // 4)
        segs.append([[xa, ya, xb, ya, xb, yb, xa, yb], [xc, yc, xd, yc, xd, yd, xc, yd], [xa, ya, xb, yb]])
        yy, xx = np.mgrid[0:h, 0:w]  # ellipse as uncompressed RLE
        cx, cy, rx, ry = w * 0.6, h * 0.5, w * 0.25, h * 0.3
        ellipse = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        segs.append({"size": [h, w], "counts": _rle_counts(ellipse)})
        blob = np.zeros((h, w), dtype=bool)  # L-shape as compressed RLE (counts as str)
        blob[h // 4 : h // 2, w // 8 : w // 2] = True
        blob[h // 4 : 3 * h // 4, w // 8 : w // 4] = True
        rle = mask_utils.encode(np.asfortranarray(blob.astype(np.uint8)))
        segs.append({"size": [h, w], "counts": rle["counts"].decode("ascii")})
        for k, seg in enumerate(segs):
            ann_id += 1
            anns.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": 1,
                    "segmentation": seg,
                    "area": 0,
                    "bbox": [0, 0, 0, 0],
                    "iscrowd": 0,
                }
            )
            if isinstance(seg, dict):
                masks[ann_id] = ellipse if k == 2 else blob
            else:
                polys = [p for p in seg if len(p) >= 6]
                masks[ann_id] = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w))).astype(bool)
            split = "val" if ann_id % 4 == 0 else "train"
            add_ref(image_id, ann_id, split, [f"Object {k} of image {i}", f"the thing number {k} in picture {i}"])
            good_rows[split] = good_rows.get(split, 0) + 2
        add_ref(image_id, ann_id - 3, "train", [f"Again the rectangle of image {i}"])  # 2nd ref, same annotation
        good_rows["train"] += 1

    broken_rows: dict[str, int] = {}
    if broken:
        first = images[0]
        add_ref(first["id"], 999_999, "train", ["a ref whose annotation does not exist"])
        broken_rows["ann_id_not_found"] = 1
        ann_id += 1
        anns.append(
            {
                "id": ann_id,
                "image_id": first["id"],
                "category_id": 1,
                "segmentation": [[1, 1, 5, 5]],
                "area": 0,
                "bbox": [0, 0, 0, 0],
                "iscrowd": 0,
            }
        )
        add_ref(first["id"], ann_id, "train", ["a polygon with two points"])
        broken_rows["polygon_too_few_points"] = 1
        ann_id += 1
        anns.append(
            {
                "id": ann_id,
                "image_id": first["id"],
                "category_id": 1,
                "segmentation": [[1.2, 1.2, 1.4, 1.4, 1.3, 1.3]],
                "area": 0,
                "bbox": [0, 0, 0, 0],
                "iscrowd": 0,
            }
        )
        add_ref(first["id"], ann_id, "train", ["a degenerate polygon"])
        broken_rows["empty_mask"] = 1
        add_ref(424242, ann_id - 2, "train", ["a ref to an image id that is not there"])
        broken_rows["image_id_not_found"] = 1
        missing = {"id": 5000, "file_name": "COCO_train2014_000000005000.jpg", "width": 30, "height": 20}
        images.append(missing)
        sizes[5000] = (30, 20)
        ann_id += 1
        anns.append(
            {
                "id": ann_id,
                "image_id": 5000,
                "category_id": 1,
                "segmentation": [[2, 2, 10, 2, 10, 10, 2, 10]],
                "area": 0,
                "bbox": [0, 0, 0, 0],
                "iscrowd": 0,
            }
        )
        add_ref(5000, ann_id, "train", ["an object in a missing image", "another sentence there"])
        broken_rows["missing_image"] = 2

    with open(refer_dir / f"refs({dataset_split_by}).p", "wb") as f:
        pickle.dump(refs, f)
    (refer_dir / "instances.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]})
    )
    return {
        "refer_dir": refer_dir,
        "images_dir": images_dir,
        "masks": masks,
        "sizes": sizes,
        "refs": refs,
        "good_rows": good_rows,
        "broken": broken_rows,
    }


def write_grefcoco_fixture(root: str | Path) -> dict:
    """A gRefCOCO folder in the released layout: ``root/grefs(unc).json`` (``ann_id`` lists, ``[-1]`` = no target),
    ``root/instances.json`` and ``root/images/COCO_1.jpg`` (30 x 20), all split ``val``. Three expressions: "both
    things" (annotations 70 and 71: the target is their union), "the purple dog" (no target) and "left thing"
    (annotation 70 and the crowd annotation 72, which GRES's loader leaves out). Returns ``{"refer_dir",
    "images_dir", "boxes": {ann_id: (x1, y1, x2, y2) polygon corners}, "targets": {sentence: [ann_id, ...]}}``."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(root / "images" / "COCO_1.jpg")
    boxes = {70: (2, 2, 10, 10), 71: (20, 5, 28, 15), 72: (0, 12, 29, 19)}
    targets = {"both things": [70, 71], "the purple dog": [], "left thing": [70]}
    ann_ids = {"both things": [70, 71], "the purple dog": [-1], "left thing": [70, 72]}
    refs = [
        {
            "ref_id": i + 1,
            "ann_id": ann_ids[sent],
            "image_id": 1,
            "split": "val",
            "category_id": [1 for a in ann_ids[sent] if a > 0],
            "sentences": [{"sent": sent, "raw": sent, "sent_id": 10 + i, "tokens": sent.split()}],
        }
        for i, sent in enumerate(targets)
    ]
    (root / "grefs(unc).json").write_text(json.dumps(refs))
    annotations = [
        {
            "id": a,
            "image_id": 1,
            "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]],
            "category_id": 1,
            "iscrowd": int(a == 72),
        }
        for a, (x1, y1, x2, y2) in boxes.items()
    ]
    instances = {
        "images": [{"id": 1, "file_name": "COCO_1.jpg", "width": 30, "height": 20}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "thing"}],
    }
    (root / "instances.json").write_text(json.dumps(instances))
    return {"refer_dir": root, "images_dir": root / "images", "boxes": boxes, "targets": targets}


def write_manifest_example(root: str | Path) -> dict:
    """Your-own-data inputs in every form ``segzero data build`` reads (the README's ``my_data/``): two images
    ``root/images/desk.png`` and ``street.png`` (96 x 64), masks in ``root/masks/``, ``root/manifest.jsonl`` (a PNG
    mask, an id mask with ``mask_value``, a compressed RLE, a polygon, a row with two objects, an empty target) and
    COCO inputs ``root/instances.json`` + ``root/queries.jsonl`` (queries naming one, two and no annotations).
    Returns ``{"manifest", "instances", "queries", "images_dir", "masks": {manifest row id: (H, W) bool gt}}``."""
    root = Path(root)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    h, w = 64, 96
    regions = {  # object -> (image, its pixels)
        "mug": ("desk", np.s_[20:44, 10:30]),
        "book": ("desk", np.s_[30:56, 50:88]),
        "left car": ("street", np.s_[36:52, 4:40]),
        "right car": ("street", np.s_[34:54, 56:92]),
    }
    colours = {"mug": (220, 30, 30), "book": (30, 60, 220), "left car": (30, 180, 60), "right car": (230, 200, 20)}
    pixels = {name: np.zeros((h, w), bool) for name in regions}
    images = {name: np.full((h, w, 3), 235, np.uint8) for name in ("desk", "street")}
    for name, (image, sl) in regions.items():
        pixels[name][sl] = True
        images[image][sl] = colours[name]
    sign = [[44.0, 4.0, 60.0, 28.0, 28.0, 28.0]]  # a triangle (COCO polygon, image pixels)
    pixels["sign"] = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(sign, h, w))).astype(bool)
    images["street"][pixels["sign"]] = (240, 120, 20)
    for name, array in images.items():
        Image.fromarray(array).save(root / "images" / f"{name}.png")
    Image.fromarray(pixels["mug"].astype(np.uint8) * 255).save(root / "masks" / "mug.png")
    ids = pixels["mug"].astype(np.uint8) + 2 * pixels["book"].astype(np.uint8)
    Image.fromarray(ids).save(root / "masks" / "desk_ids.png")  # 1 = mug, 2 = book
    Image.fromarray(pixels["right car"].astype(np.uint8) * 255).save(root / "masks" / "right_car.png")
    rle = mask_utils.encode(np.asfortranarray(pixels["left car"].astype(np.uint8)))
    left_car = {"size": [h, w], "counts": rle["counts"].decode("ascii")}
    rows = [
        {"id": "mug", "image": "images/desk.png", "query": "something to drink from", "mask": "masks/mug.png"},
        {"id": "book", "image": "images/desk.png", "query": "what could I read?", "mask": "masks/desk_ids.png",
         "mask_value": 2},
        {"id": "left-car", "image": "images/street.png", "query": "the green car", "rle": left_car},
        {"id": "sign", "image": "images/street.png", "query": "the warning sign", "polygon": sign},
        {"id": "cars", "image": "images/street.png", "query": "every car",
         "objects": [{"rle": left_car}, {"mask": "masks/right_car.png"}]},
        {"id": "nothing", "image": "images/desk.png", "query": "the bicycle", "objects": []},
    ]  # fmt: skip
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    masks = {
        "mug": pixels["mug"],
        "book": pixels["book"],
        "left-car": pixels["left car"],
        "sign": pixels["sign"],
        "cars": pixels["left car"] | pixels["right car"],
        "nothing": np.zeros((h, w), bool),
    }
    categories = {"mug": 1, "book": 2, "left car": 3, "right car": 3}

    def box_polygon(name: str) -> list[list[float]]:
        ys, xs = np.nonzero(pixels[name])
        x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
        return [[x1, y1, x2, y1, x2, y2, x1, y2]]

    annotations = [
        {"id": k + 1, "image_id": 1 if regions[name][0] == "desk" else 2, "category_id": categories[name],
         "segmentation": box_polygon(name), "iscrowd": 0, "area": int(pixels[name].sum())}
        for k, name in enumerate(regions)
    ]  # fmt: skip
    instances = {
        "images": [{"id": 1, "file_name": "desk.png", "width": w, "height": h},
                   {"id": 2, "file_name": "street.png", "width": w, "height": h}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "mug"}, {"id": 2, "name": "book"}, {"id": 3, "name": "car"}],
    }  # fmt: skip
    (root / "instances.json").write_text(json.dumps(instances))
    queries = [
        {"image_id": 1, "query": "something to drink from", "ann_ids": 1},
        {"file_name": "street.png", "query": "both cars", "ann_ids": [3, 4]},
        {"image_id": 1, "query": "the bicycle", "ann_ids": []},
    ]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    return {
        "manifest": root / "manifest.jsonl",
        "instances": root / "instances.json",
        "queries": root / "queries.jsonl",
        "images_dir": root / "images",
        "masks": masks,
    }
