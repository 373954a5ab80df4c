"""The positional embedding of a box inside its bag (BARON-KD): sine code + Linear / LayerNorm / Linear."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ['sine_box_code', 'BoxPositionalEmbedding']


def sine_box_code(norm_boxes: Tensor, num_feats: int = 128, base: float = 1.2, offset: int = 32) -> Tensor:
    """Sine code of boxes normalized to their spanned box.

    Each of (cx, cy, w, h) gives ``num_feats`` values: angle_k = 2*pi*x * base^(floor(k/2) - offset),
    sin for even k, cos for odd k; the four codes are concatenated in that order.

    Args:
        norm_boxes: (R, 4) x1y1x2y2 in the spanned box's frame (values in [0, 1]).

    Returns:
        (R, 4 * num_feats) float32.
    """
    b = norm_boxes.float()
    coords = torch.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)
    k = torch.arange(num_feats, device=b.device)
    scale = base ** (torch.div(k, 2, rounding_mode='floor') - offset).float()
    angle = 2 * math.pi * coords[..., None] * scale
    code = torch.where(k % 2 == 0, angle.sin(), angle.cos())
    return code.flatten(1)


class BoxPositionalEmbedding(nn.Module):
    """Per-word positional embedding of a bag member: ``Linear(4F, D) -> LayerNorm -> Linear(D, W*D)``
    on :func:`sine_box_code` (torch default init).

    Shapes:
        forward: (R, 4) normalized boxes -> (R, W, D).
    """

    def __init__(self, word_dim: int = 512, words_per_region: int = 6, num_feats: int = 128) -> None:
        super().__init__()
        self.num_feats = int(num_feats)
        self.words_per_region = int(words_per_region)
        self.word_dim = int(word_dim)
        self.net = nn.Sequential(nn.Linear(4 * self.num_feats, word_dim), nn.LayerNorm(word_dim),
                                 nn.Linear(word_dim, self.words_per_region * word_dim))

    def forward(self, norm_boxes: Tensor) -> Tensor:
        code = sine_box_code(norm_boxes, self.num_feats).to(self.net[0].weight.dtype)
        return self.net(code).view(-1, self.words_per_region, self.word_dim)
