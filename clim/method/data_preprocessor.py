"""Data preprocessor of the CLIP / CLIM models: device transfer, CLIP normalization, padding, stacking."""
from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub, print_log
from mmengine.model import BaseDataPreprocessor
from mmengine.structures import BaseDataElement

from mmdet.registry import MODELS

__all__ = ['CLIMDataPreprocessor', 'CLIP_MEAN', 'CLIP_STD', 'build_data_preprocessor']

# OpenAI CLIP's normalization, on the 0-255 scale of uint8 inputs.
CLIP_MEAN = (0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255)
CLIP_STD = (0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255)


@MODELS.register_module()
class CLIMDataPreprocessor(BaseDataPreprocessor):
    """Move a collated batch to the device, normalize with CLIP mean/std, pad and stack.

    Args:
        mean / std: per-channel statistics on the 0-255 scale (default: OpenAI CLIP's).
        pad_size: in evaluation (``training=False``), pad every image to this fixed square (region
            recognition: 1024); None, and always in training, pads to the batch's largest size
            (training batches come out of the pipeline at one size, so nothing is padded).
        pad_size_divisor: round the padded size up to a multiple of this (the patch size).
        pad_value: value of padded pixels *after* normalization (0 = the mean colour).

    Input: ``{'inputs': list of uint8 (3, H_i, W_i) or a (B, 3, H, W) tensor, 'data_samples': list}``.
    Output: ``{'inputs': float (B, 3, H, W) normalized, 'data_samples': list}`` (each sample's metainfo
    gains ``pad_shape``). In training, skipped unreadable images reported by the dataset are logged
    and counted in the ``train/skipped_images`` (and ``train/dropped_no_caption``) log scalars.
    """

    def __init__(self, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD,
                 pad_size: int | None = None, pad_size_divisor: int = 1, pad_value: float = 0.0,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking)
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(-1, 1, 1), False)
        self.pad_size = pad_size
        self.pad_size_divisor = int(pad_size_divisor)
        self.pad_value = float(pad_value)
        self._skipped_total = 0
        self._no_caption_total = 0

    def _target_size(self, sizes: list[tuple[int, int]], training: bool) -> tuple[int, int]:
        if self.pad_size is not None and not training:
            h = w = int(self.pad_size)
            too_big = [s for s in sizes if s[0] > h or s[1] > w]
            if too_big:
                raise ValueError(f'images {too_big[:3]} are larger than pad_size={self.pad_size}')
        else:
            h, w = max(s[0] for s in sizes), max(s[1] for s in sizes)
        d = self.pad_size_divisor
        return -(-h // d) * d, -(-w // d) * d

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs, samples = data['inputs'], data.get('data_samples')
        if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
            inputs = list(inputs)
        normed = [(img.float() - self.mean) / self.std for img in inputs]
        sizes = [tuple(img.shape[-2:]) for img in normed]
        th, tw = self._target_size(sizes, training)
        if any(s != (th, tw) for s in sizes):
            normed = [F.pad(img, (0, tw - img.shape[-1], 0, th - img.shape[-2]), value=self.pad_value)
                      for img in normed]
        batch = torch.stack(normed)
        if samples is not None:
            for s in samples:
                if isinstance(s, BaseDataElement):
                    s.set_metainfo(dict(pad_shape=(th, tw)))
            if training:
                self._report_skipped(samples)
        return dict(inputs=batch, data_samples=samples)

    def _report_skipped(self, samples: Sequence) -> None:
        skipped, no_caption = [], 0
        for s in samples:
            meta = s.metainfo if isinstance(s, BaseDataElement) else {}
            skipped += list(meta.get('skipped_images', ()))
            no_caption += int(meta.get('dropped_no_caption', 0))
        if skipped:
            self._skipped_total += len(skipped)
            print_log(f'data: skipped {len(skipped)} unreadable image(s) in this batch '
                      f'({self._skipped_total} so far on this rank): {", ".join(skipped[:5])}',
                      logger='current', level=logging.WARNING)
        self._no_caption_total += no_caption
        hub = MessageHub.get_current_instance()
        hub.update_scalar('train/skipped_images', self._skipped_total)
        if self._no_caption_total:
            hub.update_scalar('train/dropped_no_caption', self._no_caption_total)


def build_data_preprocessor(cfg: dict | torch.nn.Module | None) -> torch.nn.Module:
    """Build a data preprocessor config with mmdet's registry (default: ``CLIMDataPreprocessor()``)."""
    if isinstance(cfg, torch.nn.Module):
        return cfg
    return MODELS.build(dict(cfg) if cfg else dict(type='CLIMDataPreprocessor'))
