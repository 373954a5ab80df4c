"""A timm ViT image tower inside open_clip's ``TimmModel`` (``trunk`` + projection ``head``; BiomedCLIP's
``vit_base_patch16_224``) as a :class:`~clim.models.towers.base.ViTImageTower`.

What the pieces compute, at any patch grid (h, w):

- tokens and blocks: as every timm trunk (:class:`~clim.models.towers.timm_trunk.TimmTrunkTower`): the
  patch-embed conv, its norm, class token first, positional embedding (resized as open_clip's ViT),
  ``norm_pre``; timm ``Block`` s honouring the trunk's ``grad_checkpointing``;
- v2 last block: x += ls1(proj(norm(V(norm1(x))))), x += ls2(mlp(norm2(x))) (no query-key attention);
- head: ``norm``, ``fc_norm``, the trunk's head, then open_clip's projection head, per token.

Shapes as in :mod:`clim.models.towers.base`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .timm_trunk import TimmTrunkTower

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


class TimmViTTower(TimmTrunkTower):
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
        super().__init__(visual, check_timm_vit(visual))

    @property
    def embed_dim(self) -> int:
        # open_clip's head is a Linear ('proj') or an Mlp ending in one; none: the trunk width.
        linears = [m for m in self.module.head.modules() if isinstance(m, nn.Linear)]
        return int(linears[-1].out_features) if linears else self.width

    @property
    def image_size(self) -> tuple[int, int]:
        h, w = self.trunk.patch_embed.img_size
        return int(h), int(w)

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

    def head_parameters(self) -> list[nn.Parameter]:
        t = self.trunk
        return [*t.norm.parameters(), *t.fc_norm.parameters(), *t.head.parameters(), *self.module.head.parameters()]
