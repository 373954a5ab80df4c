"""A seeded generator of a COCO-format open-vocabulary benchmark made of simple shapes.

The generated dataset mirrors the OV-COCO layout at a size that a tiny CLIP and detector can
learn on a CPU in minutes:

* ``images/{train,val}/<id>.png``: saturated, solid-coloured shapes on low-saturation textured
  backgrounds, 1-4 objects per image, by default with no two boxes touching;
* ``annotations/instances_train.json``: base-category annotations only (images without a base
  object dropped), categories = the base ones, each tagged ``split: base``;
* ``annotations/instances_val.json``: every object, all categories tagged ``base``/``novel``;
* ``annotations/instances_train_all.json``: the train images with every object (for oracle studies);
* ``annotations/captions_{train,val}.json``: the CLIM caption form
  ``{"images": [{"id", "file_name", "captions": [...], "tags": [...]}]}`` naming every object,
  novel ones included (image-text data is where novel knowledge comes from);
* ``class_names/{all,base,novel}.txt``: one class name per line, for text embeddings.

Everything is a pure function of the arguments: each image draws from its own random stream
keyed by ``(seed, split, index)``, so the same call writes byte-identical files and changing
``num_train`` does not change the val images.

CLI: ``python -m ovd_demo.shapes --out DIR --num-train N --num-val M --seed S``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "SHAPE_CLASSES",
    "SHAPE_NOVEL_CLASSES",
    "SHAPE_BASE_CLASSES",
    "SHAPE_CATEGORIES",
    "SHAPE_PLURALS",
    "COLOR_PALETTE",
    "ShapeObject",
    "shape_polygons",
    "render_image",
    "make_captions",
    "generate_shapes_dataset",
    "main",
]

# Category metadata. Ids are 1-based and stable: configs, class-name files and checkpoints rely on them.
SHAPE_CLASSES: tuple[str, ...] = (
    "circle", "square", "triangle", "star", "cross", "ring", "hexagon", "crescent", "arrow", "heart",
)
# Novel classes are never boxed in the train json; they appear only in captions (as OV-COCO's
# novel classes appear only in image-text data).
SHAPE_NOVEL_CLASSES: tuple[str, ...] = ("star", "ring", "arrow")
SHAPE_BASE_CLASSES: tuple[str, ...] = tuple(c for c in SHAPE_CLASSES if c not in SHAPE_NOVEL_CLASSES)
SHAPE_CATEGORIES: tuple[dict, ...] = tuple(
    {"id": i + 1, "name": n, "supercategory": "shape",
     "split": "novel" if n in SHAPE_NOVEL_CLASSES else "base"}
    for i, n in enumerate(SHAPE_CLASSES)
)
SHAPE_PLURALS: dict[str, str] = {n: n + "es" if n.endswith(("ss", "x", "ch", "sh")) else n + "s"
                                 for n in SHAPE_CLASSES}

# Saturated colours far from any background pixel (backgrounds are near-grey), so a shape's
# colour alone separates it from the background.
COLOR_PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 25),
    "green": (25, 175, 40),
    "blue": (30, 60, 230),
    "yellow": (240, 215, 20),
    "orange": (245, 125, 10),
    "purple": (135, 35, 200),
    "cyan": (20, 200, 215),
    "magenta": (225, 30, 195),
}

# Shapes whose look does not change under any rotation get a full turn; the others only a tilt,
# so that e.g. a square never becomes a diamond.
_FREE_ROTATION = {"arrow", "crescent", "circle", "ring"}
_MAX_TILT_DEG = 20.0


@dataclass
class ShapeObject:
    """One drawn object: category, colour, COCO polygons and the pixel-exact box."""

    category: str
    color: str
    size: float
    size_word: str  # "small" / "large" / "" (medium): used by captions
    polygons: list[list[float]]  # as pycocotools rasterizes them: pixel i is centred on coordinate i
    bbox: list[float]  # xywh of the rendered pixels (COCO box convention: pixel i spans [i, i + 1))
    area: float  # number of rendered pixels


# ----------------------------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------------------------
def _circle(n: int, r: float = 1.0, start: float = 0.0, stop: float = 2 * math.pi,
            center: tuple[float, float] = (0.0, 0.0), endpoint: bool = False) -> np.ndarray:
    t = np.linspace(start, stop, n, endpoint=endpoint)
    return np.stack([center[0] + r * np.cos(t), center[1] + r * np.sin(t)], axis=1)


def _unit_shape(name: str) -> list[np.ndarray]:
    """Polygons of a shape around the origin (y down), before rotation and scaling."""
    if name == "circle":
        return [_circle(40)]
    if name == "square":
        return [np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)]
    if name == "triangle":
        return [_circle(3, start=-math.pi / 2, stop=1.5 * math.pi)]
    if name == "hexagon":
        return [_circle(6)]
    if name == "star":
        outer = _circle(5, 1.0, -math.pi / 2, 1.5 * math.pi)
        inner = _circle(5, 0.42, -math.pi / 2 + math.pi / 5, 1.5 * math.pi + math.pi / 5)
        return [np.stack([outer, inner], axis=1).reshape(-1, 2)]
    if name == "cross":
        a = 0.34
        return [np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a], [a, 1], [-a, 1],
                          [-a, a], [-1, a], [-1, -a], [-a, -a]], dtype=float)]
    if name == "ring":
        # COCO polygons are unioned and cannot hold a hole: the annulus is two half-annuli.
        inner_r, n = 0.55, 24
        halves = []
        for start in (0.0, math.pi):
            outer = _circle(n, 1.0, start, start + math.pi, endpoint=True)
            inner = _circle(n, inner_r, start, start + math.pi, endpoint=True)[::-1]
            halves.append(np.concatenate([outer, inner]))
        return halves
    if name == "crescent":
        # The left part of the unit circle outside a unit circle shifted right by d.
        d = 0.75
        x = d / 2.0
        y = math.sqrt(1.0 - x * x)
        a1 = math.atan2(y, x)
        a2 = math.atan2(y, x - d)
        outer = _circle(32, 1.0, a1, 2 * math.pi - a1, endpoint=True)
        inner = _circle(24, 1.0, 2 * math.pi - a2, a2, center=(d, 0.0), endpoint=True)
        return [np.concatenate([outer, inner[1:-1]])]
    if name == "arrow":
        s, h = 0.28, 0.75  # half shaft width, half head width
        return [np.array([[-1, -s], [0.1, -s], [0.1, -h], [1, 0], [0.1, h], [0.1, s], [-1, s]], dtype=float)]
    if name == "heart":
        t = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return [np.stack([x, y], axis=1) / 16.0]
    raise KeyError(f"unknown shape {name!r}; known: {SHAPE_CLASSES}")


def shape_polygons(name: str, center: tuple[float, float], size: float,
                   angle_deg: float = 0.0) -> list[np.ndarray]:
    """Polygons (each (n, 2), x/y in COCO pixel coordinates) of ``name``, rotated by ``angle_deg``
    and scaled so that the longer side of its bounding box is ``size`` pixels, centred on ``center``."""
    polys = _unit_shape(name)
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    rot = np.array([[c, -s], [s, c]])
    polys = [p @ rot.T for p in polys]
    pts = np.concatenate(polys)
    lo, hi = pts.min(0), pts.max(0)
    scale = size / float((hi - lo).max())
    mid = (lo + hi) / 2.0
    return [(p - mid) * scale + np.asarray(center, dtype=float) for p in polys]


# ----------------------------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------------------------
def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A low-saturation textured background: a smooth blotchy field, optional faint stripes, noise."""
    base = rng.uniform(85, 175)
    tint = rng.uniform(-12, 12, size=3)
    # Low-frequency blotches: a few random values upsampled bilinearly.
    g = int(rng.integers(2, 6))
    coarse = rng.uniform(-22, 22, size=(g, g)).astype(np.float32)
    blotch = np.asarray(Image.fromarray(coarse, mode="F").resize((w, h), Image.BILINEAR))
    img = base + blotch[..., None] + tint[None, None, :]
    kind = int(rng.integers(0, 3))
    if kind == 1:  # faint stripes at a random angle
        yy, xx = np.mgrid[0:h, 0:w]
        ang = rng.uniform(0, math.pi)
        period = rng.uniform(6, 16)
        img = img + 8.0 * np.sin((xx * math.cos(ang) + yy * math.sin(ang)) * 2 * math.pi / period)[..., None]
    elif kind == 2:  # faint checker
        yy, xx = np.mgrid[0:h, 0:w]
        cell = int(rng.integers(6, 14))
        img = img + 7.0 * (((yy // cell) + (xx // cell)) % 2 * 2 - 1)[..., None]
    img = img + rng.normal(0, 6, size=(h, w, 1)) + rng.normal(0, 2, size=(h, w, 3))
    return np.clip(np.rint(img), 40, 215).astype(np.uint8)


def _render_mask(polygons: Sequence[np.ndarray], h: int, w: int) -> np.ndarray:
    """Pixels of the union of ``polygons``, rasterized by pycocotools itself: the drawn object is then
    exactly the mask every consumer of the json (mmdet, mask pooling) decodes from it."""
    from pycocotools import mask as mask_utils

    flat = [np.asarray(p, dtype=np.float64).reshape(-1).tolist() for p in polygons]
    rle = mask_utils.merge(mask_utils.frPyObjects(flat, h, w))
    return mask_utils.decode(rle).astype(bool)


def _size_word(size: float, lo: float, hi: float) -> str:
    if hi - lo < 1e-6:
        return ""
    t = (size - lo) / (hi - lo)
    return "small" if t < 1 / 3 else "large" if t > 2 / 3 else ""


def render_image(rng: np.random.Generator, image_size: tuple[int, int], max_objects: int = 4,
                 min_objects: int = 1, obj_size: tuple[float, float] | None = None,
                 max_overlap: float = 0.0, gap: int = 2,
                 classes: Sequence[str] = SHAPE_CLASSES,
                 rotate: bool = True) -> tuple[np.ndarray, list[ShapeObject]]:
    """Draw one image; returns the (H, W, 3) uint8 array and its objects in drawing order.

    ``obj_size`` is the (min, max) side in pixels of an object's box (default: 22% - 45% of the
    shorter image side, at least 16 px). With ``max_overlap == 0`` no two boxes come closer than
    ``gap`` pixels, so every box holds exactly its own object; with ``max_overlap > 0`` boxes may
    overlap up to that IoU (later objects are drawn on top; boxes stay amodal). ``rotate=False`` draws
    every shape upright (a far easier recognition task for a model trained from scratch).
    """
    h, w = image_size
    short = min(h, w)
    lo, hi = obj_size if obj_size is not None else (max(16.0, 0.22 * short), max(16.0, 0.45 * short))
    hi = min(hi, short - 2.0)
    lo = min(lo, hi)
    img = _background(rng, h, w)
    n_target = int(rng.integers(min_objects, max_objects + 1))
    placed: list[tuple[np.ndarray, ShapeObject]] = []
    color_names = list(COLOR_PALETTE)
    attempts = 0
    while len(placed) < n_target and attempts < 30 * n_target:
        attempts += 1
        name = classes[int(rng.integers(len(classes)))]
        color = color_names[int(rng.integers(len(color_names)))]
        size = float(rng.uniform(lo, hi))
        if not rotate:
            angle = 0.0
        elif name in _FREE_ROTATION:
            angle = float(rng.uniform(0, 360))
        else:
            angle = float(rng.uniform(-_MAX_TILT_DEG, _MAX_TILT_DEG))
        half = size / 2.0
        cx = float(rng.uniform(half + 1, w - half - 1))
        cy = float(rng.uniform(half + 1, h - half - 1))
        # Rounded as stored in the json, so that the drawing is exactly the stored polygons' mask.
        polys = [np.round(p, 2) for p in shape_polygons(name, (cx, cy), size, angle)]
        mask = _render_mask(polys, h, w)
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            continue
        box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=float)
        if not _fits(box, [b for b, _ in placed], max_overlap, gap):
            continue
        obj = ShapeObject(
            category=name, color=color, size=size, size_word=_size_word(size, lo, hi),
            polygons=[[float(v) for v in p.reshape(-1)] for p in polys],
            bbox=[float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
            area=float(mask.sum()),
        )
        img[mask] = COLOR_PALETTE[color]
        placed.append((box, obj))
    return img, [o for _, o in placed]


def _fits(box: np.ndarray, others: list[np.ndarray], max_overlap: float, gap: int) -> bool:
    for o in others:
        if max_overlap <= 0:
            if (box[0] < o[2] + gap and o[0] < box[2] + gap and box[1] < o[3] + gap and o[1] < box[3] + gap):
                return False
            continue
        iw = min(box[2], o[2]) - max(box[0], o[0])
        ih = min(box[3], o[3]) - max(box[1], o[1])
        if iw <= 0 or ih <= 0:
            continue
        inter = iw * ih
        union = (box[2] - box[0]) * (box[3] - box[1]) + (o[2] - o[0]) * (o[3] - o[1]) - inter
        if inter / union > max_overlap:
            return False
    return True


# ----------------------------------------------------------------------------------------------
# captions
# ----------------------------------------------------------------------------------------------
_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
_TEMPLATES = (
    "{}",
    "a photo of {}",
    "an image showing {}",
    "a picture with {}",
    "there is {}",
    "{} on a textured background",
    "a drawing of {}",
)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _phrases(objects: Sequence[ShapeObject], with_color: bool = True) -> list[str]:
    """Noun phrases, one per (colour, shape) group: "a small red star", "two blue rings"; without
    colours one per shape: "a star", "two rings"."""
    groups: dict[tuple[str, str], list[ShapeObject]] = {}
    for o in objects:
        groups.setdefault((o.color if with_color else "", o.category), []).append(o)
    out = []
    for (color, cat), objs in groups.items():
        if len(objs) == 1:
            size = objs[0].size_word if with_color else ""
            words = " ".join(w for w in (size, color, cat) if w)
            out.append(f"{_article(words)} {words}")
        else:
            count = _NUMBERS.get(len(objs), str(len(objs)))
            out.append(" ".join(w for w in (count, color, SHAPE_PLURALS.get(cat, cat + "s")) if w))
    return out


def _join(phrases: Sequence[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def make_captions(objects: Sequence[ShapeObject], rng: np.random.Generator, num: int = 5,
                  num_shape_only: int = 0, plain: bool = False) -> list[str]:
    """``num`` distinct caption variants naming every object (colour + shape; size when notable),
    differing in object order and wording, then ``num_shape_only`` variants that name the shapes
    without colours. Colours alone separate most images of a batch, so a CLIP trained only on
    coloured captions can ignore shape; the shape-only variants make shape words matter. ``plain``
    drops the sentence templates ("a photo of ...") and keeps the bare noun phrases: template words
    otherwise dominate a from-scratch text tower's early embeddings. Fewer come back only if fewer
    distinct ones exist."""
    phrases = _phrases(objects)
    if not phrases:
        return []
    templates = ("{}",) if plain else _TEMPLATES
    coloured = _caption_variants(phrases, rng, num, [], templates)
    shape_only = _phrases(objects, with_color=False)
    return coloured + _caption_variants(shape_only, rng, num_shape_only, coloured, templates)


def _caption_variants(phrases: list[str], rng: np.random.Generator, num: int, taken: list[str],
                      templates: Sequence[str] = _TEMPLATES) -> list[str]:
    seen: list[str] = []
    for _ in range(num * 8):
        if len(seen) >= num:
            break
        order = [phrases[i] for i in rng.permutation(len(phrases))]
        cap = templates[int(rng.integers(len(templates)))].format(_join(order))
        if cap not in seen and cap not in taken:
            seen.append(cap)
    return seen


# ----------------------------------------------------------------------------------------------
# dataset writer
# ----------------------------------------------------------------------------------------------
def _image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    # One independent stream per image: reproducible regardless of how many images are asked for.
    return np.random.default_rng([seed, {"train": 1, "val": 2}[split], index])


def _normalize_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = (int(v) for v in image_size)
    return h, w


def _coco_json(images: list[dict], anns: list[dict], categories: Sequence[dict], info: dict) -> dict:
    return {"info": info, "licenses": [], "images": images, "annotations": anns,
            "categories": [dict(c) for c in categories]}


def _dump(obj: dict, path: Path) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))


def generate_shapes_dataset(
    out_dir: str | os.PathLike,
    num_train: int,
    num_val: int,
    image_size: int | Sequence[int] = 128,
    seed: int = 0,
    *,
    min_objects: int = 1,
    max_objects: int = 4,
    obj_size: tuple[float, float] | None = None,
    max_overlap: float = 0.0,
    num_captions: int = 5,
    num_shape_captions: int = 2,
    plain_captions: bool = False,
    rotate: bool = True,
    image_format: str = "png",
    jpeg_quality: int = 95,
) -> dict[str, str]:
    """Write the shapes benchmark under ``out_dir`` and return the paths of what was written.

    Args:
        out_dir: output folder (created; existing files of the same names are overwritten).
        num_train / num_val: images generated per split. The train detection json keeps only the
            images holding at least one base object; the train caption json keeps all of them.
        image_size: ``H`` (square) or ``(H, W)``.
        seed: everything is a deterministic function of the arguments.
        min_objects / max_objects: objects per image (fewer only if they do not fit).
        obj_size: (min, max) object box side in pixels; default 22% - 45% of the shorter side.
        max_overlap: 0 keeps boxes apart (2 px gap); > 0 allows box IoU up to this value.
        num_captions: caption variants per image naming colours and shapes.
        num_shape_captions: further variants naming only the shapes (see :func:`make_captions`).
        plain_captions: bare noun phrases without sentence templates (see :func:`make_captions`).
        rotate: False draws every shape upright (see :func:`render_image`).
        image_format: ``"png"`` (lossless: colours exact) or ``"jpg"``.

    Returns:
        dict with keys ``root, train_img_dir, val_img_dir, train_json, train_all_json, val_json,
        train_captions, val_captions, class_names_all, class_names_base, class_names_novel, meta``.
        Image ``file_name`` entries are relative to the split's image folder.
    """
    if image_format not in ("png", "jpg"):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
    h, w = _normalize_size(image_size)
    if min(h, w) < 32:
        raise ValueError(f"image_size {image_size} too small: shapes need at least 32 px")
    root = Path(out_dir)
    dirs = {s: root / "images" / s for s in ("train", "val")}
    for d in (*dirs.values(), root / "annotations", root / "class_names"):
        d.mkdir(parents=True, exist_ok=True)
    params = dict(num_train=num_train, num_val=num_val, image_size=[h, w], seed=seed, min_objects=min_objects,
                  max_objects=max_objects, obj_size=list(obj_size) if obj_size else None,
                  max_overlap=max_overlap, num_captions=num_captions,
                  num_shape_captions=num_shape_captions, plain_captions=plain_captions, rotate=rotate,
                  image_format=image_format)
    # The description text predates the move to ovd_demo; kept so that generated files stay byte-identical.
    info = {"description": "ovdet synthetic shapes benchmark", "version": "1.0", "params": params}
    cat_id = {c["name"]: c["id"] for c in SHAPE_CATEGORIES}

    per_split: dict[str, tuple[list[dict], list[dict], list[dict]]] = {}
    for split, n in (("train", num_train), ("val", num_val)):
        images, anns, caps = [], [], []
        for i in range(n):
            rng = _image_rng(seed, split, i)
            arr, objects = render_image(rng, (h, w), max_objects=max_objects, min_objects=min_objects,
                                        obj_size=obj_size, max_overlap=max_overlap, rotate=rotate)
            img_id = i + 1
            fname = f"{img_id:06d}.{image_format}"
            pil = Image.fromarray(arr)
            if image_format == "png":
                pil.save(dirs[split] / fname, format="PNG", compress_level=1)
            else:
                pil.save(dirs[split] / fname, format="JPEG", quality=jpeg_quality)
            images.append({"id": img_id, "file_name": fname, "height": h, "width": w})
            for o in objects:
                anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cat_id[o.category],
                             "bbox": o.bbox, "area": o.area, "iscrowd": 0, "segmentation": o.polygons,
                             "color": o.color})
            tags = [c for c in SHAPE_CLASSES if any(o.category == c for o in objects)]
            caps.append({"id": img_id, "file_name": fname, "height": h, "width": w,
                         "captions": make_captions(objects, rng, num_captions, num_shape_captions, plain_captions),
                         "tags": tags})
        per_split[split] = (images, anns, caps)

    paths = {
        "root": str(root),
        "train_img_dir": str(dirs["train"]),
        "val_img_dir": str(dirs["val"]),
        "train_json": str(root / "annotations" / "instances_train.json"),
        "train_all_json": str(root / "annotations" / "instances_train_all.json"),
        "val_json": str(root / "annotations" / "instances_val.json"),
        "train_captions": str(root / "annotations" / "captions_train.json"),
        "val_captions": str(root / "annotations" / "captions_val.json"),
        "class_names_all": str(root / "class_names" / "all.txt"),
        "class_names_base": str(root / "class_names" / "base.txt"),
        "class_names_novel": str(root / "class_names" / "novel.txt"),
        "meta": str(root / "dataset_info.json"),
    }
    t_images, t_anns, t_caps = per_split["train"]
    v_images, v_anns, v_caps = per_split["val"]
    base_ids = {c["id"] for c in SHAPE_CATEGORIES if c["split"] == "base"}
    base_anns = [a for a in t_anns if a["category_id"] in base_ids]
    keep = {a["image_id"] for a in base_anns}
    _dump(_coco_json([im for im in t_images if im["id"] in keep], base_anns,
                     [c for c in SHAPE_CATEGORIES if c["split"] == "base"], info), Path(paths["train_json"]))
    _dump(_coco_json(t_images, t_anns, SHAPE_CATEGORIES, info), Path(paths["train_all_json"]))
    _dump(_coco_json(v_images, v_anns, SHAPE_CATEGORIES, info), Path(paths["val_json"]))
    _dump({"info": info, "images": t_caps}, Path(paths["train_captions"]))
    _dump({"info": info, "images": v_caps}, Path(paths["val_captions"]))
    for key, names in (("class_names_all", SHAPE_CLASSES), ("class_names_base", SHAPE_BASE_CLASSES),
                       ("class_names_novel", SHAPE_NOVEL_CLASSES)):
        Path(paths[key]).write_text("\n".join(names) + "\n")
    meta = {"params": params, "categories": list(SHAPE_CATEGORIES), "colors": COLOR_PALETTE,
            "counts": {"train_images": len(t_images), "train_det_images": len(keep),
                       "train_base_annotations": len(base_anns), "train_all_annotations": len(t_anns),
                       "val_images": len(v_images), "val_annotations": len(v_anns)},
            "paths": {k: os.path.relpath(v, root) for k, v in paths.items() if k != "root"}}
    _dump(meta, Path(paths["meta"]))
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; prints the written paths and counts."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--num-train", type=int, default=2000)
    ap.add_argument("--num-val", type=int, default=500)
    ap.add_argument("--image-size", type=int, nargs="+", default=[128], help="H or H W")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-objects", type=int, default=1)
    ap.add_argument("--max-objects", type=int, default=4)
    ap.add_argument("--obj-size", type=float, nargs=2, default=None, metavar=("MIN", "MAX"))
    ap.add_argument("--max-overlap", type=float, default=0.0)
    ap.add_argument("--num-captions", type=int, default=5)
    ap.add_argument("--num-shape-captions", type=int, default=2)
    ap.add_argument("--plain-captions", action="store_true", help="captions without sentence templates")
    ap.add_argument("--no-rotate", action="store_true", help="draw every shape upright")
    ap.add_argument("--format", choices=("png", "jpg"), default="png")
    args = ap.parse_args(argv)
    if len(args.image_size) not in (1, 2):
        ap.error("--image-size takes H or H W")
    size = args.image_size[0] if len(args.image_size) == 1 else tuple(args.image_size)
    paths = generate_shapes_dataset(
        args.out, args.num_train, args.num_val, size, args.seed, min_objects=args.min_objects,
        max_objects=args.max_objects, obj_size=tuple(args.obj_size) if args.obj_size else None,
        max_overlap=args.max_overlap, num_captions=args.num_captions,
        num_shape_captions=args.num_shape_captions, plain_captions=args.plain_captions,
        rotate=not args.no_rotate, image_format=args.format)
    with open(paths["meta"]) as f:
        counts = json.load(f)["counts"]
    for k, v in paths.items():
        print(f"{k:18s} {v}")
    print("counts: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
