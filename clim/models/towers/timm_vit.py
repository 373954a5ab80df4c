"""A timm ViT image tower inside open_clip's ``TimmModel`` (``trunk`` + projection ``head``; BiomedCLIP's
``vit_base_patch16_224``) as a :class:`~clim.models.towers.base.ViTImageTower`.

What the pieces compute, at any patch grid (h, w):

- tokens: the patch-embed conv (timm's ``PatchEmbed`` insists on its configured size, so the conv runs
  alone), its norm, class token first, positional embedding (resized as open_clip's ViT), ``norm_pre``;
- blocks: timm ``Block`` s, honouring the trunk's ``grad_checkpointing``;
- v2 last block: x += ls1(proj(norm(V(norm1(x))))), x += ls2(mlp(norm2(x))) (no query-key attention);
- head: ``norm``, ``fc_norm``, the trunk's head, then open_clip's projection head, per token.

Shapes as in :mod:`clim.models.towers.base`.
"""
from __future__ import annotations

from collections.abc import Collection

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .base import ViTImageTower, interpolate_pos_embed

__all__ = ['TimmViTTower', 'check_timm_vit']


def check_timm_vit(visual: nn.Module) -> nn.Module:
    """The trunk of an open_clip ``TimmModel`` holding a class-token timm ViT, else raise (naming what is
    unsupported and why)."""
    from open_clip.timm_model import TimmModel
    from timm.layers import Attention
    from timm.models.vision_transformer import Block, VisionTransformer

    trunk = visual.trunk if isinstance(visual, TimmModel) else None
    if not isinstance(trunk, VisionTransformer):
        raise NotImplementedError(f'dense features of a timm tower need a timm VisionTransformer trunk, got '
                                  f'{type(trunk).__name__}')
    if trunk.cls_token is None or trunk.reg_token is not None or trunk.no_embed_class or \
            trunk.attn_pool is not None or trunk.global_pool != 'token':
        raise NotImplementedError('dense features of a timm ViT need class-token pooling (no register tokens, '
                                  'no attention pool, pos_embed covering the class token)')
    last = trunk.blocks[-1]
    if not isinstance(last, Block) or not isinstance(last.attn, Attention) or last.attn.gate is not None:
        raise NotImplementedError(f'the v2 block needs a timm Block with standard Attention, got '
                                  f'{type(last).__name__}')
    return trunk


class TimmViTTower(ViTImageTower):
    """An open_clip ``TimmModel`` whose trunk is a class-token timm ``VisionTransformer`` (see the module
    docstring).

    Args:
        visual: the ``TimmModel`` (``clip.visual``), owned by the model.

    ``encode`` at the native size is the upstream forward; off it, the same path with resized positional
    embeddings.
    """

    family = 'timm ViT tower (e.g. BiomedCLIP)'
    upstream_encode_at_native = True

    def __init__(self, visual: nn.Module) -> None:
        self.trunk = check_timm_vit(visual)
        super().__init__(visual)

    # -- geometry ---------------------------------------------------------------------------------------
    @property
    def patch_size(self) -> int:
        return int(self.trunk.patch_embed.patch_size[0])

    @property
    def width(self) -> int:
        return int(self.trunk.embed_dim)

    @property
    def embed_dim(self) -> int:
        # open_clip's head is a Linear ('proj') or an Mlp ending in one; none: the trunk width.
        linears = [m for m in self.module.head.modules() if isinstance(m, nn.Linear)]
        return int(linears[-1].out_features) if linears else self.width

    @property
    def image_size(self) -> tuple[int, int]:
        h, w = self.trunk.patch_embed.img_size
        return int(h), int(w)

    @property
    def num_blocks(self) -> int:
        return len(self.trunk.blocks)

    # -- pieces -----------------------------------------------------------------------------------------
    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        grid = self.grid_of(images)
        t = self.trunk
        x = t.patch_embed.norm(t.patch_embed.proj(images).flatten(2).transpose(1, 2))
        x = torch.cat([t.cls_token.to(x.dtype).expand(x.shape[0], -1, -1), x], dim=1)
        pos = interpolate_pos_embed(t.pos_embed[0], tuple(t.patch_embed.grid_size), grid)
        x = t.pos_drop(x + pos.to(x.dtype))
        return t.norm_pre(t.patch_drop(x)), grid

    def run_blocks(self, x: torch.Tensor, grid: tuple[int, int], blocks: range,
                   keep: Collection[int] = ()) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        use_ckpt = bool(getattr(self.trunk, 'grad_checkpointing', False)) and torch.is_grad_enabled()
        kept: dict[int, torch.Tensor] = {}
        for i in blocks:
            block = self.trunk.blocks[i]
            x = checkpoint(block, x, use_reentrant=False) if use_ckpt and x.requires_grad else block(x)
            if i in keep:
                kept[i] = x
        return x, kept

    def v2_block(self, x: torch.Tensor) -> torch.Tensor:
        block = self.trunk.blocks[-1]
        attn = block.attn
        dim = attn.attn_dim
        bias = attn.qkv.bias[2 * dim:] if attn.qkv.bias is not None else None
        v = attn.norm(F.linear(block.norm1(x), attn.qkv.weight[2 * dim:], bias))
        x = x + block.ls1(attn.proj(v))
        return x + block.ls2(block.mlp(block.norm2(x)))

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        t = self.trunk
        return self.module.head(t.head(t.head_drop(t.fc_norm(t.norm(tokens)))))

    # -- training controls ------------------------------------------------------------------------------
    def param_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        """[patch embed + class token + norm_pre], [pos_embed], then one group per block."""
        t = self.trunk
        groups = [('stem', [*t.patch_embed.parameters(), t.cls_token, *t.norm_pre.parameters()]),
                  ('pos_embed', [t.pos_embed])]
        return groups + [(f'blocks.{i}', list(b.parameters())) for i, b in enumerate(t.blocks)]

    def head_parameters(self) -> list[nn.Parameter]:
        t = self.trunk
        return [*t.norm.parameters(), *t.fc_norm.parameters(), *t.head.parameters(), *self.module.head.parameters()]

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.module.set_grad_checkpointing(enable)
