"""Helpers for the OV-LVIS tests: the synthetic shapes benchmark rewritten in LVIS v1 format, and seeded
random LVIS ground truth + detections for the metric."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from tests.helpers import REPO_ROOT, make_tiny_detector_workspace, run_tool  # noqa: F401

TINY_LVIS_CONFIG = REPO_ROOT / 'configs' / 'tiny' / 'fvit_tiny_shapes_lvis.py'
COCO_HOST = 'http://images.cocodataset.org/'
# Shapes never boxed in OV training are LVIS's rare ones; the others alternate common / frequent.
RARE_SHAPES = ('star', 'ring', 'arrow')
VAL_ID_OFFSET = 1000


def _frequency(i: int, name: str) -> str:
    return 'r' if name in RARE_SHAPES else ('c' if i % 2 else 'f')


def shapes_to_lvis(shapes_root: Path, out_root: Path, seed: int = 0) -> dict[str, Path]:
    """Rewrite a generated shapes dataset (``ovd_demo.shapes``) as LVIS v1 files under
    ``out_root``: ``annotations/lvis_train.json`` (every train object, rare ones included, as LVIS
    train has them) and ``annotations/lvis_val.json``; images moved into COCO-style ``images/train2017``
    / ``images/val2017`` folders named by ``coco_url`` (every other val image lives in ``train2017/``,
    as LVIS val draws from both COCO folders). Val image ids are offset by 1000 (LVIS ids are unique
    across splits). Each image gets seeded ``neg_category_ids`` (absent categories) and
    ``not_exhaustive_category_ids`` (present ones)."""
    rng = np.random.default_rng(seed)
    src = {s: json.loads((shapes_root / 'annotations' / name).read_text())
           for s, name in (('train', 'instances_train_all.json'), ('val', 'instances_val.json'))}
    cats = src['train']['categories']
    train_imgs_of = {c['id']: {a['image_id'] for a in src['train']['annotations'] if a['category_id'] == c['id']}
                     for c in cats}
    lvis_cats = [{'id': c['id'], 'name': c['name'], 'synonyms': [c['name']], 'def': f"a {c['name']} shape",
                  'synset': f"{c['name']}.n.01", 'frequency': _frequency(i, c['name']),
                  'image_count': len(train_imgs_of[c['id']]),
                  'instance_count': sum(a['category_id'] == c['id'] for a in src['train']['annotations'])}
                 for i, c in enumerate(cats)]
    cat_ids = [c['id'] for c in cats]
    for d in ('train2017', 'val2017'):
        (out_root / 'images' / d).mkdir(parents=True, exist_ok=True)
    (out_root / 'annotations').mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, data in src.items():
        offset = 0 if split == 'train' else VAL_ID_OFFSET
        images, anns = [], []
        for k, im in enumerate(data['images']):
            folder = 'train2017' if split == 'train' or k % 2 else 'val2017'
            name = f"{split}_{im['file_name']}"
            shutil.copy(shapes_root / 'images' / split / im['file_name'], out_root / 'images' / folder / name)
            own = [a for a in data['annotations'] if a['image_id'] == im['id']]
            present = sorted({a['category_id'] for a in own})
            absent = [c for c in cat_ids if c not in present]
            images.append({'id': im['id'] + offset, 'width': im['width'], 'height': im['height'],
                           'coco_url': f'{COCO_HOST}{folder}/{name}', 'license': 1,
                           'neg_category_ids': [c for c in absent if rng.random() < 0.6],
                           'not_exhaustive_category_ids': [c for c in present if rng.random() < 0.3]})
            for a in own:
                anns.append({'id': len(anns) + 1 + offset * 10, 'image_id': im['id'] + offset,
                             'category_id': a['category_id'], 'bbox': a['bbox'], 'area': a['area'],
                             'segmentation': a['segmentation']})
        p = out_root / 'annotations' / f'lvis_{split}.json'
        p.write_text(json.dumps({'info': {'description': 'shapes in LVIS v1 format'}, 'licenses': [],
                                 'images': images, 'annotations': anns, 'categories': lvis_cats}))
        paths[split] = p
    return paths


def make_tiny_lvis_workspace(root: Path) -> dict:
    """The layout configs/tiny/fvit_tiny_shapes_lvis.py expects under ``root`` (its working directory):
    ``data/shapes_lvis/`` (LVIS-format shapes, 8 train / 4 val images of 128 px, prepared by
    tools/prepare_ov_lvis.py), ``ckpt/tiny_clip.pt`` and ``data/shapes_lvis/shapes_tiny.npy``."""
    ws = make_tiny_detector_workspace(root)
    lvis_root = root / 'data' / 'shapes_lvis'
    files = shapes_to_lvis(root / 'data' / 'shapes', lvis_root)
    shutil.copy(ws['embeddings'], lvis_root / 'shapes_tiny.npy')
    proc = run_tool([str(REPO_ROOT / 'tools' / 'prepare_ov_lvis.py'), '--train', str(files['train']),
                     '--val', str(files['val']), '--out-dir', str(lvis_root / 'annotations')], cwd=root)
    return dict(ws, lvis_root=lvis_root, train_json=files['train'], val_json=files['val'],
                prepare_log=proc.stdout)


def random_lvis_gt(rng: np.random.Generator, num_images: int = 24, num_cats: int = 12,
                   size: tuple[int, int] = (48, 64)) -> dict:
    """Seeded LVIS-format ground truth: rectangle / ellipse masks as COCO polygons (so the GT takes the
    polygon path of LVIS.ann_to_rle), every frequency group present, neg / not-exhaustive lists."""
    h, w = size
    freqs = ['r', 'c', 'f']
    cats = [{'id': 3 * i + 2, 'name': f'thing_{i}', 'frequency': freqs[i % 3], 'synonyms': [], 'def': '',
             'synset': f'thing_{i}.n.01', 'image_count': 1, 'instance_count': 1} for i in range(num_cats)]
    images, anns = [], []
    for i in range(num_images):
        img_id = 100 + 7 * i
        present: set[int] = set()
        for _ in range(int(rng.integers(0, 6))):
            c = cats[int(rng.integers(num_cats))]['id']
            x0, y0 = float(rng.uniform(0, w - 10)), float(rng.uniform(0, h - 10))
            bw, bh = float(rng.uniform(6, w - x0)), float(rng.uniform(6, h - y0))
            if rng.random() < 0.5:
                poly = [x0, y0, x0 + bw, y0, x0 + bw, y0 + bh, x0, y0 + bh]
            else:
                t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
                poly = np.stack([x0 + bw / 2 * (1 + np.cos(t)), y0 + bh / 2 * (1 + np.sin(t))], 1).ravel().tolist()
            anns.append({'id': len(anns) + 1, 'image_id': img_id, 'category_id': c, 'bbox': [x0, y0, bw, bh],
                         'area': bw * bh, 'segmentation': [poly]})
            present.add(c)
        absent = [c['id'] for c in cats if c['id'] not in present]
        images.append({'id': img_id, 'height': h, 'width': w, 'coco_url': f'{COCO_HOST}val2017/{img_id:012d}.jpg',
                       'neg_category_ids': [c for c in absent if rng.random() < 0.5],
                       'not_exhaustive_category_ids': [c for c in sorted(present) if rng.random() < 0.3]})
    return {'images': images, 'annotations': anns, 'categories': cats}


def random_detections(rng: np.random.Generator, gt: dict, max_per_image: int = 40) -> list[dict]:
    """Per image ``{img_id, bboxes (k, 4) xyxy, scores (k,), cat_ids (k,), masks (k, H, W) bool}``:
    jittered copies of the GT (right or wrong class) and random false positives of any class."""
    from pycocotools import mask as mask_utils

    cat_ids = [c['id'] for c in gt['categories']]
    out = []
    for im in gt['images']:
        h, w = im['height'], im['width']
        own = [a for a in gt['annotations'] if a['image_id'] == im['id']]
        boxes, cats, masks = [], [], []
        for a in own:
            for _ in range(int(rng.integers(0, 3))):
                x, y, bw, bh = a['bbox']
                j = rng.normal(0, 2, size=4)
                x1, y1 = np.clip([x + j[0], y + j[1]], 0, [w - 2, h - 2])
                x2, y2 = np.clip([x + bw + j[2], y + bh + j[3]], [x1 + 1, y1 + 1], [w, h])
                boxes.append([x1, y1, x2, y2])
                cats.append(a['category_id'] if rng.random() < 0.7 else cat_ids[int(rng.integers(len(cat_ids)))])
                m = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(a['segmentation'], h, w))).astype(bool)
                masks.append(np.roll(m, (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(0, 1)))
        for _ in range(int(rng.integers(0, max_per_image - len(boxes) + 1))):
            x1, y1 = rng.uniform(0, w - 4), rng.uniform(0, h - 4)
            x2, y2 = rng.uniform(x1 + 2, w), rng.uniform(y1 + 2, h)
            boxes.append([x1, y1, x2, y2])
            cats.append(cat_ids[int(rng.integers(len(cat_ids)))])
            m = np.zeros((h, w), bool)
            m[int(y1):int(np.ceil(y2)), int(x1):int(np.ceil(x2))] = rng.random((int(np.ceil(y2)) - int(y1),
                                                                              int(np.ceil(x2)) - int(x1))) < 0.8
            masks.append(m)
        k = len(boxes)
        out.append({'img_id': im['id'], 'bboxes': np.asarray(boxes, np.float32).reshape(k, 4),
                    'scores': rng.random(k).astype(np.float32), 'cat_ids': np.asarray(cats, np.int64),
                    'masks': np.asarray(masks, bool).reshape(k, h, w)})
    return out
