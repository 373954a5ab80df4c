"""F-VLM's test-time geometric ensemble of detector and frozen-CLIP class probabilities."""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ['clip_class_probs', 'fuse_scores']


def clip_class_probs(region_feats: torch.Tensor, class_embeddings: torch.Tensor,
                     temperature: float = 75.0) -> torch.Tensor:
    """Zero-shot CLIP probabilities of regions over the classes (no background).

    Args:
        region_feats: (N, D) region features pooled from the CLIP dense map (normalized here).
        class_embeddings: (C, D) class text embeddings (normalized here).
        temperature: CLIP logit scale (75 in the reference).

    Returns:
        (N, C) softmax(temperature * cosine).
    """
    feats = F.normalize(region_feats.float(), dim=-1)
    emb = F.normalize(class_embeddings.float(), dim=-1)
    return (temperature * feats @ emb.t()).softmax(dim=-1)


def fuse_scores(det_probs: torch.Tensor, clip_probs: torch.Tensor, base_mask: torch.Tensor,
                alpha: float = 0.1, beta: float = 0.8) -> torch.Tensor:
    """Geometric ensemble ``det^(1 - a) * clip^a`` per class, ``a = alpha`` (base) / ``beta`` (others).

    Base classes trust the detector (trained on them); the others lean on CLIP, whose recognition
    the detector never saw boxes for.

    Args:
        det_probs: (N, C + 1) detector softmax over classes + background (background last).
        clip_probs: (N, C) CLIP softmax over classes.
        base_mask: (C,) bool, True for classes trained with boxes.
        alpha / beta: CLIP exponents for base / other classes.

    Returns:
        (N, C + 1): fused class scores, the detector's background probability in the last column
        (multiclass NMS ignores it).
    """
    num_classes = clip_probs.shape[1]
    if det_probs.shape[1] != num_classes + 1 or base_mask.numel() != num_classes:
        raise ValueError(f'shape mismatch: det {tuple(det_probs.shape)}, clip {tuple(clip_probs.shape)}, '
                         f'base mask {tuple(base_mask.shape)}')
    a = torch.where(base_mask.to(det_probs.device).bool(), alpha, beta).to(det_probs.dtype)
    det_cls = det_probs[:, :num_classes]
    fused = det_cls.pow(1.0 - a) * clip_probs.to(det_probs.dtype).pow(a)
    return torch.cat([fused, det_probs[:, num_classes:]], dim=1)
