"""Plain CLIP contrastive pre-training (both towers train), with CLIM's loss and data path."""
from __future__ import annotations

import torch

from mmdet.registry import MODELS

from .base import ContrastiveCLIPBase

__all__ = ['CLIPContrastive']


@MODELS.register_module()
class CLIPContrastive(ContrastiveCLIPBase):
    """Ordinary image-text InfoNCE on single images; every CLIP weight trains (``lock_text=False``).

    Used to pre-train a small CLIP from scratch (e.g. on generated captions), and as the baseline step
    of the clim-step benchmark.

    Args:
        clip: ``CLIPModel`` config.
        lock_text: freeze the text tower (then only the image tower and logit_scale train).
        contrast_weight / grad_checkpointing / region_eval / data_preprocessor: see
            :class:`~clim.method.base.ContrastiveCLIPBase`.

    Inputs: ``inputs`` (B, 3, S, S) normalized; ``data_samples`` with ``text`` tokens (L,).
    """

    def __init__(self, clip: dict, lock_text: bool = False, contrast_weight: float = 1.0,
                 grad_checkpointing: bool = False, region_eval: dict | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(clip=clip, contrast_weight=contrast_weight, grad_checkpointing=grad_checkpointing,
                         region_eval=region_eval, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.lock_text = lock_text
        if lock_text:
            self.clip.lock_text_tower()
            self.train(self.training)  # a frozen HF text tower goes to eval mode (ContrastiveCLIPBase.train)

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_image(images, normalize=True)

    def text_features(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.lock_text:
            with torch.no_grad():
                return self.clip.encode_text(tokens, normalize=True)
        return self.clip.encode_text(tokens, normalize=True)
