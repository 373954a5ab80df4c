"""CLIM: region-level contrastive learning on image mosaics (Wu et al., AAAI 2024)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from mmdet.registry import MODELS

from .base import ContrastiveCLIPBase
from .mosaic import build_mosaics, mosaic_boxes, plan_mosaics
from .text_key import TEXT_FORWARDS

__all__ = ['CLIM']


@MODELS.register_module()
class CLIM(ContrastiveCLIPBase):
    """CLIM refinement of a CLIP image encoder.

    Per rank: the batch of B images (all S x S) is split into n x n mosaics (``mosaic_choices``,
    one group = sum(n^2) images; leftovers stay single); each mosaic is resized to
    ``train_image_size`` and its tiles' pseudo boxes are pooled from the dense map; single images
    take the ordinary image forward. The region/image features, in batch order, are contrasted with
    the frozen text features of the captions (symmetric InfoNCE, gathered across ranks).

    Args:
        clip: ``CLIPModel`` config.
        mosaic_choices: grid sizes n (reference: [2, 3, 4]); B must be >= sum(n^2).
        train_image_size: side every mosaic is resized to before the dense forward (reference 1024).
        extraction_mode: ``'v2'`` (dense map + RoIAlign, default) or ``'v1'`` (mask attention pooling).
        contrast_weight: loss weight.
        unlocked_groups: trailing image-tower groups left trainable (reference 6 = blocks 6-11 of
            ViT-B/16); ln_post / proj and the whole text tower stay frozen; logit_scale trains.
        text_forward: ``'trimmed'`` (default): the frozen caption forward stops at the batch's longest
            end-of-text token, the same function at a fraction of the cost (rounding-level differences,
            ~1e-7); ``'full'``: all context positions, as open_clip / the reference.
        grad_checkpointing / fold_frozen_attention / region_eval / data_preprocessor: see
            :class:`ContrastiveCLIPBase`.

    Inputs: ``inputs`` (B, 3, S, S) normalized; ``data_samples`` with ``text`` tokens (L,), or with
    precomputed ``text_features`` (D,) (``AddCaptionFeatures``; then no text forward runs).
    """

    def __init__(self, clip: dict, mosaic_choices: Sequence[int] = (2, 3, 4),
                 train_image_size: int | None = 1024, extraction_mode: str = 'v2',
                 contrast_weight: float = 1.0, unlocked_groups: int = 6, text_forward: str = 'trimmed',
                 grad_checkpointing: bool = False, region_eval: dict | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None,
                 fold_frozen_attention: bool = True) -> None:
        if extraction_mode not in ('v1', 'v2'):
            raise ValueError(f"extraction_mode must be 'v1' or 'v2', got {extraction_mode!r}")
        super().__init__(clip=clip, contrast_weight=contrast_weight, grad_checkpointing=grad_checkpointing,
                         region_eval=region_eval, data_preprocessor=data_preprocessor, init_cfg=init_cfg,
                         fold_frozen_attention=fold_frozen_attention)
        self.mosaic_choices = tuple(int(n) for n in mosaic_choices)
        self.train_image_size = None if train_image_size is None else int(train_image_size)
        if self.train_image_size is not None and self.train_image_size % self.clip.stride:
            raise ValueError(f'train_image_size {self.train_image_size} must be a multiple of the patch size '
                             f'{self.clip.stride}')
        self.extraction_mode = extraction_mode
        if text_forward not in TEXT_FORWARDS:
            raise ValueError(f'text_forward must be one of {TEXT_FORWARDS}, got {text_forward!r}')
        self.text_forward = text_forward
        self.unlocked_groups = int(unlocked_groups)
        self.clip.lock_image_tower(self.unlocked_groups)
        self.clip.lock_text_tower()
        self.train(self.training)  # a frozen HF text tower goes to eval mode (see ContrastiveCLIPBase.train)

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, D): region features of the mosaics' tiles followed by single-image features (batch order)."""
        plan = plan_mosaics(images.shape[0], self.mosaic_choices)
        mosaics, boxes = [], []
        for g in plan.groups:
            if g.count:
                mosaics.append(build_mosaics(images[g.start:g.stop], g.n, self.train_image_size))
                boxes += mosaic_boxes(g.n, g.count, device=images.device)
        feats = []
        if self.train_image_size is not None:
            # Same-size mosaics: one dense forward for all of them.
            feats.append(self.clip.region_features(torch.cat(mosaics), boxes, normalized=True,
                                                   mode=self.extraction_mode).float())
        else:
            start = 0
            for m in mosaics:
                feats.append(self.clip.region_features(m, boxes[start:start + len(m)], normalized=True,
                                                       mode=self.extraction_mode).float())
                start += len(m)
        if plan.num_singles:
            feats.append(self.clip.encode_image(images[plan.single_start:], normalize=True).float())
        return torch.cat(feats)

    def text_features(self, tokens: torch.Tensor) -> torch.Tensor:
        # The text tower is frozen: no graph, no activations kept.
        with torch.no_grad():
            if self.text_forward == 'trimmed':
                return self.clip.encode_text_trimmed(tokens, normalize=True)
            return self.clip.encode_text(tokens, normalize=True)
