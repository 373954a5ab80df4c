"""Region recognition with CLIPSeg: a text-prompted dense baseline next to the CLIP models.

Per image, CLIPSeg predicts one mask-logit map per class name; each ground-truth region is scored per
class by the mean (or max) logit inside its box (and inside its mask), and the classes are ranked by
that score. The predictions (``pred_{box,mask}_topk``) are what :class:`RegionRecognitionMetric` reads,
so the mAcc is directly comparable with :class:`RegionRecognition` on the same data.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from mmdet.registry import MODELS

from ..models import dense as D

__all__ = ['CLIPSegRegionRecognition', 'pool_logits']


def pool_logits(logits: torch.Tensor, masks: torch.Tensor, reduce: str = 'mean') -> torch.Tensor:
    """Per-region class scores from class logit maps.

    Args:
        logits: (C, h, w) one map per class.
        masks: (n, hm, wm) bool regions; other resolutions than (h, w) are resampled (nearest).
        reduce: ``'mean'`` or ``'max'`` of each map inside each region; an empty region scores 0.

    Returns:
        (n, C) float32.
    """
    if reduce not in ('mean', 'max'):
        raise ValueError(f"reduce must be 'mean' or 'max', got {reduce!r}")
    h, w = logits.shape[-2:]
    if masks.numel() == 0:
        return logits.new_zeros(0, logits.shape[0], dtype=torch.float32)
    if tuple(masks.shape[-2:]) != (h, w):
        masks = F.interpolate(masks[:, None].float(), size=(h, w), mode='nearest')[:, 0]
    if reduce == 'mean':
        return D.pool_masks(logits[None], [masks], normalize=False)
    masks = masks.bool().flatten(1)                                          # (n, h*w)
    scores = logits.float().flatten(1)[None].masked_fill(~masks[:, None], float('-inf')).amax(dim=-1)   # (n, C)
    return torch.where(masks.any(dim=1, keepdim=True), scores, torch.zeros_like(scores))


@MODELS.register_module()
class CLIPSegRegionRecognition(BaseModel):
    """Region recognition of a CLIPSeg model (``tools/test.py``; same data and metric as
    :class:`RegionRecognition`).

    Args:
        clipseg: a :class:`~clim.models.CLIPSegModel` config (e.g. ``dict(type='ZooModel',
            name='clipseg-rd64-refined')``).
        prompt: template with one ``{}`` for the class name (CLIPSeg was trained on short phrases).
        reduce: ``'mean'`` or ``'max'`` mask logit inside a region.
        with_boxes / with_masks: which regions to score.
        map_stride: input pixels per cell of the logit map the regions are pooled on.
        mask_stride: input pixels per cell of ``gt_masks`` (``PackRegionInputs``' ``mask_stride``).
        topk: class indices kept per region.
        data_preprocessor: defaults to ``CLIMDataPreprocessor`` padding to a multiple of 16; its
            mean / std are undone before CLIPSeg's own preprocessing.

    ``forward(inputs (B, 3, H, W), data_samples, mode='predict')`` -> samples with
    ``pred_{box,mask}_topk`` (n, k); ``mode='tensor'`` -> (B, C, H / map_stride, W / map_stride) logits.
    """

    def __init__(self, clipseg: dict, prompt: str = '{}', reduce: str = 'mean', with_boxes: bool = True,
                 with_masks: bool = True, map_stride: int = 4, mask_stride: int = 16, topk: int = 5,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        from ..method.data_preprocessor import build_data_preprocessor
        super().__init__(data_preprocessor=build_data_preprocessor(
            data_preprocessor or dict(type='CLIMDataPreprocessor', pad_size_divisor=16)), init_cfg=init_cfg)
        if reduce not in ('mean', 'max'):
            raise ValueError(f"reduce must be 'mean' or 'max', got {reduce!r}")
        self.clipseg = MODELS.build(clipseg)
        self.prompt, self.reduce = prompt, reduce
        self.with_boxes, self.with_masks = with_boxes, with_masks
        self.map_stride, self.mask_stride, self.topk = int(map_stride), int(mask_stride), int(topk)
        self._cache: dict[tuple[str, ...], torch.Tensor] = {}

    def _conditional(self, classes: Sequence[str]) -> torch.Tensor:
        """(C, P) CLIPSeg prompt embeddings of the class names, cached per class list."""
        key = tuple(classes)
        if key not in self._cache:
            self._cache = {key: self.clipseg.prompt_embeddings([self.prompt.format(c) for c in key])}
        return self._cache[key]

    def class_logits(self, inputs: torch.Tensor, data_samples: Sequence[BaseDataElement]) -> torch.Tensor:
        """(B, C, H / map_stride, W / map_stride) logit maps over the padded batch; each image's maps cover
        its unpadded extent (``img_shape``), zeros elsewhere."""
        classes = data_samples[0].metainfo.get('classes')
        if classes is None:
            raise ValueError('region recognition needs the class names in the samples\' metainfo ("classes")')
        cond = self._conditional(classes)
        pre = self.data_preprocessor
        pixels = inputs.float() * pre.std + pre.mean                          # back to 0-255 pixel values
        s = self.map_stride
        out = inputs.new_zeros(len(data_samples), len(classes), -(-inputs.shape[-2] // s), -(-inputs.shape[-1] // s))
        for i, sample in enumerate(data_samples):
            h, w = sample.metainfo.get('img_shape', inputs.shape[-2:])
            logits = self.clipseg.segment(self.clipseg.preprocess(pixels[i:i + 1, :, :h, :w]), conditional=cond)
            hs, ws = -(-h // s), -(-w // s)
            out[i, :, :hs, :ws] = F.interpolate(logits, size=(hs, ws), mode='bilinear', align_corners=False)[0]
        return out

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, data_samples: Sequence[BaseDataElement]) -> list:
        """Score every ground-truth region; adds ``pred_box_topk`` / ``pred_mask_topk`` (n, k) (CPU)."""
        logits = self.class_logits(inputs, data_samples)
        k = min(self.topk, logits.shape[1])
        grid = logits.shape[-2:]
        for i, sample in enumerate(data_samples):
            if self.with_boxes:
                boxes = sample.gt_bboxes.to(inputs.device).float()
                cells = D.boxes_to_cell_masks([boxes], grid, normalized=False, stride=self.map_stride)[0]
                scores = pool_logits(logits[i], cells, self.reduce)
                sample.set_field(scores.topk(k, dim=1).indices.cpu(), 'pred_box_topk')
            if self.with_masks:
                masks = sample.gt_masks.to(inputs.device).bool()
                # gt masks cover the unpadded image on the mask_stride grid: place them on the padded grid.
                full = (inputs.shape[-2] // self.mask_stride, inputs.shape[-1] // self.mask_stride)
                masks = F.pad(masks, (0, full[1] - masks.shape[-1], 0, full[0] - masks.shape[-2]))
                scores = pool_logits(logits[i], masks, self.reduce)
                sample.set_field(scores.topk(k, dim=1).indices.cpu(), 'pred_mask_topk')
        return list(data_samples)

    def forward(self, inputs: torch.Tensor, data_samples: list | None = None, mode: str = 'predict'):
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.class_logits(inputs, data_samples)
        raise ValueError(f'CLIPSegRegionRecognition only evaluates (mode "predict" / "tensor"), got {mode!r}')
