"""BARON-KD's teacher targets from a frozen CLIP ViT: the crop embedding v of each spanned box and the
single-region embeddings r of its member boxes, read from the crop's last-block tokens."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from clim.models.towers.open_clip_vit import OpenCLIPViTTower, value_only_attention
from torch import Tensor
from torchvision.ops import roi_align

__all__ = ['crop_boxes', 'crop_embeddings_and_tokens', 'pool_member_tokens']


def crop_boxes(images: Tensor, rois: Tensor, size: int | tuple[int, int]) -> Tensor:
    """(n, 5) rois [batch index, x1, y1, x2, y2] -> (n, 3, size, size) RoIAligned crops (avg,
    sampling_ratio 2, aligned; boxes stretched to the square)."""
    return roi_align(images, rois, size, spatial_scale=1.0, sampling_ratio=2, aligned=True)


def crop_embeddings_and_tokens(clip, crops: Tensor) -> tuple[Tensor, Tensor]:
    """The ordinary CLIP embedding of each crop and its last-block token map.

    Tokens use the class token's residual (reference quirk, spec S6):
    ``y_i = x_CLS + out_proj(V(ln_1(x_i))); y_i += mlp(ln_2(y_i))``, then ``ln_post`` and ``proj``.

    Args:
        crops: (n, 3, H, W) CLIP-normalized.

    Returns:
        ``(v (n, D) L2-normalized, tokens (n, D, H/p, W/p) not normalized)``, float32.
    """
    tower = clip.image_tower
    if not isinstance(tower, OpenCLIPViTTower):  # the reference's teacher is an OpenAI CLIP ViT
        raise TypeError(f'the BARON teacher needs an open_clip ViT CLIP, got a {tower.family}')
    x, (gh, gw) = tower.embed(crops)
    x, _ = tower.run_blocks(x, (gh, gw), range(tower.num_blocks - 1))
    last = tower.blocks[-1]
    v = tower.head(last(x)[:, 0])
    y = x[:, :1] + last.ls_1(value_only_attention(last, last.ln_1(x[:, 1:])))
    y = tower.head(y + last.ls_2(last.mlp(last.ln_2(y))))
    tokens = y.float().transpose(1, 2).reshape(y.shape[0], -1, gh, gw)
    return F.normalize(v.float(), dim=-1), tokens


def pool_member_tokens(tokens: Tensor, group_index: Tensor, norm_boxes: Tensor) -> Tensor:
    """(R, D) L2-normalized 1x1 RoIAlign (sampling_ratio 2, aligned) of each member box, given in its
    spanned box's frame ([0, 1]), on its group's token map (G, D, h, w)."""
    h, w = tokens.shape[-2:]
    scale = norm_boxes.new_tensor([w, h, w, h])
    rois = torch.cat([group_index[:, None].to(norm_boxes), norm_boxes * scale], 1)
    r = roi_align(tokens, rois.to(tokens), 1, spatial_scale=1.0, sampling_ratio=2, aligned=True).flatten(1)
    return F.normalize(r, dim=-1)
