"""The region-evaluation pipeline step that follows a named :class:`RegionProtocol`.

:class:`RegionEvalTransform` sits between :class:`~clim.datasets.region_dataset.LoadRegionAnnotations`
(original image, json boxes, full-resolution masks) and
:class:`~clim.datasets.region_dataset.PackRegionInputs`. For the ``'reference'`` protocol it computes,
from the original-resolution image and masks: the stuff boxes (mask extent), the size filter, the
letterboxed crops, the bicubic mask cells, and the resized image padded black to the square input.
For ``'clim-ovd'`` it is the earlier ``ResizeLongestSide`` step (the crops are cut in the model).

The geometry is in small public functions (:func:`thing_crop_box`, :func:`mask_extent_box`,
:func:`letterbox`, :func:`bicubic_mask_cells`, :func:`resize_and_pad`) so tests check them by hand.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from mmdet.registry import TRANSFORMS

from .errors import DataPreparationError
from .region_dataset import ResizeLongestSide
from .region_protocol import RegionProtocol, get_region_protocol

__all__ = ['RegionEvalTransform', 'thing_crop_box', 'mask_extent_box', 'letterbox', 'bicubic_mask_cells',
           'resize_and_pad']


def thing_crop_box(bbox_xywh: Sequence[float], img_w: int, img_h: int, scale: float = 1.5
                   ) -> tuple[float, float, float, float]:
    """The box ``scale`` times larger about its centre, clipped to the image: (x0, y0, x1, y1)."""
    x, y, w, h = bbox_xywh
    cx, cy = x + w * 0.5, y + h * 0.5
    half = 0.5 * scale
    return max(cx - w * half, 0), max(cy - h * half, 0), min(cx + w * half, img_w), min(cy + h * half, img_h)


def mask_extent_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) = the min / max column and row indices of a mask, max *inclusive* (a one-pixel
    mask has x1 == x0); None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def letterbox(img: Image.Image, size: int, fill: int = 0) -> Image.Image:
    """Longer side resized (bicubic) to ``size``, aspect kept (sides rounded), then padded to a
    ``size`` square with ``fill``, centred (the odd pixel goes right / bottom)."""
    scale = size / float(max(img.width, img.height))
    new_w, new_h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    resized = img.resize((new_w, new_h), Image.BICUBIC)
    out = Image.new(img.mode, (size, size), (fill,) * len(img.getbands()))
    out.paste(resized, ((size - new_w) // 2, (size - new_h) // 2))
    return out


def bicubic_mask_cells(mask: np.ndarray, grid: int, antialias: bool) -> np.ndarray:
    """A full-resolution mask on a ``grid`` x ``grid`` map: resized as a float image (bicubic, longer
    side to ``grid``, torchvision with the given ``antialias``), zero-padded right / bottom, cells > 0.

    Returns:
        (grid, grid) bool.
    """
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    h, w = mask.shape
    scale = grid / float(max(h, w))
    new_h, new_w = round(h * scale), round(w * scale)
    t = torch.from_numpy(np.ascontiguousarray(mask)).float()[None]
    resized = TF.resize(t, [new_h, new_w], InterpolationMode.BICUBIC, antialias=antialias)[0]
    out = torch.zeros(grid, grid)
    out[:new_h, :new_w] = resized
    return (out > 0).numpy()


def resize_and_pad(img: Image.Image, size: int, fill: int = 0) -> tuple[Image.Image, float, tuple[int, int]]:
    """Longer side to ``size`` (bicubic, sides rounded), padded right / bottom with ``fill`` to a square.

    Returns:
        (the ``size`` x ``size`` image, the one scale factor size / longer side, the resized (h, w)).
    """
    scale = size / float(max(img.width, img.height))
    new_w, new_h = round(img.width * scale), round(img.height * scale)
    out = Image.new(img.mode, (size, size), (fill,) * len(img.getbands()))
    out.paste(img.resize((new_w, new_h), Image.BICUBIC), (0, 0))
    return out, scale, (new_h, new_w)


@TRANSFORMS.register_module()
class RegionEvalTransform:
    """Boxes, region filter, crops, mask cells and the model input, as a region protocol says.

    Args:
        protocol: ``'reference'`` / ``'clim-ovd'`` / a :class:`RegionProtocol` (or a dict, see
            :func:`get_region_protocol`).
        image_size: the model input's longer side (1024 in the references).
        mask_stride: input pixels per dense-map cell (16): the bicubic masks go to
            ``image_size // mask_stride`` cells a side.
        crop_size: side of the crops (the CLIP's input size, 224); with ``with_crops``.
        with_crops: cut the crops in the pipeline (protocols with ``crop_source='original'``).

    Input (``LoadRegionAnnotations``): ``img`` PIL (original), ``gt_bboxes`` (n, 4), ``gt_labels`` (n,),
    ``gt_masks`` (n, H, W) bool, ``regions`` (with ``bbox_xywh`` and ``isthing``).
    Output: ``img`` the resized (and, for ``image_pad='black'``, padded) PIL image; ``gt_bboxes`` of the
    kept regions in its pixels; ``gt_labels``; ``gt_mask_cells`` (n, g, g) bool for bicubic masks (else
    ``gt_masks`` resized with the image); ``gt_crops`` (n, 3, S, S) uint8 when cut here; ``img_shape``
    (resized, unpadded), ``scale_factor`` (w, h), ``region_protocol`` (its name).
    """

    def __init__(self, protocol: str | dict | RegionProtocol = 'reference', image_size: int = 1024,
                 mask_stride: int = 16, crop_size: int = 224, with_crops: bool = True) -> None:
        self.protocol = get_region_protocol(protocol)
        self.image_size = int(image_size)
        self.mask_stride = int(mask_stride)
        self.crop_size = int(crop_size)
        self.with_crops = bool(with_crops) and self.protocol.crop_source == 'original'
        if self.image_size % self.mask_stride:
            raise ValueError(f'image_size {self.image_size} is not a multiple of mask_stride {self.mask_stride}')

    def _boxes(self, results: dict) -> tuple[np.ndarray, list, np.ndarray]:
        """(n, 4) region boxes (original pixels, float64), crop boxes, keep flags."""
        p = self.protocol
        img_w, img_h = results['img'].width, results['img'].height
        boxes, crops, keep = [], [], []
        for region, mask in zip(results['regions'], results['gt_masks']):
            x, y, w, h = region['bbox_xywh']
            if region['isthing'] or p.stuff_box == 'annotation':
                box = (x, y, x + w, y + h)
                scale = p.thing_crop_scale if region['isthing'] else 1.0
                crop = thing_crop_box((x, y, w, h), img_w, img_h, scale) if scale != 1.0 else box
            else:
                box = mask_extent_box(mask)
                if box is None:
                    raise DataPreparationError(
                        f'{results.get("seg_path", results["img_path"])}: segment {region.get("segment_id")} '
                        f'has no pixels; its stuff box (the mask extent) is undefined')
                crop = box
                w, h = box[2] - box[0], box[3] - box[1]
            area = w * h
            ok = (p.min_box_size is None or area >= p.min_box_size ** 2) and \
                 (p.max_box_size is None or area <= p.max_box_size ** 2)
            boxes.append(box)
            crops.append(crop)
            keep.append(ok)
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), crops, np.asarray(keep, dtype=bool)

    def _crop(self, img: Image.Image, box: Sequence[float]) -> np.ndarray:
        # Whole pixels as PIL's `Image.crop` rounds a float box (what the reference calls); a box
        # thinner than a pixel after rounding keeps one pixel (the reference would fail on it).
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        region = img.crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))
        if self.protocol.crop_resize == 'letterbox':
            out = letterbox(region, self.crop_size)
        else:
            out = region.resize((self.crop_size, self.crop_size), Image.BICUBIC)
        return np.asarray(out, dtype=np.uint8).transpose(2, 0, 1)

    def __call__(self, results: dict) -> dict:
        p = self.protocol
        img: Image.Image = results['img']
        boxes, crop_boxes, keep = self._boxes(results)
        idx = np.nonzero(keep)[0]
        masks = results['gt_masks'][idx]
        results['gt_labels'] = results['gt_labels'][idx]
        results['regions'] = [results['regions'][i] for i in idx]
        results['region_protocol'] = p.name
        if self.with_crops:
            crops = [self._crop(img, crop_boxes[i]) for i in idx]
            results['gt_crops'] = (np.stack(crops) if crops else
                                   np.zeros((0, 3, self.crop_size, self.crop_size), np.uint8))
        grid = self.image_size // self.mask_stride
        if p.mask_cells == 'bicubic':
            results['gt_mask_cells'] = (np.stack([bicubic_mask_cells(m, grid, p.mask_antialias) for m in masks])
                                        if len(masks) else np.zeros((0, grid, grid), bool))
            results.pop('gt_masks')
        else:
            results['gt_masks'] = masks
        results['gt_bboxes'] = boxes[idx].astype(np.float32)
        if p.image_pad == 'black':
            results['img'], scale, (new_h, new_w) = resize_and_pad(img, self.image_size)
            results['img_shape'] = (new_h, new_w)
            results['pad_shape'] = (self.image_size, self.image_size)
        else:  # the earlier step: resize only (the data preprocessor pads), masks resized along
            scale = self.image_size / float(max(img.width, img.height))
            results = ResizeLongestSide(self.image_size)(results)
            new_h, new_w = results['img_shape']
        boxes_t = torch.from_numpy(boxes[idx].astype(np.float32))
        if p.box_scale == 'single':
            results['scale_factor'] = (scale, scale)
            boxes_t = boxes_t * scale  # float32 times a Python float, as the reference's `boxes *= scale`
        else:
            results['scale_factor'] = (new_w / img.width, new_h / img.height)
            boxes_t = boxes_t * torch.tensor(results['scale_factor'] * 2, dtype=torch.float32)
        results['gt_bboxes'] = boxes_t.numpy()
        return results
