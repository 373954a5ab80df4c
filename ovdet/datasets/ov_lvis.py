"""OV-LVIS split helpers and an LVIS v1 dataset whose images live in the COCO 2017 folders.

OV-LVIS (the references' split): LVIS v1's 1203 categories are tagged by training-image
count, ``frequency`` r (rare) / c (common) / f (frequent). Novel = the rare ones; base = c + f. The
train split drops every rare annotation and keeps everything else (images, categories with their
counts, the per-image ``neg_category_ids`` / ``not_exhaustive_category_ids``); val is LVIS v1 val as is.
"""
from __future__ import annotations

from urllib.parse import urlparse

from .ov_coco import OVCocoFormatError, _check_coco

__all__ = [
    'LVIS_FREQUENCIES', 'LVISFormatError', 'check_lvis', 'coco_url_to_file_name', 'make_ov_lvis_train',
    'base_only_category_info', 'class_weights_from_category_info', 'lvis_split_counts', 'OVLVISDataset',
]

LVIS_FREQUENCIES: tuple[str, ...] = ('r', 'c', 'f')
NOVEL_FREQUENCY = 'r'


class LVISFormatError(ValueError):
    """An LVIS-format dict is missing what the OV-LVIS split or dataset needs."""


def check_lvis(lvis: dict, what: str, need_image_lists: bool = True) -> None:
    """Raise :class:`LVISFormatError` naming ``what`` unless ``lvis`` has LVIS v1's shape: images /
    annotations / categories lists, each category with ``id``, ``name`` and a ``frequency`` in r/c/f,
    each image with ``id`` (and, with ``need_image_lists``, its neg / not-exhaustive category lists)."""
    try:
        _check_coco(lvis, what)  # the COCO shape LVIS shares: lists, ids, names, image / category ids
    except OVCocoFormatError as e:
        raise LVISFormatError(str(e).replace('a COCO instances file', 'an LVIS v1 file')) from None
    for c in lvis['categories']:
        if c.get('frequency') not in LVIS_FREQUENCIES:
            raise LVISFormatError(f"{what}: category {c['id']} ({c['name']!r}) has frequency "
                                  f"{c.get('frequency')!r}, expected one of {LVIS_FREQUENCIES} "
                                  '(LVIS v1 tags every category; is this a COCO file?)')
    lists = ('neg_category_ids', 'not_exhaustive_category_ids') if need_image_lists else ()
    for im in lvis['images']:
        for key in lists:
            if not isinstance(im.get(key), list):
                raise LVISFormatError(f"{what}: image {im['id']} has no '{key}' list (LVIS v1 images "
                                      'carry neg_category_ids and not_exhaustive_category_ids)')


def coco_url_to_file_name(url: str, what: str = 'image') -> str:
    """``http://images.cocodataset.org/train2017/000000391895.jpg`` -> ``train2017/000000391895.jpg``:
    the path after the host, i.e. relative to the folder holding COCO 2017's image folders."""
    path = urlparse(str(url)).path.lstrip('/')
    if not path or '/' not in path:
        raise LVISFormatError(f'{what}: coco_url {url!r} has no <folder>/<file> path after the host')
    return path


def make_ov_lvis_train(lvis: dict, what: str = 'train json') -> dict:
    """The OV-LVIS train set: ``lvis`` without the annotations of rare categories. Images (also those
    left without annotations: the dataset filter drops them), categories (counts unchanged) and the
    neg / not-exhaustive lists are kept as they were, as are all other keys."""
    check_lvis(lvis, what)
    rare = {c['id'] for c in lvis['categories'] if c['frequency'] == NOVEL_FREQUENCY}
    out = dict(lvis)
    out['annotations'] = [a for a in lvis['annotations'] if a['category_id'] not in rare]
    return out


def base_only_category_info(lvis: dict, what: str = 'train json') -> list[dict]:
    """Per category ``{id, name, frequency, image_count, instance_count}`` with the counts of the rare
    ones set to 0 (the reference's ``lvis_v1_train_cat_norare_info.json``): class weight = count > 0."""
    check_lvis(lvis, what, need_image_lists=False)
    out = []
    for c in lvis['categories']:
        rare = c['frequency'] == NOVEL_FREQUENCY
        out.append({'id': c['id'], 'name': c['name'], 'frequency': c['frequency'],
                    'image_count': 0 if rare else int(c.get('image_count', 1)),
                    'instance_count': 0 if rare else int(c.get('instance_count', 1))})
    return out


def class_weights_from_category_info(info: list[dict], what: str = 'category info') -> list[float]:
    """1.0 for categories with ``image_count > 0`` (base), 0.0 otherwise, in id order."""
    if not isinstance(info, list) or not all(isinstance(c, dict) and 'id' in c and 'image_count' in c
                                             for c in info):
        raise LVISFormatError(f'{what}: expected a list of categories with id and image_count')
    return [1.0 if c['image_count'] > 0 else 0.0 for c in sorted(info, key=lambda c: c['id'])]


def lvis_split_counts(lvis: dict) -> dict[str, int]:
    """Image / annotation / category counts by frequency group (for the prepare tool's report)."""
    freq_of = {c['id']: c['frequency'] for c in lvis['categories']}
    counts = {'images': len(lvis['images']), 'annotations': len(lvis['annotations']),
              'categories': len(lvis['categories'])}
    for f in LVIS_FREQUENCIES:
        anns = [a for a in lvis['annotations'] if freq_of.get(a['category_id']) == f]
        counts[f'{f}_categories'] = sum(1 for v in freq_of.values() if v == f)
        counts[f'{f}_annotations'] = len(anns)
        counts[f'{f}_images'] = len({a['image_id'] for a in anns})
    annotated = {a['image_id'] for a in lvis['annotations']}
    counts['images_without_annotations'] = counts['images'] - len(annotated)
    counts['images_with_neg_lists'] = sum(1 for im in lvis['images'] if im.get('neg_category_ids'))
    counts['images_with_not_exhaustive_lists'] = sum(
        1 for im in lvis['images'] if im.get('not_exhaustive_category_ids'))
    return counts


# ----------------------------------------------------------------------------------------------
# the dataset (needs mmdet; the helpers above do not)
# ----------------------------------------------------------------------------------------------
try:
    from mmdet.datasets.api_wrappers import COCO
    from mmdet.registry import DATASETS

    from clim.datasets.errors import check_paths

    from .ov_coco import OVCocoDataset
except ImportError:  # pragma: no cover - the prepare tool works without the OpenMMLab stack
    OVCocoDataset = None  # type: ignore[assignment,misc]


if OVCocoDataset is not None:

    class _LVISApi(COCO):
        """pycocotools' index over an LVIS v1 json, its categories tagged ``split: base|novel`` from
        their frequency (so :class:`OVCocoDataset` finds the split where it looks for it)."""

        def __init__(self, annotation_file: str) -> None:
            super().__init__(annotation_file)
            try:
                check_lvis(self.dataset, annotation_file, need_image_lists=False)
            except LVISFormatError as e:
                raise LVISFormatError(f'{e} (OVLVISDataset reads LVIS v1 jsons; see data/README.md)') from None
            for c in self.dataset['categories']:  # the same dicts as self.cats
                c['split'] = 'novel' if c['frequency'] == NOVEL_FREQUENCY else 'base'

    @DATASETS.register_module()
    class OVLVISDataset(OVCocoDataset):
        """LVIS v1 (or OV-LVIS base-only) annotations over the COCO 2017 image folders.

        Classes are the file's categories in file order (LVIS v1: ids 1-1203), unless the config gives
        ``metainfo=dict(classes=...)``. Rare categories are ``metainfo['novel_classes']``, common and
        frequent ones ``base_classes``. An image's path is ``data_prefix['img']`` + the part of its
        ``coco_url`` after the host (``train2017/...`` or ``val2017/...``): LVIS val draws from both
        COCO folders, so ``data_prefix['img']`` is the folder holding them (e.g. ``data/coco/``).
        Masks (``segmentation`` polygons) load with ``LoadAnnotations(with_mask=True)``.

        A missing annotation file or image folder raises ``FileNotFoundError`` naming it; a file that is
        not LVIS v1 raises :class:`LVISFormatError` naming the file.
        """

        COCOAPI = _LVISApi

        def load_data_list(self) -> list[dict]:
            """Check the paths, then parse the json as :class:`OVCocoDataset` does."""
            check_paths(type(self).__name__, [
                ('annotation file', self.ann_file, 'ann_file', False),
                ('image folder (holding train2017/ and val2017/)', self.data_prefix.get('img', ''),
                 'data_prefix.img', True)])
            return super().load_data_list()

        def parse_data_info(self, raw_data_info: dict) -> dict:
            """:meth:`CocoDataset.parse_data_info` with ``file_name`` taken from ``coco_url``."""
            img_info = raw_data_info['raw_img_info']
            if 'coco_url' in img_info:
                img_info['file_name'] = coco_url_to_file_name(img_info['coco_url'],
                                                              f"{self.ann_file}: image {img_info['id']}")
            elif 'file_name' not in img_info:
                raise LVISFormatError(f"{self.ann_file}: image {img_info['id']} has neither coco_url "
                                      'nor file_name')
            return super().parse_data_info(raw_data_info)

else:  # pragma: no cover
    OVLVISDataset = None  # type: ignore[assignment,misc]

