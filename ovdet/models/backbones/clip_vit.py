"""A frozen CLIP ViT as a detection backbone: intermediate tokens -> a 4-level feature pyramid."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from clim.models.timm_dense import vit_blocks
from clim.models.zoo import clip_cfg_for

__all__ = ['CLIPViTBackbone']


@MODELS.register_module()
class CLIPViTBackbone(BaseModule):
    """F-ViT backbone: a frozen CLIP ViT plus trainable pyramid adapters.

    The CLIP image tower (a :class:`clim.models.CLIPModel`, OpenAI weights or a CLIM export; or an
    :class:`~clim.models.HFTextCLIPModel` such as UniMed-CLIP (open_clip ViT) or BiomedCLIP (timm ViT),
    or a CLIM export of one) runs under ``no_grad`` at the detector's resolution (positional embeddings
    interpolated). The patch tokens after ``out_indices`` (the last block computed as CLIM's v2 block)
    are four maps at stride 16, adapted to strides 4, 8, 16, 32: two 2x transposed convs with norm +
    GELU between, one 2x transposed conv, identity, 2x max-pool. Only the adapters have trainable parameters.

    The CLIP part stays bit-identical through training: its parameters have ``requires_grad=False``
    (and :class:`TrainableParamsOptimWrapperConstructor` keeps them out of the optimizer), ``train()``
    keeps it in eval mode, and :meth:`init_weights` never touches it.

    Patch sizes other than 16 (ViT-L/14): the input is resized so that the patch grid is the
    stride-16 grid (H / 16, W / 16) and every map and the dense map stay at stride 16.

    Args:
        clip_cfg: ``CLIPModel`` config (``model_name`` / ``model_cfg``, ``pretrained``, ``quick_gelu``);
            ``type`` defaults to ``'CLIPModel'``; ``ZooModel`` / ``HFTextCLIPModel`` configs work too. A
            ``CLIPModel`` config whose ``pretrained`` is a CLIM export of an ``HFTextCLIPModel`` builds that
            class (:func:`clim.models.zoo.clip_cfg_for`).
        out_indices: four non-decreasing 0-based block indices (negative count from the end), default
            (3, 5, 7, 11).
        norm_cfg: norm between the two stride-4 transposed convs.
        act_cfg: activation there (GELU).
        init_cfg: applies to the adapters only.

    Shapes:
        forward: images (B, 3, H, W), H and W multiples of 16 (32 for an even stride-32 level) ->
        4 maps (B, width, H / s, W / s) for s = 4, 8, 16, 32.
        forward_with_dense: also the CLIP dense map (B, D, H / 16, W / 16), L2-normalized per location.
    """

    strides: tuple[int, ...] = (4, 8, 16, 32)
    token_stride: int = 16

    def __init__(self, clip_cfg: dict, out_indices: Sequence[int] = (3, 5, 7, 11),
                 norm_cfg: dict | None = None, act_cfg: dict | None = None,
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg)
        clip_cfg = dict(clip_cfg)
        clip_cfg.setdefault('type', 'CLIPModel')
        self.clip = MODELS.build(clip_cfg_for(clip_cfg))
        if not getattr(self.clip, 'is_vit', False):
            raise ValueError('CLIPViTBackbone needs a ViT CLIP image tower (open_clip ViT or class-token timm ViT)')
        # open_clip's transformer.resblocks or a timm trunk's blocks (BiomedCLIP).
        num_blocks = len(vit_blocks(self.clip.visual))
        ids = [i + num_blocks if i < 0 else i for i in out_indices]
        # Repeats are allowed (shallow test models); each level still gets its own adapter.
        if len(ids) != 4 or any(not 0 <= i < num_blocks for i in ids) or sorted(ids) != ids:
            raise ValueError(f'out_indices must be 4 non-decreasing block ids of a {num_blocks}-block ViT, '
                             f'got {tuple(out_indices)}')
        self.out_indices = tuple(ids)
        self.clip.requires_grad_(False)
        self.clip.eval()

        width = self.clip.vision_width
        self.out_channels = width
        norm_cfg = norm_cfg or dict(type='SyncBN', requires_grad=True)
        act_cfg = act_cfg or dict(type='GELU')
        self.adapters = nn.ModuleList([
            nn.Sequential(
                nn.ConvTranspose2d(width, width, kernel_size=2, stride=2),
                build_norm_layer(norm_cfg, width)[1],
                build_activation_layer(act_cfg),
                nn.ConvTranspose2d(width, width, kernel_size=2, stride=2)),
            nn.ConvTranspose2d(width, width, kernel_size=2, stride=2),
            nn.Identity(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        ])

    # ------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> CLIPViTBackbone:
        """Set the adapters' mode; the CLIP part always stays in eval mode."""
        super().train(mode)
        self.clip.eval()
        return self

    def init_weights(self) -> None:
        """Initialize the adapters; the CLIP weights (loaded at construction) are left alone."""
        # BaseModule.init_weights walks every submodule (a layer-typed init_cfg would hit CLIP's
        # convs / linears): take CLIP out of the tree while it runs.
        clip = self._modules.pop('clip')
        try:
            super().init_weights()
        finally:
            rest = list(self._modules.items())
            self._modules.clear()
            self._modules.update([('clip', clip), *rest])

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The adapters' parameters (the only ones that train)."""
        return [p for p in self.adapters.parameters() if p.requires_grad]

    # ------------------------------------------------------------------------------------------
    def _clip_tokens(self, images: Tensor) -> tuple[list[Tensor], Tensor]:
        h, w = images.shape[-2:]
        s = self.token_stride
        if h % s or w % s:
            raise ValueError(f'input size {(h, w)} is not a multiple of {s}; pad the batch '
                             f'(data_preprocessor.pad_size_divisor=32)')
        patch = self.clip.stride
        if patch != s:
            # Map the patch grid onto the stride-16 grid so every level keeps its nominal stride.
            images = F.interpolate(images, size=(h // s * patch, w // s * patch), mode='bilinear',
                                   align_corners=False)
        with torch.no_grad():
            maps, final = self.clip.vit_tokens(images, self.out_indices)
        return maps, final

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        """(B, 3, H, W) normalized images -> 4 maps (B, width, H / s, W / s), s = 4, 8, 16, 32."""
        maps, _ = self._clip_tokens(images)
        return tuple(adapter(m) for adapter, m in zip(self.adapters, maps))

    def forward_with_dense(self, images: Tensor) -> tuple[tuple[Tensor, ...], Tensor]:
        """Pyramid and the CLIP dense map in one ViT pass.

        Returns:
            ``(maps, dense)``: the 4 pyramid maps as :meth:`forward`, and dense (B, D, H / 16, W / 16):
            ln_post + proj of the v2 last-block tokens, L2-normalized per location.
        """
        maps, final = self._clip_tokens(images)
        with torch.no_grad():
            dense = self.clip.project_dense(final, normalize=True)
        return tuple(adapter(m) for adapter, m in zip(self.adapters, maps)), dense
