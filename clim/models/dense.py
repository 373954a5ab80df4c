"""Pooling dense (per-location) CLIP feature maps over boxes and masks, for every image-tower family.

The dense maps themselves come from the tower adapters (:mod:`clim.models.towers`: each family's pieces,
the v2 / plain / token algorithms once in :class:`~clim.models.towers.base.ViTImageTower`).

Shapes: ``B`` images, ``D`` joint embedding dim, ``h x w`` the feature grid (input size divided by the
patch size / stride).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

__all__ = ['boxes_to_rois', 'pool_boxes', 'pool_masks', 'boxes_to_cell_masks']


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
