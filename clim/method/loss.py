"""Symmetric CLIP InfoNCE with open_clip's ``local_loss=True, gather_with_grad=True`` semantics.

Each rank scores its own image features against the text features of every rank, and its own
text features against the image features of every rank; labels are offset by
``rank * local_batch``. Gathering keeps the autograd graph (``torch.distributed.nn.functional
.all_gather``), so the gradients that reach each rank's features include the terms other ranks'
losses contribute. Averaged over ranks by DDP, this is exactly the gradient of the single-process
InfoNCE on the global batch.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from mmdet.registry import MODELS

__all__ = ['ContrastiveLoss', 'gather_features', 'infonce_loss']


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_features(features: torch.Tensor) -> torch.Tensor:
    """All-gather (B, D) features of every rank into (world * B, D), keeping gradients.

    Every rank must pass the same B (all_gather needs equal shapes); the result is ordered by rank.
    """
    rank, world = _dist_info()
    if world == 1:
        return features
    # Imported lazily: torch.distributed.nn pulls in RPC bits some builds lack.
    from torch.distributed.nn.functional import all_gather
    return torch.cat(all_gather(features), dim=0)


def infonce_loss(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor,
                 all_image_features: torch.Tensor | None = None,
                 all_text_features: torch.Tensor | None = None,
                 label_offset: int = 0) -> torch.Tensor:
    """Symmetric InfoNCE of local rows against (possibly gathered) columns.

    Args:
        image_features: (B, D) this rank's image/region features (L2-normalized).
        text_features: (B, D) this rank's text features; row i pairs with image row i.
        logit_scale: scalar, already exponentiated (multiplies the cosine similarities).
        all_image_features / all_text_features: (N, D) columns to score against (default: the local ones).
        label_offset: index of this rank's first row among the columns.

    Returns:
        Scalar: (CE(image->text) + CE(text->image)) / 2, each averaged over the B local rows.
    """
    all_image = image_features if all_image_features is None else all_image_features
    all_text = text_features if all_text_features is None else all_text_features
    logits_per_image = logit_scale * image_features @ all_text.t()
    logits_per_text = logit_scale * text_features @ all_image.t()
    labels = torch.arange(image_features.shape[0], device=image_features.device) + label_offset
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2


@MODELS.register_module()
class ContrastiveLoss(nn.Module):
    """CLIP contrastive loss across ranks (open_clip ``ClipLoss(local_loss=True, gather_with_grad=True)``).

    Args:
        loss_weight: multiplies the loss (CLIM's ``contrast_weight``).

    Inputs: image_features (B, D), text_features (B, D), logit_scale (scalar, exponentiated).
    Output: scalar loss. All ranks must call it with the same B.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = float(loss_weight)

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor,
                logit_scale: torch.Tensor) -> torch.Tensor:
        if image_features.shape != text_features.shape:
            raise ValueError(f'image features {tuple(image_features.shape)} and text features '
                             f'{tuple(text_features.shape)} must pair row by row')
        rank, world = _dist_info()
        if world == 1:
            loss = infonce_loss(image_features, text_features, logit_scale)
        else:
            loss = infonce_loss(image_features, text_features, logit_scale,
                                all_image_features=gather_features(image_features),
                                all_text_features=gather_features(text_features),
                                label_offset=rank * image_features.shape[0])
        return self.loss_weight * loss
