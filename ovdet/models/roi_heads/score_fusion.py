"""F-VLM's test-time geometric ensemble of detector and frozen-CLIP class probabilities."""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ['clip_class_probs', 'fuse_scores']


def clip_class_probs(region_feats: torch.Tensor, class_embeddings: torch.Tensor,
                     background_embedding: torch.Tensor, temperature: float = 75.0) -> torch.Tensor:
    """Zero-shot CLIP probabilities of regions over the classes **and the background**.

    The reference scores CLIP region features against the class embeddings with the detector's own
    background embedding appended (see the reference spec's ``detectors.md``, F-ViT test-time ensemble), so
    a region that matches no class well puts its CLIP mass on the background column.

    Args:
        region_feats: (N, D) region features pooled from the CLIP dense map (normalized here).
        class_embeddings: (C, D) class text embeddings (normalized here).
        background_embedding: (1, D) or (D,) the detector's background embedding (learned, a fixed
            text row, or zeros); normalized here (a zero vector stays zero: a background logit of 0).
        temperature: CLIP logit scale (75 in the reference).

    Returns:
        (N, C + 1) ``softmax(temperature * <f, [E; bg]>)``, background last.
    """
    feats = F.normalize(region_feats.float(), dim=-1)
    emb = torch.cat([class_embeddings.float(), background_embedding.float().reshape(1, -1)])
    return (temperature * feats @ F.normalize(emb, dim=-1).t()).softmax(dim=-1)


def fuse_scores(det_probs: torch.Tensor, clip_probs: torch.Tensor, base_mask: torch.Tensor,
                alpha: float = 0.1, beta: float = 0.8) -> torch.Tensor:
    """Geometric ensemble ``det^(1 - a) * clip^a`` per column, ``a = alpha`` (base) / ``beta`` (others).

    Base columns trust the detector (trained on them); the others lean on CLIP, whose recognition
    the detector never saw boxes for. The background column is an ordinary column here: it is base
    when its training weight is > 0 (always, for F-ViT), as in the reference.

    Args:
        det_probs: (N, K) detector softmax over classes + background (K = C + 1, background last).
        clip_probs: (N, K) CLIP softmax over the same columns (:func:`clip_class_probs`).
        base_mask: (K,) bool, True for columns trained with a weight > 0 (background included).
        alpha / beta: CLIP exponents for base / other columns.

    Returns:
        (N, K) fused scores (multiclass NMS reads the first K - 1 columns).
    """
    if det_probs.shape != clip_probs.shape or base_mask.numel() != det_probs.shape[1]:
        raise ValueError(f'shape mismatch: det {tuple(det_probs.shape)}, clip {tuple(clip_probs.shape)}, '
                         f'base mask {tuple(base_mask.shape)}')
    a = torch.where(base_mask.to(det_probs.device).bool(), alpha, beta).to(det_probs.dtype)
    return det_probs.pow(1.0 - a) * clip_probs.to(det_probs.dtype).pow(a)
