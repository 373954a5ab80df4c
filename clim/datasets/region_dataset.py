"""Ground-truth regions (boxes + masks) of COCO-format annotations, for region recognition.

Two annotation forms:

* **COCO panoptic** (``panoptic_val2017.json`` + the PNG folder ``panoptic_val2017/``): every
  segment of ``segments_info`` is a region; masks come from the PNG (segment id
  ``R + 256 G + 256^2 B``); ``categories[].isthing`` splits things (80) from stuff (53).
* **COCO instances** (``instances_*.json``, boxes + polygon/RLE masks): every annotation is a
  region and every category counts as a "thing" (e.g. generated data).

Which regions and which class order follow a named protocol (:mod:`clim.datasets.region_protocol`):
``'clim-ovd'`` (default) leaves crowd regions out (a crowd box covers many objects) and numbers the
classes ``0..C-1`` in the order of ``categories``; ``'reference'`` (the CLIM / CLIPSelf code) keeps
crowd segments, considers the first 100 segments of an image and sorts categories by id. Size
filters and the stuff boxes of the reference need the masks: :class:`RegionEvalTransform` applies them.
"""
from __future__ import annotations

import dataclasses
import json
import os.path as osp
from collections.abc import Sequence
from typing import Any

import numpy as np
from mmengine.dataset import BaseDataset
from PIL import Image

from mmdet.registry import DATASETS, TRANSFORMS

from ..models.class_names import prompt_name
from .errors import DataPreparationError, check_paths, missing_path_error
from .region_protocol import RegionProtocol, get_region_protocol
from .transforms import build_pipeline, open_rgb

__all__ = ['RegionRecognitionDataset', 'LoadRegionAnnotations', 'ResizeLongestSide', 'PackRegionInputs']


def _fail(path: str, problem: str) -> DataPreparationError:
    return DataPreparationError(f'malformed region annotation file {path}: {problem}. Expected a COCO '
                                f'panoptic or instances json (see data/README.md).')


@DATASETS.register_module()
class RegionRecognitionDataset(BaseDataset):
    """Images with their ground-truth regions and class names, for zero-shot region classification.

    Args:
        ann_file: COCO panoptic or instances json, relative to ``data_root``.
        data_root: dataset root.
        img_prefix: image folder (``file_name`` relative to it).
        seg_prefix: panoptic PNG folder (panoptic json only).
        protocol: ``'clim-ovd'`` / ``'reference'`` (or a :class:`RegionProtocol`): crowd regions, the
            per-image segment cap and the category order.
        include_crowd: keep ``iscrowd`` regions (None: as the protocol says).
        class_name_map: optional ``{category name: text used for the prompt}`` (e.g. COCO's
            ``"wall-other-merged"`` -> ``"wall"``); by default :func:`clim.models.class_names.prompt_name`.

    ``metainfo``: ``classes`` (prompt names), ``category_names`` (as in the json), ``isthing``
    (bool per class), ``category_ids``, ``region_protocol`` (its name), all in class-index order.
    Each item after ``PackRegionInputs``: ``{'inputs': uint8 (3, H, W), 'data_samples':
    BaseDataElement(gt_bboxes (n, 4) pixels of the resized image, gt_labels (n,), gt_masks
    (n, h/stride, w/stride) bool, optionally gt_crops (n, 3, S, S) uint8, metainfo incl. classes,
    category_names, scale)}``.
    """

    def __init__(self, ann_file: str, data_root: str = '', img_prefix: str = '', seg_prefix: str = '',
                 pipeline: Sequence[dict | Any] = (), protocol: str | dict | RegionProtocol = 'clim-ovd',
                 include_crowd: bool | None = None,
                 class_name_map: dict[str, str] | None = None, indices: int | Sequence[int] | None = None,
                 lazy_init: bool = False) -> None:
        self.protocol = get_region_protocol(protocol)
        self.include_crowd = self.protocol.keep_crowd if include_crowd is None else bool(include_crowd)
        self.class_name_map = dict(class_name_map or {})
        self._seg_prefix = seg_prefix
        super().__init__(ann_file=ann_file, data_root=data_root,
                         data_prefix=dict(img_path=img_prefix, seg_path=seg_prefix),
                         pipeline=build_pipeline(pipeline),
                         test_mode=True, lazy_init=lazy_init, indices=indices)

    def _prompt_name(self, name: str) -> str:
        if name in self.class_name_map:
            return self.class_name_map[name]
        return prompt_name(name)

    def load_data_list(self) -> list[dict]:
        img_root = self.data_prefix.get('img_path', '')
        seg_root = self.data_prefix.get('seg_path', '')
        check_paths(type(self).__name__, [('region annotation file', self.ann_file, 'ann_file', False)]
                    + ([('image folder', img_root, 'img_prefix', True)] if img_root else [])
                    + ([('panoptic PNG folder', seg_root, 'seg_prefix', True)] if self._seg_prefix else []))
        try:
            with open(self.ann_file, encoding='utf-8') as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            problem = f'not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})'
            raise _fail(self.ann_file, problem) from e
        if not isinstance(data, dict) or not all(isinstance(data.get(k), list)
                                                 for k in ('images', 'annotations', 'categories')):
            raise _fail(self.ann_file, 'needs "images", "annotations" and "categories" lists')
        cats = data['categories']
        if self.protocol.category_order == 'id':
            cats = sorted(cats, key=lambda c: c['id'])
        cat_index = {c['id']: i for i, c in enumerate(cats)}
        panoptic = any('segments_info' in a for a in data['annotations'][:1])
        if panoptic:
            if not self._seg_prefix:
                raise missing_path_error('panoptic PNG folder', '<seg_prefix is unset>', 'seg_prefix')
        self._metainfo.update(
            classes=tuple(self._prompt_name(c['name']) for c in cats),
            category_names=tuple(c['name'] for c in cats),
            category_ids=tuple(c['id'] for c in cats),
            isthing=tuple(bool(c.get('isthing', 1)) if panoptic else True for c in cats),
            region_protocol=self.protocol.name, region_protocol_fields=dataclasses.asdict(self.protocol))
        isthing = dict(zip(cat_index, self._metainfo['isthing']))
        images = {im['id']: im for im in data['images']}
        per_image: dict[Any, list[dict]] = {i: [] for i in images}
        if panoptic:
            pngs = {}
            for a in data['annotations']:
                pngs[a['image_id']] = a['file_name']
                for s in a['segments_info']:
                    per_image.setdefault(a['image_id'], []).append(dict(s, _png=a['file_name']))
        else:
            for a in data['annotations']:
                per_image.setdefault(a['image_id'], []).append(a)
        out = []
        cap = self.protocol.max_segments
        # Degenerate json boxes are dropped here unless a size filter decides (on the protocol's boxes).
        drop_empty = self.protocol.min_box_size is None
        for img_id, im in images.items():
            regions = []
            segments = per_image.get(img_id, [])
            for a in segments[:cap] if cap is not None else segments:
                if a.get('iscrowd', 0) and not self.include_crowd:
                    continue
                if a['category_id'] not in cat_index:
                    raise _fail(self.ann_file, f'category_id {a["category_id"]} of image {img_id} is not in '
                                               f'"categories"')
                x, y, w, h = a['bbox']
                if drop_empty and (w <= 0 or h <= 0):
                    continue
                regions.append(dict(bbox=[x, y, x + w, y + h], bbox_xywh=[x, y, w, h],
                                    label=cat_index[a['category_id']], isthing=isthing[a['category_id']],
                                    segment_id=a.get('id'), segmentation=a.get('segmentation')))
            if not regions:
                continue
            info = dict(img_id=img_id, img_path=osp.join(img_root, im['file_name']), height=im.get('height'),
                        width=im.get('width'), regions=regions)
            if panoptic:
                info['seg_path'] = osp.join(self.data_prefix['seg_path'], pngs[img_id])
            out.append(info)
        return out

    def prepare_data(self, idx: int) -> Any:
        info = self.get_data_info(idx)
        info['classes'] = self.metainfo['classes']
        info['category_names'] = self.metainfo['category_names']
        out = self.pipeline(info)
        packed = out.get('data_samples') if isinstance(out, dict) else None
        made = getattr(packed, 'metainfo', {}).get('region_protocol')
        if packed is not None and made is None and self.protocol.name != 'clim-ovd':
            raise ValueError(f'{type(self).__name__}(protocol={self.protocol.name!r}) needs a RegionEvalTransform '
                             f'of that protocol in its pipeline (boxes, filter, crops, masks)')
        if made is not None and made != self.protocol.name:
            raise ValueError(f'{type(self).__name__}(protocol={self.protocol.name!r}) has a pipeline step of '
                             f'protocol {made!r} (RegionEvalTransform): give both the same protocol')
        return out


def _polygons_to_mask(segm: Any, h: int, w: int) -> np.ndarray:
    from pycocotools import mask as mask_utils
    if isinstance(segm, list):
        rles = mask_utils.frPyObjects(segm, h, w)
        rle = mask_utils.merge(rles)
    elif isinstance(segm, dict) and isinstance(segm.get('counts'), list):
        rle = mask_utils.frPyObjects(segm, h, w)
    else:
        rle = segm
    return mask_utils.decode(rle).astype(bool)


@TRANSFORMS.register_module()
class LoadRegionAnnotations:
    """Decode the image and the regions: ``img`` (PIL), ``gt_bboxes`` (n, 4) float32 x1y1x2y2 pixels,
    ``gt_labels`` (n,) int64, ``gt_masks`` (n, H, W) bool (from the panoptic PNG or polygons/RLE)."""

    def __call__(self, results: dict) -> dict:
        img = open_rgb(results['img_path'])
        h, w = img.height, img.width
        regions = results['regions']
        if 'seg_path' in results:
            png = np.asarray(open_rgb(results['seg_path']), dtype=np.uint32)
            ids = png[..., 0] + 256 * png[..., 1] + 256 * 256 * png[..., 2]
            masks = np.stack([ids == r['segment_id'] for r in regions])
        else:
            masks = np.stack([_polygons_to_mask(r['segmentation'], h, w) if r['segmentation'] is not None
                              else _box_mask(r['bbox'], h, w) for r in regions])
        results.update(img=img, ori_shape=(h, w), img_shape=(h, w),
                       gt_bboxes=np.array([r['bbox'] for r in regions], dtype=np.float32),
                       gt_labels=np.array([r['label'] for r in regions], dtype=np.int64), gt_masks=masks)
        return results


def _box_mask(box: Sequence[float], h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[int(box[1]):int(np.ceil(box[3])), int(box[0]):int(np.ceil(box[2]))] = True
    return m


@TRANSFORMS.register_module()
class ResizeLongestSide:
    """Resize so the longer side is ``size`` (aspect kept); boxes scaled, masks resized (nearest).

    Args:
        size: target longer side (1024 for the reference evaluation).
        interpolation: PIL filter for the image.
    """

    def __init__(self, size: int = 1024, interpolation: str = 'bicubic') -> None:
        self.size = int(size)
        self.interpolation = {'bicubic': Image.BICUBIC, 'bilinear': Image.BILINEAR}[interpolation]

    def __call__(self, results: dict) -> dict:
        img: Image.Image = results['img']
        scale = self.size / max(img.width, img.height)
        w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
        results['img'] = img.resize((w, h), self.interpolation)
        results['img_shape'] = (h, w)
        results['scale_factor'] = (w / img.width, h / img.height)
        if 'gt_bboxes' in results:
            results['gt_bboxes'] = results['gt_bboxes'] * np.array([w / img.width, h / img.height] * 2,
                                                                   dtype=np.float32)
        if 'gt_masks' in results and len(results['gt_masks']):
            results['gt_masks'] = np.stack([np.asarray(Image.fromarray(m).resize((w, h), Image.NEAREST))
                                            for m in results['gt_masks']])
        return results


@TRANSFORMS.register_module()
class PackRegionInputs:
    """Pack image and regions; masks are reduced to the dense-feature grid (``mask_stride`` pixels/cell).

    A cell belongs to a mask when at least half of it is covered; a mask covering no cell that way
    keeps its best-covered cell (small objects still get a feature). Cells an earlier transform made
    (``gt_mask_cells``, e.g. :class:`RegionEvalTransform`) are packed as they are, and so are its
    ``gt_crops`` (n, 3, S, S) uint8.
    """

    def __init__(self, mask_stride: int = 16,
                 meta_keys: tuple[str, ...] = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                                               'classes', 'category_names', 'region_protocol')) -> None:
        self.mask_stride = int(mask_stride)
        self.meta_keys = tuple(meta_keys)

    def _cells(self, masks: np.ndarray) -> np.ndarray:
        n, h, w = masks.shape
        s = self.mask_stride
        gh, gw = -(-h // s), -(-w // s)
        padded = np.zeros((n, gh * s, gw * s), dtype=np.float32)
        padded[:, :h, :w] = masks
        cover = padded.reshape(n, gh, s, gw, s).mean(axis=(2, 4))
        cells = cover >= 0.5
        empty = ~cells.reshape(n, -1).any(1)
        for i in np.nonzero(empty)[0]:
            if cover[i].max() > 0:
                cells[i].flat[int(cover[i].argmax())] = True
        return cells

    def __call__(self, results: dict) -> dict:
        import torch
        from mmengine.structures import BaseDataElement
        img = np.asarray(results['img'], dtype=np.uint8)
        sample = BaseDataElement(metainfo={k: results[k] for k in self.meta_keys if k in results})
        sample.gt_bboxes = torch.from_numpy(results['gt_bboxes']).float()
        sample.gt_labels = torch.from_numpy(results['gt_labels']).long()
        if 'gt_mask_cells' in results:
            sample.gt_masks = torch.from_numpy(np.ascontiguousarray(results['gt_mask_cells'])).bool()
        elif 'gt_masks' in results:
            sample.gt_masks = torch.from_numpy(self._cells(results['gt_masks']))
        if 'gt_crops' in results:
            sample.gt_crops = torch.from_numpy(np.ascontiguousarray(results['gt_crops']))
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        return dict(inputs=inputs, data_samples=sample)
