"""The image list (and region proposals) of CLIPSelf training: no captions, no labels.

Annotation format: a COCO-style json. Image-patch mode reads only ``images`` (``id``, ``file_name``),
e.g. COCO's ``instances_train2017.json``; region-proposal mode also reads ``annotations``
(``image_id``, ``bbox`` [x, y, w, h]), e.g. the reference's ``coco_proposals.json``. Nothing else is read.

Missing files fail at construction naming the path (``data/README.md``); malformed json raises
:class:`DataPreparationError`; unreadable images are skipped and reported exactly as in
:class:`~clim.datasets.CaptionDataset` (whose sample loop and per-(seed, epoch, index) generator this
dataset reuses).
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmdet.registry import DATASETS

from .caption_dataset import CaptionDataset, sample_rng
from .errors import DataPreparationError, check_paths, read_images_json

__all__ = ['CLIPSelfDataset', 'load_image_json']


def _fail(path: str, problem: str) -> DataPreparationError:
    return DataPreparationError(f'malformed CLIPSelf annotation file {path}: {problem}. Expected a COCO-style '
                                f'{{"images": [{{"id", "file_name"}}, ...], "annotations": [{{"image_id", '
                                f'"bbox": [x, y, w, h]}}, ...]}} (annotations only for proposals; see '
                                f'data/README.md).')


def load_image_json(path: str, with_proposals: bool) -> list[dict[str, Any]]:
    """``[{'img_id', 'file_name'(, 'proposals': (n, 4) float32 xywh)}]`` in the file's image order.

    Raises:
        DataPreparationError: not JSON, or not the COCO layout.
    """
    data = read_images_json(path, _fail)
    entries = []
    for k, im in enumerate(data['images']):
        if not isinstance(im, dict) or not isinstance(im.get('file_name'), str) or 'id' not in im:
            raise _fail(path, f'images[{k}] needs "id" and a string "file_name"')
        entries.append(dict(img_id=im['id'], file_name=im['file_name']))
    if not with_proposals:
        return entries
    anns = data.get('annotations')
    if not isinstance(anns, list):
        raise _fail(path, 'region-proposal mode needs an "annotations" list')
    per_image: dict[Any, list] = {}
    for k, a in enumerate(anns):
        bbox = a.get('bbox') if isinstance(a, dict) else None
        if 'image_id' not in (a if isinstance(a, dict) else {}) or not isinstance(bbox, list) or len(bbox) != 4 \
                or not all(isinstance(v, (int, float)) for v in bbox):
            raise _fail(path, f'annotations[{k}] needs "image_id" and a "bbox" of 4 numbers')
        per_image.setdefault(a['image_id'], []).append(bbox)
    for e in entries:
        e['proposals'] = np.asarray(per_image.get(e['img_id'], []), dtype=np.float32).reshape(-1, 4)
    return entries


@DATASETS.register_module()
class CLIPSelfDataset(CaptionDataset):
    """Images (and their region proposals) for CLIPSelf's self-distillation.

    Args:
        ann_file: COCO-style json (see the module docstring), relative to ``data_root``.
        data_root / img_prefix: dataset root and image folder (``file_name`` is relative to it).
        with_proposals: read the ``annotations`` boxes as region proposals (region-proposal mode).
        pipeline: e.g. ``LoadCaptionImage`` -> ``SampleGridBoxes`` -> ``PrepareCLIPSelfInputs`` ->
            ``PackCLIPSelfInputs``.
        seed / max_consecutive_failures / test_mode / ...: as :class:`~clim.datasets.CaptionDataset`.

    Each item, after ``PackCLIPSelfInputs``: ``{'inputs': uint8 (3, S, S), 'data_samples':
    BaseDataElement(boxes=(k, 4) float32, crops=uint8 (k, 3, c, c), metainfo: img_id, img_path,
    skipped_images, ...)}``. Indices may be ints or ``(epoch, index)`` (``CaptionEpochSampler``).
    """

    def __init__(self, ann_file: str, data_root: str = '', img_prefix: str = '', with_proposals: bool = False,
                 pipeline: Sequence[dict | Any] = (), seed: int = 0, max_consecutive_failures: int = 64,
                 test_mode: bool = False, lazy_init: bool = False, serialize_data: bool = True,
                 indices: int | Sequence[int] | None = None) -> None:
        self.with_proposals = bool(with_proposals)
        super().__init__(ann_file=ann_file, data_root=data_root, img_prefix=img_prefix, pipeline=pipeline,
                         seed=seed, max_consecutive_failures=max_consecutive_failures, test_mode=test_mode,
                         lazy_init=lazy_init, serialize_data=serialize_data, indices=indices)

    def load_data_list(self) -> list[dict]:
        img_root = self.data_prefix.get('img_path', '')
        kind = 'proposal annotation file' if self.with_proposals else 'image list (COCO-style json)'
        check_paths(type(self).__name__, [(kind, self.ann_file, 'ann_file', False)]
                    + ([('image folder', img_root, 'img_prefix', True)] if img_root else []))
        entries = load_image_json(self.ann_file, self.with_proposals)
        if not entries:
            raise DataPreparationError(f'{self.ann_file} lists no image')
        for e in entries:
            e['img_path'] = osp.join(img_root, e.pop('file_name'))
        return entries

    def _prepare(self, index: int, epoch: int) -> Any:
        info = self.get_data_info(index)
        info['rng'] = sample_rng(self.seed, epoch, index)
        info['sample_idx'] = index
        return self.pipeline(info)
