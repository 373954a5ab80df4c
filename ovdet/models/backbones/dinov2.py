"""DINOv2 (timm ``vit_*_patch14_dinov2``) as a detection backbone: intermediate tokens -> 4-level pyramid.

Weights: the original DINOv2 release file (``ckpt/dinov2_vitb14_pretrain.pth``, a state dict in
facebookresearch/dinov2 key names), converted by timm's own checkpoint filter when loaded. The model is
timm's; nothing here re-implements it.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

__all__ = ['DINOv2Backbone']


@MODELS.register_module()
class DINOv2Backbone(BaseModule):
    """A (by default frozen) timm DINOv2 ViT plus simple-pyramid adapters (as F-ViT's).

    The input is resized so that the patch-14 grid is the stride-16 grid (H / 16, W / 16) of the input,
    then the tokens after ``out_indices`` become maps at strides 4, 8, 16, 32 (two 2x transposed
    convs, one, identity, 2x max-pool).

    Args:
        model_name: timm model name (``'vit_base_patch14_dinov2'``).
        pretrained: weights file (original DINOv2 or timm key names) or a zoo name; None: random.
        out_indices: four 0-based block indices (negative: from the end).
        frozen: keep the ViT frozen and in eval mode (only the adapters train).
        model_kwargs: passed to ``timm.create_model`` (e.g. a small ``embed_dim`` / ``depth`` for tests).
        norm_cfg / act_cfg: between the two stride-4 transposed convs.

    Shapes:
        forward: (B, 3, H, W), H and W multiples of 32 -> 4 maps (B, embed_dim, H / s, W / s).
    """

    token_stride: int = 16

    def __init__(self, model_name: str = 'vit_base_patch14_dinov2', pretrained: str | None = None,
                 out_indices: Sequence[int] = (3, 5, 7, 11), frozen: bool = True,
                 model_kwargs: dict | None = None, norm_cfg: dict | None = None, act_cfg: dict | None = None,
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg)
        import timm

        kwargs = dict(dynamic_img_size=True, num_classes=0)
        kwargs.update(model_kwargs or {})
        overlay = None
        if pretrained:
            from clim.models.zoo import find_entry

            entry = find_entry(name=str(pretrained)) or find_entry(path=str(pretrained))
            path = str(entry.resolve()) if entry is not None else str(pretrained)
            import os.path as osp
            if not osp.isfile(path):
                raise FileNotFoundError(f"DINOv2 weights '{path}' not found. See ckpt/README.md.")
            overlay = dict(file=path, num_classes=0)
        self.vit = timm.create_model(model_name, pretrained=bool(pretrained), pretrained_cfg_overlay=overlay,
                                     **kwargs)
        self.pretrained = pretrained
        num_blocks = len(self.vit.blocks)
        ids = [i + num_blocks if i < 0 else i for i in out_indices]
        if len(ids) != 4 or any(not 0 <= i < num_blocks for i in ids) or sorted(ids) != ids:
            raise ValueError(f'out_indices must be 4 non-decreasing block ids of a {num_blocks}-block ViT, '
                             f'got {tuple(out_indices)}')
        self.out_indices = tuple(ids)
        self.frozen = frozen
        if frozen:
            self.vit.requires_grad_(False)
            self.vit.eval()
        width = self.vit.embed_dim
        self.out_channels = width
        norm_cfg = norm_cfg or dict(type='SyncBN', requires_grad=True)
        act_cfg = act_cfg or dict(type='GELU')
        self.adapters = nn.ModuleList([
            nn.Sequential(nn.ConvTranspose2d(width, width, 2, 2), build_norm_layer(norm_cfg, width)[1],
                          build_activation_layer(act_cfg), nn.ConvTranspose2d(width, width, 2, 2)),
            nn.ConvTranspose2d(width, width, 2, 2),
            nn.Identity(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        ])

    @property
    def patch_size(self) -> int:
        ps = self.vit.patch_embed.patch_size
        return int(ps[0] if isinstance(ps, (tuple, list)) else ps)

    def train(self, mode: bool = True) -> DINOv2Backbone:
        super().train(mode)
        if self.frozen:
            self.vit.eval()
        return self

    def init_weights(self) -> None:
        """Initialize the adapters only (the ViT weights are loaded at construction)."""
        vit = self._modules.pop('vit')
        try:
            super().init_weights()
        finally:
            rest = list(self._modules.items())
            self._modules.clear()
            self._modules.update([('vit', vit), *rest])

    def vit_maps(self, images: Tensor) -> list[Tensor]:
        """Token maps (B, embed_dim, H / 16, W / 16) after each of ``out_indices``."""
        h, w = images.shape[-2:]
        s, p = self.token_stride, self.patch_size
        if h % s or w % s:
            raise ValueError(f'input size {(h, w)} is not a multiple of {s}')
        if p != s:
            images = F.interpolate(images, size=(h // s * p, w // s * p), mode='bilinear', align_corners=False)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            maps = self.vit.forward_intermediates(images, indices=list(self.out_indices), output_fmt='NCHW',
                                                 intermediates_only=True)
        return list(maps)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        """(B, 3, H, W) -> 4 maps (B, embed_dim, H / s, W / s), s = 4, 8, 16, 32."""
        return tuple(a(m) for a, m in zip(self.adapters, self.vit_maps(images)))
