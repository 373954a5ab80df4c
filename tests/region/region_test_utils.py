"""Helpers of the region-evaluation tests (imported by name: tests/region is on sys.path under pytest).

Generated COCO-panoptic-format splits:

``write_panoptic`` paints segments into an id map, saves the image (PNG: lossless, so crop pixels can
be compared), the panoptic PNG (id = R + 256 G + 256^2 B) and the json (bbox = the painted extent,
COCO's [x, y, w, h] with w = max - min + 1).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


# (category id, name, isthing), listed out of id order on purpose.
CATEGORIES = [(184, 'tree-merged', 0), (1, 'person', 1), (3, 'car', 1), (187, 'sky-other-merged', 0)]

# Image 1 (37 x 53, h x w): (segment id, category id, iscrowd, [(row0, row1, col0, col1) inclusive]).
IMAGE1_SEGMENTS = [
    (11, 1, 0, [(5, 24, 3, 14)]),                      # person, box 12 x 20
    (12, 3, 0, [(30, 33, 40, 44)]),                    # tiny car, box 5 x 4 = 20 px^2 < 8^2
    (13, 3, 1, [(2, 13, 30, 49)]),                     # crowd car
    (14, 184, 0, [(26, 34, 2, 9)]),                    # tree: json box 8 x 9 = 72, mask extent 7 x 8 = 56
    (15 + 256 * 2, 187, 0, [(0, 1, 15, 52), (0, 36, 50, 52)]),  # sky (an L), id using the G channel
]


def write_panoptic(root: Path, images: list[tuple[int, int, list]], seed: int = 0) -> dict:
    """Write a split under ``root``: ``val2017/``, ``annotations/panoptic_val2017{.json,/}``.

    Args:
        images: per image (height, width, segments as in ``IMAGE1_SEGMENTS``).

    Returns:
        ``{'root', 'json', 'ann', 'images': [uint8 (h, w, 3)], 'ids': [id maps]}``.
    """
    rng = np.random.default_rng(seed)
    (root / 'val2017').mkdir(parents=True, exist_ok=True)
    (root / 'annotations' / 'panoptic_val2017').mkdir(parents=True, exist_ok=True)
    ann = dict(images=[], annotations=[],
               categories=[dict(id=i, name=n, isthing=t, supercategory='x') for i, n, t in CATEGORIES])
    pixels, id_maps = [], []
    for k, (h, w, segments) in enumerate(images, start=1):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ids = np.zeros((h, w), np.int64)
        infos = []
        for seg_id, _cat, _crowd, rects in segments:
            for r0, r1, c0, c1 in rects:
                ids[r0:r1 + 1, c0:c1 + 1] = seg_id
        for seg_id, cat, crowd, _ in segments:
            ys, xs = np.nonzero(ids == seg_id)
            bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
            infos.append(dict(id=seg_id, category_id=cat, iscrowd=crowd, bbox=bbox, area=int(ys.size)))
        Image.fromarray(img).save(root / 'val2017' / f'{k:012d}.png')
        png = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
        Image.fromarray(png).save(root / 'annotations' / 'panoptic_val2017' / f'{k:012d}.png')
        ann['images'].append(dict(id=k, file_name=f'{k:012d}.png', height=h, width=w))
        ann['annotations'].append(dict(image_id=k, file_name=f'{k:012d}.png', segments_info=infos))
        pixels.append(img)
        id_maps.append(ids)
    path = root / 'annotations' / 'panoptic_val2017.json'
    path.write_text(json.dumps(ann))
    return dict(root=str(root) + '/', json=str(path), ann=ann, images=pixels, ids=id_maps)


def grid_segments(rows: int, cols: int, cell: int) -> list:
    """rows x cols thing segments (person), each a ``cell`` x ``cell`` square, in row-major order."""
    return [(1 + r * cols + c, 1, 0, [(r * cell, r * cell + cell - 1, c * cell, c * cell + cell - 1)])
            for r in range(rows) for c in range(cols)]


def region_dataset(split: dict, protocol, image_size: int = 128, crop_size: int = 64, pipeline: list | None = None):
    """The region dataset of a generated split with the protocol's pipeline (stride 16), or ``pipeline``."""
    from clim.datasets import RegionRecognitionDataset

    if pipeline is None:
        pipeline = [dict(type='LoadRegionAnnotations'),
                    dict(type='RegionEvalTransform', protocol=protocol, image_size=image_size, mask_stride=16,
                         crop_size=crop_size),
                    dict(type='PackRegionInputs', mask_stride=16)]
    return RegionRecognitionDataset(ann_file='annotations/panoptic_val2017.json', data_root=split['root'],
                                    img_prefix='val2017', seg_prefix='annotations/panoptic_val2017',
                                    protocol=protocol, pipeline=pipeline)
