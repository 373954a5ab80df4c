"""open_clip's own ViT image tower (``open_clip.transformer.VisionTransformer``: OpenAI CLIP, MetaCLIP,
UniMed-CLIP, CLIM exports) as a :class:`~clim.models.towers.base.ViTImageTower`.

What the pieces compute, at any patch grid (h, w):

- tokens: ``conv1`` patch embed, class token first, positional embedding (patch rows resized bicubic,
  align_corners=False, off the native grid), ``ln_pre``; no patch dropout;
- blocks: open_clip ``ResidualAttentionBlock`` s, honouring ``transformer.grad_checkpointing``;
- v2 last block: x += ls_1(out_proj(V(ln_1(x)))), x += ls_2(mlp(ln_2(x))) (no query-key attention);
- head: ``ln_post`` then ``@ proj`` per token;
- v1 (CLIM's mask attention pooling): the class token's query attends only to the patch tokens inside
  each region in the last block.

Shapes as in :mod:`clim.models.towers.base`.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock, VisionTransformer
from torch import nn
from torch.utils.checkpoint import checkpoint

from .base import ViTImageTower, interpolate_pos_embed

__all__ = ['OpenCLIPViTTower', 'value_only_attention']


def value_only_attention(block: ResidualAttentionBlock, y: torch.Tensor) -> torch.Tensor:
    """out_proj(V(y)) of an open_clip block: its attention output when every token attends only to itself.

    Args:
        block: an open_clip ``ResidualAttentionBlock`` (image or text transformer).
        y: (..., W) tokens after ``ln_1``.

    Returns:
        (..., W).
    """
    attn = block.attn
    if not isinstance(attn, nn.MultiheadAttention) or not attn._qkv_same_embed_dim:
        raise NotImplementedError('the v2 block needs a standard nn.MultiheadAttention (packed in_proj)')
    width = attn.embed_dim
    v_weight = attn.in_proj_weight[2 * width:]
    v_bias = attn.in_proj_bias[2 * width:] if attn.in_proj_bias is not None else None
    return attn.out_proj(F.linear(y, v_weight, v_bias))


def _check_class_token(visual: VisionTransformer) -> None:
    """Token paths (dense maps, F-ViT taps, off-size embedding, v1) read the class token: refuse other poolers.
    The upstream forward at the native size works for any pooling, so this is checked per use, not at build."""
    if getattr(visual, 'attn_pool', None) is not None or visual.pool_type != 'tok':
        raise NotImplementedError('dense features need a class-token ViT (no attentional pooler, '
                                  'pool_type="tok")')


def _last_block(blocks: nn.ModuleList) -> ResidualAttentionBlock:
    block = blocks[-1]
    if not isinstance(block, ResidualAttentionBlock):
        raise NotImplementedError(f'the v2 / v1 last block needs an open_clip ResidualAttentionBlock, got '
                                  f'{type(block).__name__}')
    return block


class OpenCLIPViTTower(ViTImageTower):
    """An open_clip ``VisionTransformer`` with class-token pooling (see the module docstring).

    Args:
        visual: the tower module (``clip.visual``), owned by the model.

    ``encode`` at the native size is the upstream forward; off it, the same path with resized positional
    embeddings.
    """

    family = 'open_clip ViT'
    upstream_encode_at_native = True

    def __init__(self, visual: nn.Module) -> None:
        if not isinstance(visual, VisionTransformer):
            raise TypeError(f'expected an open_clip VisionTransformer image tower, got {type(visual).__name__}')
        super().__init__(visual)
        self.blocks = visual.transformer.resblocks

    # -- geometry ---------------------------------------------------------------------------------------
    @property
    def patch_size(self) -> int:
        return int(self.module.patch_size[0])

    @property
    def width(self) -> int:
        return int(self.module.transformer.width)

    @property
    def embed_dim(self) -> int:
        return int(self.module.output_dim)

    @property
    def image_size(self) -> tuple[int, int]:
        size = self.module.image_size
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    # -- pieces -----------------------------------------------------------------------------------------
    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        _check_class_token(self.module)
        grid = self.grid_of(images)
        v = self.module
        x = v.conv1(images).flatten(2).transpose(1, 2)
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        x = x + interpolate_pos_embed(v.positional_embedding, tuple(v.grid_size), grid).to(x.dtype)
        return v.ln_pre(x), grid

    def run_blocks(self, x: torch.Tensor, grid: tuple[int, int], blocks: range,
                   keep: Collection[int] = ()) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        use_ckpt = bool(getattr(self.module.transformer, 'grad_checkpointing', False)) and torch.is_grad_enabled()
        kept: dict[int, torch.Tensor] = {}
        for i in blocks:
            block = self.blocks[i]
            x = checkpoint(block, x, use_reentrant=False) if use_ckpt and x.requires_grad else block(x)
            if i in keep:
                kept[i] = x
        return x, kept

    def v2_block(self, x: torch.Tensor) -> torch.Tensor:
        block = _last_block(self.blocks)
        x = x + block.ls_1(value_only_attention(block, block.ln_1(x)))
        return x + block.ls_2(block.mlp(block.ln_2(x)))

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.module.ln_post(tokens)
        proj = self.module.proj
        return x @ proj.to(x.dtype) if proj is not None else x

    def mask_attention_pool(self, images: torch.Tensor, masks: Sequence[torch.Tensor],
                            normalize: bool = True) -> torch.Tensor:
        """CLIM's "v1" region features (a region with no cell set attends to every patch token); see
        :meth:`ImageTower.mask_attention_pool`."""
        if len(masks) != images.shape[0]:
            raise ValueError(f'got {len(masks)} mask lists for {images.shape[0]} images')
        last = _last_block(self.blocks)
        x, (h, w) = self.embed(images)
        x, _ = self.run_blocks(x, (h, w), range(self.num_blocks - 1))
        attn = last.attn
        width, heads = attn.embed_dim, attn.num_heads
        head_dim = width // heads
        q, k, v = F.linear(last.ln_1(x), attn.in_proj_weight, attn.in_proj_bias).split(width, dim=-1)
        outs = []
        for i, m in enumerate(masks):
            if m.numel() == 0:
                continue
            if tuple(m.shape[-2:]) != (h, w):
                raise ValueError(f'masks of image {i} are {tuple(m.shape[-2:])}, the patch grid is {(h, w)}')
            m = m.reshape(m.shape[0], -1).bool().to(x.device)
            m = torch.where(m.any(dim=1, keepdim=True), m, torch.ones_like(m))
            qi = q[i, 0].view(heads, head_dim)                                   # class-token query
            ki = k[i, 1:].view(-1, heads, head_dim).transpose(0, 1)              # (heads, N, hd)
            vi = v[i, 1:].view(-1, heads, head_dim).transpose(0, 1)
            logits = torch.einsum('hd,hnd->hn', qi, ki) * head_dim ** -0.5       # (heads, N)
            logits = logits.unsqueeze(0).masked_fill(~m.unsqueeze(1), float('-inf'))
            probs = logits.float().softmax(dim=-1).to(vi.dtype)                  # (n_i, heads, N)
            ctx = torch.einsum('khn,hnd->khd', probs, vi).reshape(m.shape[0], width)
            tok = x[i, 0].unsqueeze(0) + last.ls_1(attn.out_proj(ctx))
            outs.append(tok + last.ls_2(last.mlp(last.ln_2(tok))))
        if not outs:
            return x.new_zeros(0, self.embed_dim)
        tok = self.head(torch.cat(outs))
        return F.normalize(tok, dim=-1) if normalize else tok

    # -- training controls ------------------------------------------------------------------------------
    def param_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        """[conv1 + class_embedding + ln_pre], [positional_embedding], then one group per block."""
        v = self.module
        groups = [('stem', [v.conv1.weight, v.class_embedding, *v.ln_pre.parameters()]),
                  ('pos_embed', [v.positional_embedding])]
        return groups + [(f'blocks.{i}', list(b.parameters())) for i, b in enumerate(self.blocks)]

    def head_parameters(self) -> list[nn.Parameter]:
        v = self.module
        return [*v.ln_post.parameters(), *([v.proj] if v.proj is not None else [])]

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.module.set_grad_checkpointing(enable)
