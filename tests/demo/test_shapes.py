"""The demo's shapes benchmark generator (``ovd_demo.shapes``): determinism, pixel-exact boxes, OV splits, captions."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovd_demo import shapes
from ovd_demo.shapes import (
    COLOR_PALETTE,
    SHAPE_BASE_CLASSES,
    SHAPE_CLASSES,
    SHAPE_NOVEL_CLASSES,
    SHAPE_PLURALS,
    generate_shapes_dataset,
)


def _load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_category_metadata() -> None:
    assert len(SHAPE_CLASSES) == len(set(SHAPE_CLASSES)) == 10
    assert set(SHAPE_BASE_CLASSES) | set(SHAPE_NOVEL_CLASSES) == set(SHAPE_CLASSES)
    assert not set(SHAPE_BASE_CLASSES) & set(SHAPE_NOVEL_CLASSES)
    assert len(SHAPE_NOVEL_CLASSES) == 3
    ids = [c["id"] for c in shapes.SHAPE_CATEGORIES]
    assert ids == list(range(1, 11))


def test_same_seed_same_bytes_and_seed_matters(tmp_path: Path) -> None:
    a = generate_shapes_dataset(tmp_path / "a", 6, 4, image_size=64, seed=3)
    b = generate_shapes_dataset(tmp_path / "b", 6, 4, image_size=64, seed=3)
    c = generate_shapes_dataset(tmp_path / "c", 6, 4, image_size=64, seed=4)
    fa, fb, fc = (_all_files(Path(p["root"])) for p in (a, b, c))
    assert len(fa) == 6 + 4 + 5 + 3 + 1  # images, 5 jsons, 3 class lists, meta
    assert fa == fb
    assert fa.keys() == fc.keys()
    assert fa["images/train/000001.png"] != fc["images/train/000001.png"]
    # An image depends on (seed, split, index) only: more train images leave val untouched.
    d = generate_shapes_dataset(tmp_path / "d", 9, 4, image_size=64, seed=3)
    fd = _all_files(Path(d["root"]))
    assert all(fd[k] == fa[k] for k in fa if k.startswith("images/val/"))
    assert _load(d["val_json"])["annotations"] == _load(a["val_json"])["annotations"]


def test_non_square_and_jpeg(tmp_path: Path) -> None:
    p = generate_shapes_dataset(tmp_path, 2, 2, image_size=(64, 96), seed=0, image_format="jpg")
    val = _load(p["val_json"])
    im = val["images"][0]
    assert im["file_name"].endswith(".jpg") and (im["height"], im["width"]) == (64, 96)
    with Image.open(Path(p["val_img_dir"]) / im["file_name"]) as img:
        assert img.size == (96, 64) and img.format == "JPEG"
    for a in val["annotations"]:
        x, y, w, h = a["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 96 and y + h <= 64


@pytest.mark.parametrize("image_size", [64, 128])
def test_boxes_match_drawn_pixels(tmp_path: Path, image_size: int) -> None:
    p = generate_shapes_dataset(tmp_path, 0, 12, image_size=image_size, seed=1)
    val = _load(p["val_json"])
    by_img: dict[int, list[dict]] = {}
    for a in val["annotations"]:
        by_img.setdefault(a["image_id"], []).append(a)
    checked = 0
    for im in val["images"]:
        arr = np.asarray(Image.open(Path(p["val_img_dir"]) / im["file_name"]).convert("RGB")).astype(int)
        H, W = arr.shape[:2]
        for a in by_img.get(im["id"], []):
            color = np.array(COLOR_PALETTE[a["color"]])
            hit = (arr == color).all(-1)
            x, y, w, h = (int(v) for v in a["bbox"])
            assert max(w, h) >= 15  # objects are not tiny (>= 16 px up to rasterization)
            inside = hit[y:y + h, x:x + w]
            assert inside.any()
            # tight: the object's colour reaches each side of its box
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            # and is absent just outside it (objects never touch: boxes keep a gap)
            ring = []
            if y > 0:
                ring.append(hit[y - 1, max(x - 1, 0):x + w + 1])
            if y + h < H:
                ring.append(hit[y + h, max(x - 1, 0):x + w + 1])
            if x > 0:
                ring.append(hit[max(y - 1, 0):y + h + 1, x - 1])
            if x + w < W:
                ring.append(hit[max(y - 1, 0):y + h + 1, x + w])
            assert not any(r.any() for r in ring), (im["file_name"], a)
            assert a["area"] == inside.sum()
            checked += 1
    assert checked >= 12


def test_polygons_decode_to_the_drawn_object(tmp_path: Path) -> None:
    """The json's polygons, decoded by pycocotools (as mmdet does), are exactly the drawn pixels."""
    from pycocotools import mask as mask_utils

    p = generate_shapes_dataset(tmp_path, 0, 10, image_size=96, seed=2)
    val = _load(p["val_json"])
    imgs = {im["id"]: im for im in val["images"]}
    names = {c["id"]: c["name"] for c in val["categories"]}
    seen = set()
    for a in val["annotations"]:
        im = imgs[a["image_id"]]
        arr = np.asarray(Image.open(Path(p["val_img_dir"]) / im["file_name"]).convert("RGB")).astype(int)
        x, y, w, h = (int(v) for v in a["bbox"])
        drawn = np.zeros(arr.shape[:2], bool)
        drawn[y:y + h, x:x + w] = (arr[y:y + h, x:x + w] == np.array(COLOR_PALETTE[a["color"]])).all(-1)
        rles = mask_utils.frPyObjects(a["segmentation"], im["height"], im["width"])
        m = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
        assert (m == drawn).all(), names[a["category_id"]]
        assert list(mask_utils.toBbox(mask_utils.encode(np.asfortranarray(m.astype(np.uint8))))) == a["bbox"]
        seen.add(names[a["category_id"]])
    assert len(seen) >= 5


def test_ov_splits(tmp_path: Path) -> None:
    p = generate_shapes_dataset(tmp_path, 40, 30, image_size=64, seed=0)
    train, train_all, val = _load(p["train_json"]), _load(p["train_all_json"]), _load(p["val_json"])
    novel_ids = {c["id"] for c in train_all["categories"] if c["split"] == "novel"}
    assert {c["name"] for c in train_all["categories"] if c["split"] == "novel"} == set(SHAPE_NOVEL_CLASSES)
    # train: no novel annotation, no novel category, every kept image has a base box
    assert train["annotations"] and not any(a["category_id"] in novel_ids for a in train["annotations"])
    assert {c["name"] for c in train["categories"]} == set(SHAPE_BASE_CLASSES)
    assert all(c["split"] == "base" for c in train["categories"])
    with_base = {a["image_id"] for a in train_all["annotations"] if a["category_id"] not in novel_ids}
    assert {im["id"] for im in train["images"]} == with_base
    assert len(train["images"]) < len(train_all["images"]) == 40  # some images hold only novel shapes
    n_base = sum(a["category_id"] not in novel_ids for a in train_all["annotations"])
    assert len(train["annotations"]) == n_base
    # val: every category, tagged, with both base and novel boxes
    assert [c["split"] for c in val["categories"]] == [c["split"] for c in shapes.SHAPE_CATEGORIES]
    val_cats = {a["category_id"] for a in val["annotations"]}
    assert val_cats & novel_ids and val_cats - novel_ids
    assert len(val["images"]) == 30
    counts = [sum(a["image_id"] == im["id"] for a in val["annotations"]) for im in val["images"]]
    assert min(counts) >= 1 and max(counts) <= 4
    for a in val["annotations"]:
        assert a["iscrowd"] == 0 and len(a["bbox"]) == 4 and a["area"] > 0 and a["segmentation"]
    # class-name files
    assert Path(p["class_names_novel"]).read_text().split("\n")[:-1] == list(SHAPE_NOVEL_CLASSES)
    assert Path(p["class_names_all"]).read_text().split("\n")[:-1] == list(SHAPE_CLASSES)


def test_captions_mention_every_object(tmp_path: Path) -> None:
    p = generate_shapes_dataset(tmp_path, 30, 2, image_size=96, seed=5, num_captions=4, num_shape_captions=2)
    caps = _load(p["train_captions"])["images"]
    train_all = _load(p["train_all_json"])
    names = {c["id"]: c["name"] for c in train_all["categories"]}
    assert [c["id"] for c in caps] == [im["id"] for im in train_all["images"]]  # captions for every image
    novel_mentions = 0
    for entry in caps:
        objs = [a for a in train_all["annotations"] if a["image_id"] == entry["id"]]
        assert len(entry["captions"]) >= 2 and len(set(entry["captions"])) == len(entry["captions"])
        assert entry["tags"] == [n for n in SHAPE_CLASSES if n in {names[a["category_id"]] for a in objs}]
        coloured, shape_only = entry["captions"][:4], entry["captions"][4:]
        assert len(coloured) == 4 and len(shape_only) >= 1
        for cap in coloured:
            for a in objs:
                name = names[a["category_id"]]
                assert f"{a['color']} {name}" in cap, (cap, a["color"], name)
                novel_mentions += names[a["category_id"]] in SHAPE_NOVEL_CLASSES
        for cap in shape_only:
            assert not any(color in cap.split() for color in COLOR_PALETTE), cap
            for a in objs:
                name = names[a["category_id"]]
                assert name in cap or SHAPE_PLURALS[name] in cap, (cap, name)
    assert novel_mentions > 0


def test_plain_shape_only_captions(tmp_path: Path) -> None:
    """The demo's caption design: bare noun phrases, no colour words, no sentence templates."""
    p = generate_shapes_dataset(tmp_path, 20, 2, image_size=96, seed=2, num_captions=0, num_shape_captions=2,
                                plain_captions=True)
    train_all = _load(p["train_all_json"])
    names = {c["id"]: c["name"] for c in train_all["categories"]}
    template_words = {w for t in shapes._TEMPLATES for w in t.replace("{}", " ").split()}
    for entry in _load(p["train_captions"])["images"]:
        objs = [names[a["category_id"]] for a in train_all["annotations"] if a["image_id"] == entry["id"]]
        assert entry["captions"]
        for cap in entry["captions"]:
            words = set(cap.replace(",", " ").split())
            assert not words & set(COLOR_PALETTE), cap
            assert not words & (template_words - {"a", "an"}), cap
            assert all(n in words or SHAPE_PLURALS[n] in words for n in objs), (cap, objs)


def test_upright_shapes_fill_their_boxes_as_drawn(tmp_path: Path) -> None:
    """``rotate=False``: a square's polygon is its axis-aligned box; rotated squares are not."""
    def square_fill(rotate: bool) -> list[float]:
        rng = np.random.default_rng(0)
        fills = []
        for _ in range(40):
            _, objs = shapes.render_image(rng, (96, 96), max_objects=1, classes=("square",), rotate=rotate)
            poly = np.asarray(objs[0].polygons[0]).reshape(-1, 2)
            x, y = poly[:, 0], poly[:, 1]
            area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
            fills.append(area / ((x.max() - x.min()) * (y.max() - y.min())))
        return fills

    assert min(square_fill(rotate=False)) > 0.999
    assert min(square_fill(rotate=True)) < 0.9


def test_cli(tmp_path: Path, capsys) -> None:
    assert shapes.main(["--out", str(tmp_path), "--num-train", "3", "--num-val", "2", "--seed", "1",
                        "--image-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "val_json" in out and "counts:" in out
    assert len(_load(str(tmp_path / "annotations" / "instances_val.json"))["images"]) == 2


def test_session_fixture(synthetic_dataset: dict) -> None:
    val = _load(synthetic_dataset["val_json"])
    assert len(val["images"]) == 8 and val["images"][0]["width"] == 64
    assert Path(synthetic_dataset["train_img_dir"], "000001.png").is_file()
