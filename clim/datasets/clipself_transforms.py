"""Transforms of CLIPSelf's training data: which boxes of an image are distilled, and their crops.

CLIPSelf (clipself.md) distils the dense map of a full image, pooled over boxes, towards the
ordinary CLIP embedding of each box cropped out of the image. A pipeline is::

    LoadCaptionImage -> SampleGridBoxes | SampleProposalBoxes -> PrepareCLIPSelfInputs -> PackCLIPSelfInputs

The box samplers write ``distill_boxes`` (k, 4) x1y1x2y2 and ``crop_boxes`` (k, 4), both in original
pixels; :class:`PrepareCLIPSelfInputs` cuts the crops from the original image and makes the student's
input (longer side resized, padded black to a square). Randomness comes from ``results['rng']`` (the
dataset keys it by (seed, epoch, index)), so a sample does not depend on workers or on resuming.

The geometry is in small public functions (:func:`grid_choices`, :func:`grid_cells`,
:func:`select_proposals`) so tests check it by hand.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from mmdet.registry import TRANSFORMS

from .region_transforms import letterbox, resize_and_pad, thing_crop_box
from .transforms import PackCaptionInputs, _rng

__all__ = ['grid_choices', 'grid_cells', 'select_proposals', 'enlarged_boxes', 'crop_letterboxed',
           'SampleGridBoxes', 'SampleProposalBoxes', 'PrepareCLIPSelfInputs', 'PackCLIPSelfInputs']


def grid_choices(max_split: int = 6) -> list[tuple[int, int]]:
    """Every (m rows, n cols) with m = 1..max_split and (m + 1) // 2 <= n <= min(2m, max_split).

    24 pairs for the reference's ``max_split`` 6, in m-major order.
    """
    return [(m, n) for m in range(1, max_split + 1) for n in range((m + 1) // 2, min(2 * m, max_split) + 1)]


def grid_cells(m: int, n: int) -> np.ndarray:
    """(m * n, 4) float64 cells of an m x n grid, normalized x1y1x2y2, row-major:
    cell (i, j) = (j / n, i / m, (j + 1) / n, (i + 1) / m)."""
    i, j = np.divmod(np.arange(m * n), n)
    return np.stack([j / n, i / m, (j + 1) / n, (i + 1) / m], axis=1).astype(np.float64)


def enlarged_boxes(boxes: np.ndarray, scale: float, img_w: int, img_h: int) -> np.ndarray:
    """(k, 4) x1y1x2y2 boxes ``scale`` times larger about their centres, clipped to the image
    (unchanged for ``scale`` 1)."""
    if scale == 1.0:
        return boxes.copy()
    return np.asarray([thing_crop_box((x0, y0, x1 - x0, y1 - y0), img_w, img_h, scale)
                       for x0, y0, x1, y1 in boxes], dtype=np.float64).reshape(-1, 4)


def select_proposals(proposals_xywh: np.ndarray, img_w: int, img_h: int, rng: np.random.Generator,
                     max_boxes: int = 20, min_size: float = 8.0, max_size: float = 1024.0,
                     crop_scale: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """The reference's proposal choice: shuffle, keep the first ``max_boxes``, *then* drop those whose
    area w * h is < ``min_size**2`` or > ``max_size**2`` (so often fewer than ``max_boxes`` remain).

    Args:
        proposals_xywh: (n, 4) proposals [x, y, w, h] in original pixels.

    Returns:
        ``(boxes, crops)``, both (k, 4) float64 x1y1x2y2 in original pixels: the tight proposals (the
        student's boxes) and the same enlarged ``crop_scale`` x about the centre, clipped (the teacher's
        crops). With no proposal left: the box (0, 0, w / 4, h / 4) and the crop (0, 0, w // 4, h // 4).
    """
    props = np.asarray(proposals_xywh, dtype=np.float64).reshape(-1, 4)
    props = props[rng.permutation(len(props))[:max_boxes]]
    area = props[:, 2] * props[:, 3]
    props = props[(area >= min_size ** 2) & (area <= max_size ** 2)]
    if not len(props):
        return (np.array([[0.0, 0.0, img_w / 4, img_h / 4]]),
                np.array([[0.0, 0.0, img_w // 4, img_h // 4]], dtype=np.float64))
    boxes = np.concatenate([props[:, :2], props[:, :2] + props[:, 2:]], axis=1)
    return boxes, enlarged_boxes(boxes, crop_scale, img_w, img_h)


def crop_letterboxed(img: Image.Image, box: Sequence[float], size: int) -> np.ndarray:
    """(3, size, size) uint8: the box cut from ``img`` in whole pixels (rounded, as PIL's ``crop`` rounds a
    float box; at least one pixel a side), longer side resized to ``size`` (bicubic), centred black pad."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    region = img.crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))
    return np.asarray(letterbox(region, size), dtype=np.uint8).transpose(2, 0, 1)


@TRANSFORMS.register_module()
class SampleGridBoxes:
    """Image-patch mode (``grid_distill``): one random m x n grid per image, up to ``max_boxes`` cells.

    Args:
        max_split: largest m and n (reference 6: the 24 pairs of :func:`grid_choices`, drawn uniformly).
        max_boxes: cells kept after shuffling (reference 20).
        crop_scale: teacher crops are the cells enlarged this much about the centre, clipped
            (reference 1.0: the cell itself).

    Input ``img`` (PIL, original). Output ``distill_boxes`` / ``crop_boxes`` (k, 4) float64 x1y1x2y2 in
    original pixels, ``grid`` (m, n).
    """

    def __init__(self, max_split: int = 6, max_boxes: int = 20, crop_scale: float = 1.0) -> None:
        self.choices = grid_choices(max_split)
        self.max_boxes = int(max_boxes)
        self.crop_scale = float(crop_scale)

    def __call__(self, results: dict) -> dict:
        img: Image.Image = results['img']
        rng = _rng(results)
        m, n = self.choices[int(rng.integers(len(self.choices)))]
        cells = grid_cells(m, n)[rng.permutation(m * n)[:self.max_boxes]]
        boxes = cells * np.array([img.width, img.height, img.width, img.height], dtype=np.float64)
        results['distill_boxes'] = boxes
        results['crop_boxes'] = enlarged_boxes(boxes, self.crop_scale, img.width, img.height)
        results['grid'] = (m, n)
        return results


@TRANSFORMS.register_module()
class SampleProposalBoxes:
    """Region-proposal mode (``proposals_distill``): see :func:`select_proposals`.

    Args:
        max_boxes / min_size / max_size / crop_scale: reference 20 / 8 / 1024 / 1.5.

    Input ``img`` (PIL, original), ``proposals`` (n, 4) xywh (from :class:`~clim.datasets.CLIPSelfDataset`
    with ``with_proposals=True``). Output ``distill_boxes`` / ``crop_boxes`` as :class:`SampleGridBoxes`.
    """

    def __init__(self, max_boxes: int = 20, min_size: float = 8.0, max_size: float = 1024.0,
                 crop_scale: float = 1.5) -> None:
        self.max_boxes = int(max_boxes)
        self.min_size, self.max_size = float(min_size), float(max_size)
        self.crop_scale = float(crop_scale)

    def __call__(self, results: dict) -> dict:
        if 'proposals' not in results:
            raise KeyError('SampleProposalBoxes needs the samples\' proposals: use '
                           'CLIPSelfDataset(with_proposals=True)')
        img: Image.Image = results['img']
        results['distill_boxes'], results['crop_boxes'] = select_proposals(
            results['proposals'], img.width, img.height, _rng(results), self.max_boxes, self.min_size,
            self.max_size, self.crop_scale)
        return results


@TRANSFORMS.register_module()
class PrepareCLIPSelfInputs:
    """The student's full image and the teacher's crops.

    Args:
        image_size: the student input: longer side resized (bicubic) to this, padded right / bottom to a
            square with pixel 0 *before* normalization (reference 1024 for B/16, 896 for L/14).
        crop_size: the CLIP's input size (224 / 336); crops are letterboxed to it (centred black pad).

    Input ``img`` (PIL, original), ``distill_boxes`` / ``crop_boxes`` (k, 4) original pixels. Output
    ``img`` (PIL ``image_size`` square), ``boxes`` (k, 4) float32 normalized to that square (pixels times
    the one scale ``image_size / longer side``, divided by ``image_size``), ``crops`` (k, 3, c, c) uint8,
    ``img_shape`` (the resized, unpadded (h, w)), ``scale_factor``.
    """

    def __init__(self, image_size: int = 1024, crop_size: int = 224) -> None:
        self.image_size = int(image_size)
        self.crop_size = int(crop_size)

    def __call__(self, results: dict) -> dict:
        img: Image.Image = results['img']
        crops = [crop_letterboxed(img, b, self.crop_size) for b in results['crop_boxes']]
        results['crops'] = (np.stack(crops) if crops else
                            np.zeros((0, 3, self.crop_size, self.crop_size), np.uint8))
        results['img'], scale, results['img_shape'] = resize_and_pad(img, self.image_size)
        results['scale_factor'] = (scale, scale)
        results['boxes'] = (np.asarray(results['distill_boxes'], dtype=np.float64).reshape(-1, 4)
                            * (scale / self.image_size)).astype(np.float32)
        return results


@TRANSFORMS.register_module()
class PackCLIPSelfInputs(PackCaptionInputs):
    """:class:`PackCaptionInputs` plus the distillation targets.

    Output: ``{'inputs': uint8 (3, S, S), 'data_samples': BaseDataElement}`` with ``boxes`` float32 (k, 4)
    normalized x1y1x2y2 and ``crops`` uint8 (k, 3, c, c); metainfo ``meta_keys`` found in ``results``.
    """

    def __init__(self, meta_keys: tuple[str, ...] = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                                                       'scale_factor', 'grid', 'sample_idx')) -> None:
        super().__init__(meta_keys)

    def __call__(self, results: dict) -> dict:
        packed = super().__call__(results)
        packed['data_samples'].boxes = torch.from_numpy(results['boxes'])
        packed['data_samples'].crops = torch.from_numpy(np.ascontiguousarray(results['crops']))
        return packed
