"""Dense CLIP features of a timm ViT image tower (open_clip ``TimmModel``: ``trunk`` + ``head``), e.g.
BiomedCLIP's ``vit_base_patch16_224``.

The same conventions as :mod:`clim.models.dense` for open_clip's own ViT: any input size (multiple of
the patch size, positional embeddings resized with :func:`~clim.models.dense.interpolate_pos_embed`),
CLIM's "v2" last block (value path only, no query-key attention), then the tower's final norm and
projection applied per location.

Shapes: ``B`` images, ``W`` trunk width, ``D`` joint embedding dim, ``h x w`` the patch grid.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .dense import interpolate_pos_embed

__all__ = ['timm_trunk', 'check_timm_vit', 'vit_blocks', 'timm_vit_embed', 'timm_v2_block', 'timm_vit_v2_tokens',
           'timm_tokens_to_dense', 'timm_vit_dense', 'timm_encode_image']


def timm_trunk(visual: nn.Module) -> nn.Module | None:
    """The timm model inside an open_clip ``TimmModel``; None for any other image tower."""
    from open_clip.timm_model import TimmModel

    return visual.trunk if isinstance(visual, TimmModel) else None


def check_timm_vit(visual: nn.Module) -> nn.Module:
    """The trunk of a class-token timm ViT tower, else raise (naming what is unsupported and why)."""
    from timm.layers import Attention
    from timm.models.vision_transformer import Block, VisionTransformer

    trunk = timm_trunk(visual)
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


def vit_blocks(visual: nn.Module) -> list[nn.Module]:
    """The transformer blocks of a ViT image tower, open_clip's (``transformer.resblocks``), a class-token
    timm trunk's or an EVA-02 trunk's (``trunk.blocks``), in order; raise for any other tower (e.g. a
    Modified ResNet)."""
    from timm.models.eva import Eva

    if isinstance(getattr(visual, 'trunk', None), Eva):  # EvaCLIPModel's visual: {'trunk': timm Eva}
        return list(visual.trunk.blocks)
    if timm_trunk(visual) is not None:
        return list(check_timm_vit(visual).blocks)
    transformer = getattr(visual, 'transformer', None)
    if transformer is None or not hasattr(transformer, 'resblocks'):
        raise NotImplementedError(f'{type(visual).__name__} is not a ViT image tower')
    return list(transformer.resblocks)


def timm_vit_embed(trunk: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """Patch-embed images of any size (multiple of the patch size).

    Args:
        trunk: a timm ``VisionTransformer`` (see :func:`check_timm_vit`).
        images: (B, 3, H, W) normalized images.

    Returns:
        ``(x, (h, w))``: x (B, 1 + h * w, W) after class token, positional embedding and norm_pre.
    """
    ph, pw = trunk.patch_embed.patch_size
    if images.shape[-2] % ph or images.shape[-1] % pw:
        raise ValueError(f'image size {tuple(images.shape[-2:])} is not a multiple of the patch size {(ph, pw)}')
    # The conv alone: timm's PatchEmbed insists on its configured image size.
    x = trunk.patch_embed.proj(images)
    h, w = x.shape[-2:]
    x = trunk.patch_embed.norm(x.flatten(2).transpose(1, 2))
    x = torch.cat([trunk.cls_token.to(x.dtype).expand(x.shape[0], -1, -1), x], dim=1)
    pos = interpolate_pos_embed(trunk.pos_embed[0], tuple(trunk.patch_embed.grid_size), (h, w))
    x = trunk.pos_drop(x + pos.to(x.dtype))
    x = trunk.norm_pre(trunk.patch_drop(x))
    return x, (int(h), int(w))


def _blocks(trunk: nn.Module, x: torch.Tensor, blocks: Sequence[nn.Module],
            keep: Sequence[int] = ()) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Run ``blocks`` (honouring the trunk's grad-checkpointing flag); ``{index: output}`` for ``keep``."""
    use_ckpt = bool(getattr(trunk, 'grad_checkpointing', False))
    kept: dict[int, torch.Tensor] = {}
    for i, block in enumerate(blocks):
        if use_ckpt and torch.is_grad_enabled() and x.requires_grad:
            x = checkpoint(block, x, use_reentrant=False)
        else:
            x = block(x)
        if i in keep:
            kept[i] = x
    return x, kept


def timm_v2_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A timm ``Block`` without query-key attention (every token attends only to itself).

    x = x + ls1(proj(norm(V(norm1(x))))); x = x + ls2(mlp(norm2(x))).

    Args:
        x: (B, T, W) tokens.

    Returns:
        (B, T, W).
    """
    attn = block.attn
    dim = attn.attn_dim
    y = block.norm1(x)
    bias = attn.qkv.bias[2 * dim:] if attn.qkv.bias is not None else None
    v = attn.norm(F.linear(y, attn.qkv.weight[2 * dim:], bias))
    x = x + block.ls1(attn.proj(v))
    return x + block.ls2(block.mlp(block.norm2(x)))


def timm_vit_v2_tokens(visual: nn.Module, images: torch.Tensor, block_ids: Sequence[int] = ()
                       ) -> tuple[list[torch.Tensor], torch.Tensor, tuple[int, int]]:
    """Patch tokens of the v2 forward, plus intermediate block outputs (see
    :func:`clim.models.dense.vit_v2_tokens`, same contract).

    Returns:
        ``(maps, final, (h, w))``: ``maps[i]`` (B, W, h, w) after block ``block_ids[i]``; ``final``
        (B, W, h, w) the v2 last-block patch tokens (before the final norm).
    """
    trunk = check_timm_vit(visual)
    *body, last = trunk.blocks
    try:  # range indexing: negative ids count from the end, out-of-range ones raise
        wanted = [range(len(body) + 1)[b] for b in block_ids]
    except IndexError:
        raise ValueError(f'block id out of range for a {len(body) + 1}-block ViT: {list(block_ids)}') from None
    x, (h, w) = timm_vit_embed(trunk, images)
    x, kept = _blocks(trunk, x, body, keep=wanted)
    patches = {i: t[:, 1:] for i, t in kept.items()}
    patches[len(body)] = timm_v2_block(last, x[:, 1:])  # tokens are independent here: class token dropped

    def to_map(t: torch.Tensor) -> torch.Tensor:
        return t.transpose(1, 2).reshape(t.shape[0], t.shape[-1], h, w).contiguous()

    return [to_map(patches[b]) for b in wanted], to_map(patches[len(body)]), (h, w)


def _head(visual: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Final norm, fc_norm and the open_clip projection head, per token: (..., W) -> (..., D)."""
    trunk = visual.trunk
    return visual.head(trunk.head(trunk.head_drop(trunk.fc_norm(trunk.norm(tokens)))))


def timm_tokens_to_dense(visual: nn.Module, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Final norm + projection per location.

    Args:
        tokens: (B, W, h, w) patch tokens.

    Returns:
        (B, D, h, w), L2-normalized over D when ``normalize``.
    """
    b, _, h, w = tokens.shape
    x = _head(visual, tokens.flatten(2).transpose(1, 2))
    if normalize:
        x = F.normalize(x, dim=-1)
    return x.transpose(1, 2).reshape(b, -1, h, w).contiguous()


def timm_vit_dense(visual: nn.Module, images: torch.Tensor, mode: str = 'v2', normalize: bool = True) -> torch.Tensor:
    """:func:`clim.models.dense.vit_dense` for a timm ViT tower: (B, 3, H, W) -> (B, D, H / p, W / p),
    ``mode`` ``'v2'`` (value-path last block) or ``'plain'`` (the ordinary one)."""
    if mode not in ('v2', 'plain'):
        raise ValueError(f"dense mode must be 'v2' or 'plain', got {mode!r}")
    if mode == 'v2':
        tokens = timm_vit_v2_tokens(visual, images)[1]
    else:
        trunk = check_timm_vit(visual)
        x, (h, w) = timm_vit_embed(trunk, images)
        x = _blocks(trunk, x, list(trunk.blocks))[0][:, 1:]
        tokens = x.transpose(1, 2).reshape(x.shape[0], x.shape[-1], h, w)
    return timm_tokens_to_dense(visual, tokens, normalize)


def timm_encode_image(visual: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The tower's image embedding at any input size (positional embeddings resized; equal to the
    upstream forward at the native size).

    Returns:
        (B, D), not normalized.
    """
    trunk = check_timm_vit(visual)
    x, _ = timm_vit_embed(trunk, images)
    x, _ = _blocks(trunk, x, list(trunk.blocks))
    return _head(visual, x[:, 0])
