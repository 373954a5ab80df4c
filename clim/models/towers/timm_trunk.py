"""What the two timm-trunk families (:mod:`.timm_vit`: ``VisionTransformer`` in open_clip's ``TimmModel``;
:mod:`.eva`: EVA-02's ``Eva``) share: timm's attribute names for the patch embed, class token, absolute
positional embedding, blocks and pre-norm, so token embedding, running blocks, geometry and the locking groups
are written once here. Shapes as in :mod:`clim.models.towers.base`."""
from __future__ import annotations

from collections.abc import Collection
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .base import ViTImageTower, interpolate_pos_embed

__all__ = ['TimmTrunkTower']


class TimmTrunkTower(ViTImageTower):
    """A class-token ViT whose trunk uses timm's names (``patch_embed``, ``cls_token``, ``pos_embed``,
    ``pos_drop``, ``norm_pre``, ``blocks``, ``grad_checkpointing``).

    Args:
        module: the module the model owns (``TimmModel`` or the ``Eva`` trunk itself).
        trunk: the timm trunk inside it.

    Families add :meth:`v2_block`, :meth:`head`, :meth:`head_parameters`, ``embed_dim`` / ``image_size`` and,
    where blocks need more than the tokens (EVA's rotary table), :meth:`block_kwargs`.
    """

    def __init__(self, module: nn.Module, trunk: nn.Module) -> None:
        super().__init__(module)
        self.trunk = trunk

    @property
    def patch_size(self) -> int:
        return int(self.trunk.patch_embed.patch_size[0])

    @property
    def width(self) -> int:
        return int(self.trunk.embed_dim)

    @property
    def num_blocks(self) -> int:
        return len(self.trunk.blocks)

    @property
    def pos_embed_grid(self) -> tuple[int, int]:
        """The grid the positional embedding was trained for."""
        return tuple(int(g) for g in self.trunk.patch_embed.grid_size)

    def block_kwargs(self, grid: tuple[int, int], device: torch.device) -> dict[str, Any]:
        """Extra keyword arguments every block gets at patch grid ``grid`` (none for a plain ViT)."""
        return {}

    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        grid = self.grid_of(images)
        t = self.trunk
        # The conv alone: timm's PatchEmbed insists on its configured image size.
        x = t.patch_embed.norm(t.patch_embed.proj(images).flatten(2).transpose(1, 2))
        x = torch.cat([t.cls_token.to(x.dtype).expand(x.shape[0], -1, -1), x], dim=1)
        pos = interpolate_pos_embed(t.pos_embed[0], self.pos_embed_grid, grid)
        x = t.pos_drop(x + pos.to(x.dtype))
        return t.norm_pre(x), grid

    def run_blocks(self, x: torch.Tensor, grid: tuple[int, int], blocks: range,
                   keep: Collection[int] = ()) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        extra = self.block_kwargs(grid, x.device)
        use_ckpt = bool(getattr(self.trunk, 'grad_checkpointing', False)) and torch.is_grad_enabled()
        kept: dict[int, torch.Tensor] = {}
        for i in blocks:
            block = partial(self.trunk.blocks[i], **extra)
            x = checkpoint(block, x, use_reentrant=False) if use_ckpt and x.requires_grad else block(x)
            if i in keep:
                kept[i] = x
        return x, kept

    def param_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        """[patch embed + class token + norm_pre], [pos_embed], then one group per block (CLIM's ViT order)."""
        t = self.trunk
        groups = [('stem', [*t.patch_embed.parameters(), t.cls_token, *t.norm_pre.parameters()]),
                  ('pos_embed', [t.pos_embed])]
        return groups + [(f'blocks.{i}', list(b.parameters())) for i, b in enumerate(t.blocks)]

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.trunk.set_grad_checkpointing(enable)
