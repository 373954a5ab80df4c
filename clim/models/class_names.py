"""Class-name lists: COCO's 80 detection classes with the OV-COCO base / novel split, the 133
COCO panoptic classes (80 things + 53 stuff) and LVIS v1's 1203 (:func:`lvis_v1_classes`).

Names are COCO's own category names (``COCO_80`` in category-id order); ``prompt_name`` gives the
wording used in text prompts (panoptic stuff names such as ``'wall-brick'`` or ``'tree-merged'``
are not natural language).
"""
from __future__ import annotations

__all__ = [
    'COCO_80', 'COCO_80_IDS', 'OV_COCO_NOVEL', 'OV_COCO_BASE', 'OV_COCO_65', 'OV_COCO_UNUSED',
    'COCO_PANOPTIC_STUFF', 'COCO_PANOPTIC_133', 'PROMPT_NAMES', 'prompt_name', 'get_class_names',
    'lvis_v1_classes', 'CLASS_LISTS',
]

# (category id, name) of the 80 COCO detection classes, in id order.
_COCO: tuple[tuple[int, str], ...] = (
    (1, 'person'), (2, 'bicycle'), (3, 'car'), (4, 'motorcycle'), (5, 'airplane'), (6, 'bus'),
    (7, 'train'), (8, 'truck'), (9, 'boat'), (10, 'traffic light'), (11, 'fire hydrant'),
    (13, 'stop sign'), (14, 'parking meter'), (15, 'bench'), (16, 'bird'), (17, 'cat'), (18, 'dog'),
    (19, 'horse'), (20, 'sheep'), (21, 'cow'), (22, 'elephant'), (23, 'bear'), (24, 'zebra'),
    (25, 'giraffe'), (27, 'backpack'), (28, 'umbrella'), (31, 'handbag'), (32, 'tie'), (33, 'suitcase'),
    (34, 'frisbee'), (35, 'skis'), (36, 'snowboard'), (37, 'sports ball'), (38, 'kite'),
    (39, 'baseball bat'), (40, 'baseball glove'), (41, 'skateboard'), (42, 'surfboard'),
    (43, 'tennis racket'), (44, 'bottle'), (46, 'wine glass'), (47, 'cup'), (48, 'fork'), (49, 'knife'),
    (50, 'spoon'), (51, 'bowl'), (52, 'banana'), (53, 'apple'), (54, 'sandwich'), (55, 'orange'),
    (56, 'broccoli'), (57, 'carrot'), (58, 'hot dog'), (59, 'pizza'), (60, 'donut'), (61, 'cake'),
    (62, 'chair'), (63, 'couch'), (64, 'potted plant'), (65, 'bed'), (67, 'dining table'), (70, 'toilet'),
    (72, 'tv'), (73, 'laptop'), (74, 'mouse'), (75, 'remote'), (76, 'keyboard'), (77, 'cell phone'),
    (78, 'microwave'), (79, 'oven'), (80, 'toaster'), (81, 'sink'), (82, 'refrigerator'), (84, 'book'),
    (85, 'clock'), (86, 'vase'), (87, 'scissors'), (88, 'teddy bear'), (89, 'hair drier'),
    (90, 'toothbrush'),
)
COCO_80: tuple[str, ...] = tuple(n for _, n in _COCO)
COCO_80_IDS: tuple[int, ...] = tuple(i for i, _ in _COCO)

# OV-COCO split (Bansal et al. 2018), see the project's ov_coco spec.
OV_COCO_NOVEL: frozenset[str] = frozenset({
    'airplane', 'bus', 'cat', 'dog', 'cow', 'elephant', 'umbrella', 'tie', 'snowboard', 'skateboard',
    'cup', 'knife', 'cake', 'couch', 'keyboard', 'sink', 'scissors'})
OV_COCO_BASE: frozenset[str] = frozenset({
    'person', 'bicycle', 'car', 'motorcycle', 'train', 'truck', 'boat', 'bench', 'bird', 'horse', 'sheep',
    'bear', 'zebra', 'giraffe', 'backpack', 'handbag', 'suitcase', 'frisbee', 'skis', 'kite', 'surfboard',
    'bottle', 'fork', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'pizza', 'donut', 'chair', 'bed', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'microwave', 'oven',
    'toaster', 'refrigerator', 'book', 'clock', 'vase', 'toothbrush'})
# The 65 evaluated classes (48 base + 17 novel) in COCO id order.
OV_COCO_65: tuple[str, ...] = tuple(n for n in COCO_80 if n in OV_COCO_BASE or n in OV_COCO_NOVEL)
OV_COCO_UNUSED: frozenset[str] = frozenset(COCO_80) - OV_COCO_BASE - OV_COCO_NOVEL

# The 53 stuff classes of COCO panoptic (panoptic_val2017.json names, in id order).
COCO_PANOPTIC_STUFF: tuple[str, ...] = (
    'banner', 'blanket', 'bridge', 'cardboard', 'counter', 'curtain', 'door-stuff', 'floor-wood', 'flower',
    'fruit', 'gravel', 'house', 'light', 'mirror-stuff', 'net', 'pillow', 'platform', 'playingfield',
    'railroad', 'river', 'road', 'roof', 'sand', 'sea', 'shelf', 'snow', 'stairs', 'tent', 'towel',
    'wall-brick', 'wall-stone', 'wall-tile', 'wall-wood', 'water-other', 'window-blind', 'window-other',
    'tree-merged', 'fence-merged', 'ceiling-merged', 'sky-other-merged', 'cabinet-merged', 'table-merged',
    'floor-other-merged', 'pavement-merged', 'mountain-merged', 'grass-merged', 'dirt-merged',
    'paper-merged', 'food-other-merged', 'building-other-merged', 'rock-merged', 'wall-other-merged',
    'rug-merged',
)
COCO_PANOPTIC_133: tuple[str, ...] = COCO_80 + COCO_PANOPTIC_STUFF

# Natural-language wording for names that are not (dataset suffixes, fused words).
PROMPT_NAMES: dict[str, str] = {
    'door-stuff': 'door', 'floor-wood': 'wooden floor', 'mirror-stuff': 'mirror',
    'playingfield': 'playing field', 'wall-brick': 'brick wall', 'wall-stone': 'stone wall',
    'wall-tile': 'tiled wall', 'wall-wood': 'wooden wall', 'water-other': 'water',
    'window-blind': 'window blind', 'window-other': 'window', 'tree-merged': 'tree',
    'fence-merged': 'fence', 'ceiling-merged': 'ceiling', 'sky-other-merged': 'sky',
    'cabinet-merged': 'cabinet',
    'table-merged': 'table', 'floor-other-merged': 'floor', 'pavement-merged': 'pavement',
    'mountain-merged': 'mountain', 'grass-merged': 'grass', 'dirt-merged': 'dirt', 'paper-merged': 'paper',
    'food-other-merged': 'food', 'building-other-merged': 'building', 'rock-merged': 'rock',
    'wall-other-merged': 'wall', 'rug-merged': 'rug',
}


def prompt_name(name: str) -> str:
    """The wording of ``name`` in text prompts (e.g. ``'sky-other-merged'`` -> ``'sky'``)."""
    if name in PROMPT_NAMES:
        return PROMPT_NAMES[name]
    for suffix in ('-merged', '-other', '-stuff'):
        if name.endswith(suffix):
            name = name[:-len(suffix)]
    return name.replace('_', ' ').replace('-', ' ')


def lvis_v1_classes() -> tuple[str, ...]:
    """LVIS v1's 1203 category names in category-id order (ids 1-1203), spelled as the lvis_v1 jsons
    spell them (``'bow_(weapon)'``, ``'Band_Aid'``; no synonyms). Taken from MMDetection's
    ``LVISV1Dataset.METAINFO``, which is in id order (mmdet gives label i to the i-th sorted id)."""
    from mmdet.datasets import LVISV1Dataset

    return tuple(LVISV1Dataset.METAINFO['classes'])


_SETS = {'coco_80': COCO_80, 'ov_coco_65': OV_COCO_65, 'coco_panoptic_133': COCO_PANOPTIC_133}
_LAZY_SETS = {'lvis_v1': lvis_v1_classes}  # built on demand (imports mmdet.datasets)
CLASS_LISTS: tuple[str, ...] = (*_SETS, *_LAZY_SETS)


def get_class_names(name: str) -> tuple[str, ...]:
    """A named class list: ``'coco_80'``, ``'ov_coco_65'``, ``'coco_panoptic_133'`` or ``'lvis_v1'``."""
    if name in _LAZY_SETS:
        return _LAZY_SETS[name]()
    if name not in _SETS:
        raise ValueError(f'unknown class list {name!r}; choose from {sorted(CLASS_LISTS)}')
    return _SETS[name]
