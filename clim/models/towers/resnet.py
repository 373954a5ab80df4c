"""open_clip's Modified ResNet image tower (OpenAI RN50 ... RN50x64) as an
:class:`~clim.models.towers.base.ImageTower`.

- image embedding at any size (multiple of 32): the attention pool with its positional embedding resized to
  the feature grid (equal to upstream at the native size);
- dense map ("v2" for a ResNet): the attention pool's value path + output projection at every location (no
  query-key attention), positional embedding resized likewise;
- locking groups: [stem], [layer1] .. [layer4]; the attention pool maps into the text space and stays frozen.

Shapes: ``B`` images, ``C`` the final feature width, ``D`` joint dim, ``(h, w) = (H / 32, W / 32)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from open_clip.modified_resnet import ModifiedResNet
from torch import nn

from .base import ImageTower, interpolate_pos_embed, tokens_to_map

__all__ = ['ModifiedResNetTower']

_STEM = ('conv1', 'bn1', 'conv2', 'bn2', 'conv3', 'bn3')


class ModifiedResNetTower(ImageTower):
    """An open_clip ``ModifiedResNet`` (see the module docstring).

    Args:
        visual: the tower module (``clip.visual``), owned by the model.
    """

    family = 'Modified ResNet'

    def __init__(self, visual: nn.Module) -> None:
        if not isinstance(visual, ModifiedResNet):
            raise TypeError(f'expected an open_clip ModifiedResNet, got {type(visual).__name__}')
        super().__init__(visual)

    @property
    def stride(self) -> int:
        return 32

    @property
    def width(self) -> int:
        return int(self.module.attnpool.v_proj.in_features)

    @property
    def embed_dim(self) -> int:
        return int(self.module.attnpool.c_proj.out_features)

    @property
    def image_size(self) -> tuple[int, int]:
        size = self.module.image_size
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def tokens(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Backbone features as tokens with the attention pool's positional embedding (resized) added.

        Returns:
            ``(t, (h, w))``: t (B, 1 + h * w, C), the first token the spatial mean (the pool's query).
        """
        v = self.module
        x = v.layer4(v.layer3(v.layer2(v.layer1(v.stem(images)))))
        h, w = x.shape[-2:]
        pool = v.attnpool
        grid = int(round(math.sqrt(pool.positional_embedding.shape[0] - 1)))
        pos = interpolate_pos_embed(pool.positional_embedding, (grid, grid), (h, w))
        t = x.flatten(2).transpose(1, 2)
        t = torch.cat([t.mean(dim=1, keepdim=True), t], dim=1) + pos.to(t.dtype)
        return t, (int(h), int(w))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[-2:]) == self.image_size:
            return self.module(images)
        return self.pool(images)

    def pool(self, images: torch.Tensor) -> torch.Tensor:
        """The attention-pool embedding at any input size (multiple of 32): (B, 3, H, W) -> (B, D), not
        normalized (equal to the upstream forward at the native size)."""
        pool = self.module.attnpool
        t, _ = self.tokens(images)
        b, n, c = t.shape
        heads = pool.num_heads
        q = pool.q_proj(t[:, :1]).view(b, 1, heads, c // heads).transpose(1, 2)
        k = pool.k_proj(t).view(b, n, heads, c // heads).transpose(1, 2)
        v = pool.v_proj(t).view(b, n, heads, c // heads).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)                        # (B, heads, 1, c / heads)
        return pool.c_proj(out.transpose(1, 2).reshape(b, c))

    def dense(self, images: torch.Tensor, mode: str = 'v2', normalize: bool = True) -> torch.Tensor:
        if mode != 'v2':
            raise ValueError(f'Modified-ResNet CLIPs only support dense mode "v2", got {mode!r}')
        t, grid = self.tokens(images)
        pool = self.module.attnpool
        t = pool.c_proj(pool.v_proj(t[:, 1:]))                               # (B, N, D)
        return tokens_to_map(F.normalize(t, dim=-1) if normalize else t, grid)

    def param_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        v = self.module
        stem = [p for n, p in v.named_parameters() if n.split('.')[0] in _STEM]
        return [('stem', stem)] + [(f'layer{i}', list(getattr(v, f'layer{i}').parameters())) for i in (1, 2, 3, 4)]

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.module.attnpool.parameters())

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.module.set_grad_checkpointing(enable)
