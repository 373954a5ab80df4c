"""DINOv2 (timm ``vit_*_patch14_dinov2``) as a detection backbone: its intermediate tokens at stride 16.

Weights: the original DINOv2 release file (``ckpt/dinov2_vitb14_pretrain.pth``, a state dict in
facebookresearch/dinov2 key names), converted by timm's own checkpoint filter when loaded. The model is
timm's; nothing here re-implements it.
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Sequence

import torch
from mmdet.registry import MODELS
from torch import Tensor

from .frozen_trunk import FrozenTrunkBackbone

__all__ = ['DINOv2Backbone']


@MODELS.register_module()
class DINOv2Backbone(FrozenTrunkBackbone):
    """A (by default frozen) timm DINOv2 ViT: the tokens after four blocks, as F-ViT's CLIP backbone.

    With ``token_grid='stride16'`` (default) the input is resized so that the patch-14 grid is the stride-16
    grid (H / 16, W / 16) of the input; with ``'patch'`` it runs unresized at stride 14 (see
    :class:`FrozenTrunkBackbone`). Follow it with :class:`ovdet.models.necks.SimplePyramid`.

    Args:
        model_name: timm model name (``'vit_base_patch14_dinov2'``).
        pretrained: weights file (original DINOv2 or timm key names) or a zoo name; None: random.
        out_indices: four 0-based block indices (negative: from the end).
        frozen: keep the ViT frozen and in eval mode.
        model_kwargs: passed to ``timm.create_model`` (e.g. a small ``embed_dim`` / ``depth`` for tests).
        token_grid: ``'stride16'`` or ``'patch'``.

    Shapes:
        forward: (B, 3, H, W), H and W multiples of the token stride s (16, or 14 with ``'patch'``) -> 4 maps
        (B, embed_dim, H / s, W / s).
    """

    trunk_name = 'vit'

    def __init__(self, model_name: str = 'vit_base_patch14_dinov2', pretrained: str | None = None,
                 out_indices: Sequence[int] = (3, 5, 7, 11), frozen: bool = True,
                 model_kwargs: dict | None = None, token_grid: str = 'stride16',
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg)
        import timm

        self.token_grid = token_grid
        kwargs = dict(dynamic_img_size=True, num_classes=0)
        kwargs.update(model_kwargs or {})
        overlay = None
        if pretrained:
            from clim.models.hub import find_entry, resolve_entry

            entry = find_entry(name=str(pretrained)) or find_entry(path=str(pretrained))
            path = str(resolve_entry(entry)) if entry is not None else str(pretrained)
            if not osp.isfile(path):
                raise FileNotFoundError(f"DINOv2 weights '{path}' not found. See ckpt/README.md.")
            overlay = dict(file=path, num_classes=0)
        self.vit = timm.create_model(model_name, pretrained=bool(pretrained), pretrained_cfg_overlay=overlay,
                                     **kwargs)
        self.pretrained = pretrained
        self._setup_trunk(len(self.vit.blocks), out_indices, self.vit.embed_dim, frozen)

    @property
    def patch_size(self) -> int:
        ps = self.vit.patch_embed.patch_size
        return int(ps[0] if isinstance(ps, (tuple, list)) else ps)

    def trunk_tokens(self, images: Tensor) -> list[Tensor]:
        """Token maps (B, embed_dim, H / s, W / s) after each of ``out_indices``."""
        images = self._to_token_grid(images, self.patch_size)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            maps = self.vit.forward_intermediates(images, indices=list(self.out_indices), output_fmt='NCHW',
                                                 intermediates_only=True)
        return list(maps)
