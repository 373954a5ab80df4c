"""Dense (per-location) CLIP image features and pooling them over boxes and masks.

Pure functions on upstream open_clip modules (``open_clip.transformer.VisionTransformer`` and
``open_clip.modified_resnet.ModifiedResNet``); :class:`clim.models.clip.CLIPModel` wraps them.

Shapes: ``B`` images, ``W`` transformer width, ``D`` joint embedding dim, ``h x w`` the feature grid
(input size divided by the patch size / stride), ``N = h * w`` patch tokens.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from open_clip.modified_resnet import ModifiedResNet
from open_clip.transformer import ResidualAttentionBlock, VisionTransformer
from torch import nn
from torch.utils.checkpoint import checkpoint
from torchvision.ops import roi_align

__all__ = [
    'check_vit', 'interpolate_pos_embed', 'vit_embed', 'vit_forward_blocks', 'v2_block', 'vit_v2_tokens',
    'tokens_to_dense', 'vit_dense', 'vit_mask_attention_pool', 'resnet_pool', 'resnet_dense', 'boxes_to_rois',
    'pool_boxes', 'pool_masks', 'boxes_to_cell_masks',
]


# ----------------------------------------------------------------------------------------------
# ViT pieces
# ----------------------------------------------------------------------------------------------
def interpolate_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int],
                          new_grid: tuple[int, int]) -> torch.Tensor:
    """Resize a ViT positional embedding to another patch grid.

    Args:
        pos_embed: (1 + gh * gw, W), class-token row first.
        grid: (gh, gw) the grid ``pos_embed`` was trained for.
        new_grid: (h, w) target grid.

    Returns:
        (1 + h * w, W): class row unchanged, patch rows resized bicubically (align_corners=False).
    """
    if tuple(new_grid) == tuple(grid):
        return pos_embed
    cls_pos, patch_pos = pos_embed[:1], pos_embed[1:]
    width = pos_embed.shape[-1]
    patch_pos = patch_pos.reshape(1, grid[0], grid[1], width).permute(0, 3, 1, 2)
    # bicubic is not implemented for every low-precision dtype on every device: resize in fp32.
    patch_pos = F.interpolate(patch_pos.float(), size=tuple(new_grid), mode='bicubic', align_corners=False)
    patch_pos = patch_pos.to(pos_embed.dtype).permute(0, 2, 3, 1).reshape(-1, width)
    return torch.cat([cls_pos, patch_pos], dim=0)


def check_vit(visual: nn.Module) -> VisionTransformer:
    """Return ``visual`` if it is a class-token open_clip ViT, else raise."""
    if not isinstance(visual, VisionTransformer):
        raise TypeError(f'expected an open_clip VisionTransformer image tower, got {type(visual).__name__}')
    if getattr(visual, 'attn_pool', None) is not None or visual.pool_type != 'tok':
        raise NotImplementedError('dense features need a class-token ViT (no attentional pooler, '
                                  'pool_type="tok")')
    return visual


def vit_embed(visual: VisionTransformer, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """Patch-embed images of any size (multiple of the patch size) and prepare transformer input.

    Args:
        visual: an open_clip ``VisionTransformer``.
        images: (B, 3, H, W) normalized images.

    Returns:
        ``(x, (h, w))``: x (B, 1 + h * w, W) after class token, positional embedding and ln_pre.
        Patch dropout is not applied: dense features need every location.
    """
    ph, pw = visual.patch_size
    if images.shape[-2] % ph or images.shape[-1] % pw:
        raise ValueError(f'image size {tuple(images.shape[-2:])} is not a multiple of the patch size '
                         f'{(ph, pw)}')
    x = visual.conv1(images)
    h, w = x.shape[-2:]
    x = x.flatten(2).transpose(1, 2)
    cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1)
    pos = interpolate_pos_embed(visual.positional_embedding, tuple(visual.grid_size), (h, w))
    x = x + pos.to(x.dtype)
    x = visual.ln_pre(x)
    return x, (int(h), int(w))


def _run_block(block: nn.Module, x: torch.Tensor, use_checkpoint: bool) -> torch.Tensor:
    if use_checkpoint and torch.is_grad_enabled() and x.requires_grad:
        return checkpoint(block, x, use_reentrant=False)
    return block(x)


def vit_forward_blocks(visual: VisionTransformer, x: torch.Tensor, blocks: Sequence[nn.Module],
                       keep: Sequence[int] = ()) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Run ``blocks`` in order (honouring the tower's grad-checkpointing flag).

    Args:
        x: (B, T, W) tokens.
        keep: indices into ``blocks`` whose outputs are returned as well.

    Returns:
        ``(x, kept)``: final tokens (B, T, W) and ``{index: (B, T, W)}``.
    """
    use_ckpt = bool(getattr(visual.transformer, 'grad_checkpointing', False))
    keep = set(keep)
    kept: dict[int, torch.Tensor] = {}
    for i, block in enumerate(blocks):
        x = _run_block(block, x, use_ckpt)
        if i in keep:
            kept[i] = x
    return x, kept


def _value_only_attention(block: ResidualAttentionBlock, y: torch.Tensor) -> torch.Tensor:
    """out_proj(V(y)): the attention output when every token attends only to itself."""
    attn = block.attn
    if not isinstance(attn, nn.MultiheadAttention) or not attn._qkv_same_embed_dim:
        raise NotImplementedError('the v2 block needs a standard nn.MultiheadAttention (packed in_proj)')
    width = attn.embed_dim
    v_weight = attn.in_proj_weight[2 * width:]
    v_bias = attn.in_proj_bias[2 * width:] if attn.in_proj_bias is not None else None
    return attn.out_proj(F.linear(y, v_weight, v_bias))


def v2_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The last ViT block "without query-key attention" (CLIM's v2 dense extraction).

    x = x + ls_1(out_proj(V(ln_1(x)))); x = x + ls_2(mlp(ln_2(x))).

    Args:
        block: an open_clip ``ResidualAttentionBlock``.
        x: (B, T, W) tokens; every token is processed independently.

    Returns:
        (B, T, W).
    """
    if not isinstance(block, ResidualAttentionBlock):
        raise NotImplementedError(f'v2 dense features support open_clip ResidualAttentionBlock, '
                                  f'got {type(block).__name__}')
    x = x + block.ls_1(_value_only_attention(block, block.ln_1(x)))
    x = x + block.ls_2(block.mlp(block.ln_2(x)))
    return x


def vit_v2_tokens(visual: VisionTransformer, images: torch.Tensor, block_ids: Sequence[int] = ()
                  ) -> tuple[list[torch.Tensor], torch.Tensor, tuple[int, int]]:
    """Patch tokens of the v2 forward, plus intermediate block outputs.

    Args:
        visual: an open_clip ``VisionTransformer`` (class-token pooling).
        images: (B, 3, H, W).
        block_ids: 0-based block indices to return (negative ones count from the end); the last
            block's entry is the v2 block output.

    Returns:
        ``(maps, final, (h, w))``: ``maps[i]`` (B, W, h, w) after block ``block_ids[i]``; ``final``
        (B, W, h, w) the v2 last-block patch tokens (before ln_post).
    """
    check_vit(visual)
    blocks = list(visual.transformer.resblocks)
    n = len(blocks)
    ids = [b + n if b < 0 else b for b in block_ids]
    for b in ids:
        if not 0 <= b < n:
            raise ValueError(f'block id out of range for a {n}-block ViT: {list(block_ids)}')
    x, (h, w) = vit_embed(visual, images)
    x, kept = vit_forward_blocks(visual, x, blocks[:-1], keep=[b for b in ids if b < n - 1])
    # Tokens are independent in the v2 block: the class token is dropped before it (saves a row).
    final = v2_block(blocks[-1], x[:, 1:])
    kept[n - 1] = torch.cat([x[:, :1], final], dim=1)

    def to_map(t: torch.Tensor) -> torch.Tensor:
        # Contiguous NCHW: compiled ops (mmcv's RoIAlign among them) assume it.
        return t[:, 1:].transpose(1, 2).reshape(t.shape[0], t.shape[-1], h, w).contiguous()

    maps = [to_map(kept[b]) for b in ids]
    final_map = final.transpose(1, 2).reshape(final.shape[0], final.shape[-1], h, w).contiguous()
    return maps, final_map, (h, w)


def tokens_to_dense(visual: VisionTransformer, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """ln_post + visual projection per location.

    Args:
        tokens: (B, W, h, w) patch tokens (e.g. ``vit_v2_tokens``' ``final``).

    Returns:
        (B, D, h, w), L2-normalized over D when ``normalize``.
    """
    b, _, h, w = tokens.shape
    x = visual.ln_post(tokens.flatten(2).transpose(1, 2))
    if visual.proj is not None:
        x = x @ visual.proj.to(x.dtype)
    if normalize:
        x = F.normalize(x, dim=-1)
    return x.transpose(1, 2).reshape(b, -1, h, w).contiguous()


def vit_dense(visual: VisionTransformer, images: torch.Tensor, mode: str = 'v2',
              normalize: bool = True) -> torch.Tensor:
    """Dense CLIP feature map of a ViT.

    Args:
        images: (B, 3, H, W), H and W multiples of the patch size.
        mode: ``'v2'`` (last block without query-key attention, CLIM's default) or ``'plain'``
            (the ordinary last block; what the patch tokens of a normal forward give).

    Returns:
        (B, D, H / p, W / p), L2-normalized per location when ``normalize``.
    """
    if mode == 'v2':
        _, final, _ = vit_v2_tokens(visual, images)
        return tokens_to_dense(visual, final, normalize)
    if mode == 'plain':
        check_vit(visual)
        x, (h, w) = vit_embed(visual, images)
        x, _ = vit_forward_blocks(visual, x, list(visual.transformer.resblocks))
        tokens = x[:, 1:].transpose(1, 2).reshape(x.shape[0], x.shape[-1], h, w).contiguous()
        return tokens_to_dense(visual, tokens, normalize)
    raise ValueError(f"dense mode must be 'v2' or 'plain' (v1 is a region pooling: use region_features), "
                     f'got {mode!r}')


def vit_mask_attention_pool(visual: VisionTransformer, images: torch.Tensor,
                            masks: Sequence[torch.Tensor], normalize: bool = True) -> torch.Tensor:
    """"v1" region features: in the last block the class token attends only to the patch tokens
    inside each region (one query per region), then the usual ln_post + proj on the class token.

    Args:
        images: (B, 3, H, W).
        masks: per image a (n_i, h, w) bool tensor at the patch grid (h = H / p, w = W / p); a
            region with no cell set falls back to attending to every patch token.

    Returns:
        (sum n_i, D), L2-normalized when ``normalize``.
    """
    check_vit(visual)
    if len(masks) != images.shape[0]:
        raise ValueError(f'got {len(masks)} mask lists for {images.shape[0]} images')
    blocks = list(visual.transformer.resblocks)
    last = blocks[-1]
    if not isinstance(last, ResidualAttentionBlock):
        raise NotImplementedError('v1 pooling supports open_clip ResidualAttentionBlock only')
    x, (h, w) = vit_embed(visual, images)
    x, _ = vit_forward_blocks(visual, x, blocks[:-1])
    attn = last.attn
    width, heads = attn.embed_dim, attn.num_heads
    head_dim = width // heads
    y = last.ln_1(x)
    q, k, v = F.linear(y, attn.in_proj_weight, attn.in_proj_bias).split(width, dim=-1)
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
        tok = tok + last.ls_2(last.mlp(last.ln_2(tok)))
        outs.append(tok)
    if not outs:
        return x.new_zeros(0, visual.output_dim)
    tok = visual.ln_post(torch.cat(outs))
    if visual.proj is not None:
        tok = tok @ visual.proj.to(tok.dtype)
    return F.normalize(tok, dim=-1) if normalize else tok


# ----------------------------------------------------------------------------------------------
# Modified ResNet
# ----------------------------------------------------------------------------------------------
def _resnet_tokens(visual: ModifiedResNet, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """Backbone features as tokens with the attention pool's positional embedding (resized) added:
    (B, 1 + h * w, C), the first token being the spatial mean (the pool's query)."""
    x = visual.stem(images)
    x = visual.layer4(visual.layer3(visual.layer2(visual.layer1(x))))
    h, w = x.shape[-2:]
    pool = visual.attnpool
    grid = int(round(math.sqrt(pool.positional_embedding.shape[0] - 1)))
    pos = interpolate_pos_embed(pool.positional_embedding, (grid, grid), (h, w))
    t = x.flatten(2).transpose(1, 2)
    t = torch.cat([t.mean(dim=1, keepdim=True), t], dim=1) + pos.to(t.dtype)
    return t, (int(h), int(w))


def resnet_pool(visual: ModifiedResNet, images: torch.Tensor) -> torch.Tensor:
    """The Modified-ResNet image embedding at any input size (multiple of 32): the attention pool
    with its positional embedding resized to the feature grid (equal to upstream at the native size).

    Returns:
        (B, D), not normalized.
    """
    pool = visual.attnpool
    t, _ = _resnet_tokens(visual, images)
    b, n, c = t.shape
    heads = pool.num_heads
    q = pool.q_proj(t[:, :1]).view(b, 1, heads, c // heads).transpose(1, 2)
    k = pool.k_proj(t).view(b, n, heads, c // heads).transpose(1, 2)
    v = pool.v_proj(t).view(b, n, heads, c // heads).transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v)                            # (B, heads, 1, c / heads)
    return pool.c_proj(out.transpose(1, 2).reshape(b, c))


def resnet_dense(visual: ModifiedResNet, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Dense map of a Modified-ResNet CLIP: the attention pool's value path + output projection at
    every location (the ResNet analogue of v2: no query-key attention), with the pool's positional
    embedding resized to the feature grid.

    Args:
        images: (B, 3, H, W), H and W multiples of 32.

    Returns:
        (B, D, H / 32, W / 32), L2-normalized per location when ``normalize``.
    """
    if not isinstance(visual, ModifiedResNet):
        raise TypeError(f'expected an open_clip ModifiedResNet, got {type(visual).__name__}')
    t, (h, w) = _resnet_tokens(visual, images)
    pool = visual.attnpool
    t = pool.c_proj(pool.v_proj(t[:, 1:]))                                   # (B, N, D)
    b = t.shape[0]
    if normalize:
        t = F.normalize(t, dim=-1)
    return t.transpose(1, 2).reshape(b, -1, h, w).contiguous()


# ----------------------------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------------------------
def boxes_to_rois(boxes: Sequence[torch.Tensor], feat_hw: tuple[int, int], normalized: bool = True,
                  stride: float | None = None, device: torch.device | None = None) -> torch.Tensor:
    """Per-image boxes -> RoIAlign rois in feature-cell units.

    Args:
        boxes: per image a (n_i, 4) tensor (x1, y1, x2, y2); normalized to [0, 1] or in
            input-image pixels.
        feat_hw: (h, w) of the feature map.
        normalized: whether the boxes are normalized.
        stride: input pixels per feature cell (needed for pixel boxes).

    Returns:
        (sum n_i, 5) float32 rois (batch index, x1, y1, x2, y2) in cells.
    """
    h, w = feat_hw
    rois = []
    for i, b in enumerate(boxes):
        b = torch.as_tensor(b, dtype=torch.float32, device=device).reshape(-1, 4)
        if normalized:
            scale = b.new_tensor([w, h, w, h])
        else:
            if not stride:
                raise ValueError('pixel boxes need the feature stride')
            scale = b.new_full((4,), 1.0 / stride)
        rois.append(torch.cat([b.new_full((b.shape[0], 1), float(i)), b * scale], dim=1))
    if not rois:
        return torch.zeros(0, 5, device=device)
    return torch.cat(rois)


def pool_boxes(dense: torch.Tensor, boxes: Sequence[torch.Tensor], normalized: bool = True,
               stride: float | None = None, normalize: bool = True) -> torch.Tensor:
    """RoIAlign (1x1, aligned=True, sampling_ratio=-1, spatial_scale 1) of a dense map over boxes.

    Args:
        dense: (B, D, h, w).
        boxes: per image (n_i, 4) x1y1x2y2, normalized or in input pixels (then ``stride`` is the
            number of input pixels per cell); ``len(boxes) == B``; n_i may be 0.

    Returns:
        (sum n_i, D) float32, L2-normalized when ``normalize``; rows follow the image order.
    """
    if len(boxes) != dense.shape[0]:
        raise ValueError(f'got {len(boxes)} box lists for {dense.shape[0]} feature maps')
    rois = boxes_to_rois(boxes, tuple(dense.shape[-2:]), normalized, stride, dense.device)
    if rois.shape[0] == 0:
        return dense.new_zeros(0, dense.shape[1], dtype=torch.float32)
    # RoIAlign in fp32 outside autocast: same numbers under AMP, no dtype surprises in the op.
    with torch.autocast(device_type=dense.device.type, enabled=False):
        out = roi_align(dense.float(), rois, output_size=(1, 1), spatial_scale=1.0,
                        sampling_ratio=-1, aligned=True).flatten(1)
    return F.normalize(out, dim=-1) if normalize else out


def pool_masks(dense: torch.Tensor, masks: Sequence[torch.Tensor], normalize: bool = True) -> torch.Tensor:
    """Mean of a dense map over each mask.

    Args:
        dense: (B, D, h, w).
        masks: per image (n_i, hm, wm) bool/float masks. At the map's resolution each cell counts
            once; other resolutions are area-resampled to (h, w), giving fractional cell weights.
            An empty mask gives a zero vector.

    Returns:
        (sum n_i, D) float32, L2-normalized when ``normalize``.
    """
    if len(masks) != dense.shape[0]:
        raise ValueError(f'got {len(masks)} mask lists for {dense.shape[0]} feature maps')
    h, w = dense.shape[-2:]
    outs = []
    for i, m in enumerate(masks):
        if m.numel() == 0:
            continue
        m = m.to(device=dense.device, dtype=torch.float32)
        if tuple(m.shape[-2:]) != (h, w):
            m = F.adaptive_avg_pool2d(m.unsqueeze(1), (h, w)).squeeze(1) if m.shape[-2] >= h and \
                m.shape[-1] >= w else F.interpolate(m.unsqueeze(1), size=(h, w), mode='nearest').squeeze(1)
        weights = m.flatten(1)                                               # (n_i, h*w)
        feats = dense[i].float().flatten(1)                                  # (D, h*w)
        outs.append((weights @ feats.T) / weights.sum(dim=1, keepdim=True).clamp_min(1e-6))
    if not outs:
        return dense.new_zeros(0, dense.shape[1], dtype=torch.float32)
    out = torch.cat(outs)
    return F.normalize(out, dim=-1) if normalize else out


def boxes_to_cell_masks(boxes: Sequence[torch.Tensor], feat_hw: tuple[int, int], normalized: bool = True,
                        stride: float | None = None) -> list[torch.Tensor]:
    """Cells whose centre lies inside each box (at least the cell holding the box centre).

    Args:
        boxes: per image (n_i, 4) x1y1x2y2, normalized or in pixels (with ``stride``).

    Returns:
        per image a (n_i, h, w) bool tensor.
    """
    h, w = feat_hw
    out = []
    for b in boxes:
        b = torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4)
        if normalized:
            b = b * b.new_tensor([w, h, w, h])
        else:
            if not stride:
                raise ValueError('pixel boxes need the feature stride')
            b = b / stride
        cy = torch.arange(h, dtype=torch.float32, device=b.device) + 0.5
        cx = torch.arange(w, dtype=torch.float32, device=b.device) + 0.5
        inside_x = (cx[None] >= b[:, 0:1]) & (cx[None] <= b[:, 2:3])        # (n, w)
        inside_y = (cy[None] >= b[:, 1:2]) & (cy[None] <= b[:, 3:4])        # (n, h)
        m = inside_y[:, :, None] & inside_x[:, None, :]
        # Boxes smaller than a cell: keep the cell under the box centre.
        ccx = ((b[:, 0] + b[:, 2]) / 2).floor().clamp(0, w - 1).long()
        ccy = ((b[:, 1] + b[:, 3]) / 2).floor().clamp(0, h - 1).long()
        empty = ~m.flatten(1).any(dim=1)
        if empty.any():
            idx = empty.nonzero().flatten()
            m[idx, ccy[idx], ccx[idx]] = True
        out.append(m)
    return out
