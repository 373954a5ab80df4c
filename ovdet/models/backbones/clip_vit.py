"""A frozen CLIP ViT as a detection backbone: its intermediate tokens, and the CLIP dense map."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from mmdet.registry import MODELS
from torch import Tensor

from clim.models.factory import build_clip

from .frozen_trunk import FrozenTrunkBackbone

__all__ = ['CLIPViTBackbone']


@MODELS.register_module()
class CLIPViTBackbone(FrozenTrunkBackbone):
    """F-ViT backbone: the patch tokens of a frozen CLIP ViT after four blocks (the pyramid: the neck).

    The CLIP image tower (a :class:`clim.models.CLIPModel`, OpenAI weights or a CLIM export; or an
    :class:`~clim.models.HFTextCLIPModel` such as UniMed-CLIP (open_clip ViT) or BiomedCLIP (timm ViT),
    or a CLIM export of one) runs under ``no_grad`` at the detector's resolution (positional embeddings
    interpolated). The patch tokens after ``out_indices`` (the last block computed as CLIM's v2 block)
    are four maps at stride 16; :class:`ovdet.models.necks.SimplePyramid` makes strides 4-32 of them.
    The CLIP stays bit-identical through training (:class:`FrozenTrunkBackbone`).

    Patch sizes other than 16 (ViT-L/14), ``token_grid='stride16'`` (default): the input is resized so that
    the patch grid is the stride-16 grid (H / 16, W / 16) and every map and the dense map stay at stride 16.
    ``token_grid='patch'``: the input runs unresized and every map sits at the patch stride (the EVA F-ViT
    L/14 recipe; the RPN's anchor strides and the RoI extractors' ``featmap_strides`` follow, e.g. 3.5-28).

    Args:
        clip_cfg: ``CLIPModel`` config (``model_name`` / ``model_cfg``, ``pretrained``, ``quick_gelu``);
            built by :func:`clim.models.build_clip` (EVA-02, HF text towers and CLIM exports of either get
            their class from the weights; ``ZooModel`` / ``CLIPModel`` configs work too).
        out_indices: four non-decreasing 0-based block indices (negative count from the end), default
            (3, 5, 7, 11).
        token_grid: ``'stride16'`` or ``'patch'`` (see above and :class:`FrozenTrunkBackbone`).
        init_cfg: MMEngine init config (never reaches the CLIP).

    Shapes:
        forward: images (B, 3, H, W), H and W multiples of the token stride s (16, or the patch size with
            ``token_grid='patch'``) -> 4 maps (B, width, H / s, W / s).
        forward_with_dense: also the CLIP dense map (B, D, H / s, W / s), L2-normalized per location.
    """

    trunk_name = 'clip'

    def __init__(self, clip_cfg: dict, out_indices: Sequence[int] = (3, 5, 7, 11), token_grid: str = 'stride16',
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg)
        self.token_grid = token_grid
        self.clip = build_clip(clip_cfg)
        if not getattr(self.clip, 'is_vit', False):
            raise ValueError('CLIPViTBackbone needs a ViT CLIP image tower (open_clip ViT or class-token timm ViT)')
        self._setup_trunk(self.clip.num_blocks, out_indices, self.clip.vision_width, frozen=True)

    def _clip_tokens(self, images: Tensor) -> tuple[list[Tensor], Tensor]:
        images = self._to_token_grid(images, self.clip.stride)
        with torch.no_grad():
            maps, final = self.clip.vit_tokens(images, self.out_indices)
        return maps, final

    def trunk_tokens(self, images: Tensor) -> list[Tensor]:
        """The 4 token maps (B, width, H / s, W / s) after ``out_indices``."""
        return self._clip_tokens(images)[0]

    def forward_with_dense(self, images: Tensor) -> tuple[tuple[Tensor, ...], Tensor]:
        """Token maps and the CLIP dense map in one ViT pass.

        Returns:
            ``(maps, dense)``: the 4 token maps as :meth:`forward`, and dense (B, D, H / s, W / s):
            ln_post + proj of the v2 last-block tokens, L2-normalized per location.
        """
        maps, final = self._clip_tokens(images)
        with torch.no_grad():
            dense = self.clip.project_dense(final, normalize=True)
        return tuple(maps), dense
