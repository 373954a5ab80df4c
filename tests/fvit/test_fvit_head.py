"""The text-embedding box head: base-only training with -inf masking, and the test-time ensemble."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torchvision.ops import roi_align

C, D = 5, 8
WEIGHTS = [1.0, 0.0, 1.0, 0.0, 1.0]  # classes 1 and 3 are novel
BASE = [j for j, w in enumerate(WEIGHTS) if w > 0]
NOVEL = [j for j, w in enumerate(WEIGHTS) if w == 0]


def _embeddings() -> np.ndarray:
    g = torch.Generator().manual_seed(1)
    return F.normalize(torch.randn(C, D, generator=g), dim=-1).numpy()


def _head(**kwargs):
    from ovdet.models import TextEmbeddingBBoxHead

    cfg = dict(class_embeddings=_embeddings(), num_classes=C, class_weights=WEIGHTS, in_channels=8,
               roi_feat_size=3, num_shared_convs=1, num_shared_fcs=1, conv_out_channels=8, fc_out_channels=16)
    cfg.update(kwargs)
    return TextEmbeddingBBoxHead(**cfg)


def _hand_fused(logits: torch.Tensor, clip_feats: torch.Tensor, emb: np.ndarray, base: list[int],
                bg: torch.Tensor, alpha: float = 0.1, beta: float = 0.8, clip_temp: float = 75.0) -> torch.Tensor:
    """(N, C + 1): the CLIP softmax runs over the classes and the background embedding ``bg``; the
    background column is base (alpha), like the classes in ``base``."""
    det = logits.double().softmax(dim=-1)
    e = torch.cat([torch.from_numpy(emb).double(), bg.double().reshape(1, -1)])
    clip = (clip_temp * F.normalize(clip_feats.double(), dim=-1) @ F.normalize(e, dim=-1).t()).softmax(dim=-1)
    num = emb.shape[0]
    out = torch.empty(logits.shape[0], num + 1, dtype=torch.float64)
    for j in range(num + 1):
        a = alpha if (j in base or j == num) else beta
        out[:, j] = det[:, j] ** (1 - a) * clip[:, j] ** a
    return out


def _bg(head) -> torch.Tensor:
    return head.classifier.background_embedding().detach()


def test_fused_scores_equal_hand_computation() -> None:
    head = _head()
    logits = torch.randn(7, C + 1) * 3
    feats = torch.randn(7, D)
    scores = head.class_scores(logits, feats)
    expected = _hand_fused(logits, feats, _embeddings(), BASE, _bg(head))
    # atol: a CLIP probability below float32 range underflows to 0 (0^0.1 = 0, in float64 ~3e-6).
    torch.testing.assert_close(scores.double(), expected, rtol=1e-5, atol=1e-5)
    # Base and novel really use different exponents (a swapped mask gives other numbers).
    swapped = _hand_fused(logits, feats, _embeddings(), NOVEL, _bg(head))
    assert not torch.allclose(scores[:, :C].double(), swapped[:, :C], rtol=1e-3)
    # Without CLIP features: plain detector softmax.
    torch.testing.assert_close(head.class_scores(logits, None), logits.softmax(-1))


def test_roi_head_pools_clip_over_proposals_and_fuses() -> None:
    """Through FViTRoIHead.predict_bbox: CLIP features pooled from the dense map at its stride."""
    from ovdet.models import FViTRoIHead

    roi_head = FViTRoIHead(
        bbox_roi_extractor=dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=3,
                                sampling_ratio=0), out_channels=8, featmap_strides=[4]),
        bbox_head=dict(type='TextEmbeddingBBoxHead', class_embeddings=_embeddings(), num_classes=C,
                       class_weights=WEIGHTS, in_channels=8, roi_feat_size=3, num_shared_convs=1,
                       num_shared_fcs=1, conv_out_channels=8, fc_out_channels=16),
        test_cfg=None).eval()
    h, w = 64, 96
    x = (torch.randn(1, 8, h // 4, w // 4),)
    dense = F.normalize(torch.randn(1, D, h // 16, w // 16), dim=1)
    boxes = torch.tensor([[0.0, 0.0, 40.0, 30.0], [20.0, 10.0, 90.0, 60.0], [50.0, 5.0, 70.0, 25.0]])
    metas = [dict(img_shape=(h, w), batch_input_shape=(h, w), scale_factor=(1.0, 1.0))]
    with torch.no_grad():
        raw = roi_head.predict_bbox(x, metas, [InstanceData(bboxes=boxes)], rcnn_test_cfg=None,
                                    clip_dense=dense)
        rois = torch.cat([boxes.new_zeros(3, 1), boxes], dim=1)
        logits = roi_head._bbox_forward(x, rois)['cls_score']
    pooled = roi_align(dense, torch.cat([rois[:, :1], rois[:, 1:] / 16], dim=1), output_size=(1, 1),
                       spatial_scale=1.0, sampling_ratio=-1, aligned=True).flatten(1)
    expected = _hand_fused(logits, pooled, _embeddings(), BASE, _bg(roi_head.bbox_head))
    torch.testing.assert_close(raw[0].scores.double(), expected, rtol=1e-5, atol=1e-7)


def test_novel_logits_are_minus_inf_and_get_exactly_zero_gradient() -> None:
    head = _head(bg_weight=0.6)
    logits = (torch.randn(8, C + 1) * 2).requires_grad_()
    labels = torch.tensor([0, 2, 4, C, C, 0, 2, C])  # base classes and background only
    label_weights = torch.ones(8)
    losses = head.loss(logits, None, None, labels, label_weights, None, None)
    losses['loss_cls'].backward()

    masked = head.mask_untrained_logits(logits.detach())
    assert torch.isneginf(masked[:, NOVEL]).all()
    assert torch.isfinite(masked[:, BASE + [C]]).all()
    assert torch.count_nonzero(logits.grad[:, NOVEL]) == 0
    assert (logits.grad[:, BASE + [C]].abs().sum(dim=0) > 0).all()

    # The loss is a cross entropy over base + background only, background weighted 0.6 ...
    keep = BASE + [C]
    sub = logits.detach().double()[:, keep]
    target = torch.tensor([keep.index(int(t)) for t in labels])
    nll = -sub.log_softmax(dim=-1)[torch.arange(8), target]
    w = torch.tensor([1.0 if t < C else 0.6 for t in labels], dtype=torch.float64)
    torch.testing.assert_close(losses['loss_cls'].double(), (w * nll).sum() / 8)

    # ... which is not what weighting the novel classes 0 in a standard cross entropy gives: there the
    # novel logits stay in the softmax as negatives and are pushed down.
    plain = logits.detach().clone().requires_grad_()
    class_weight = torch.tensor(WEIGHTS + [0.6])
    weighted = F.cross_entropy(plain, labels, weight=class_weight, reduction='none').sum() / 8
    weighted.backward()
    assert not torch.allclose(weighted.double(), losses['loss_cls'].double())
    assert (plain.grad[:, NOVEL] > 0).any()


def test_novel_targets_are_ignored_not_infinite() -> None:
    head = _head()
    logits = torch.randn(4, C + 1, requires_grad=True)
    labels = torch.tensor([0, NOVEL[0], C, 2])
    with pytest.warns(UserWarning, match='weight 0'):
        losses = head.loss(logits, None, None, labels, torch.ones(4), None, None)
    assert torch.isfinite(losses['loss_cls'])
    losses['loss_cls'].backward()
    assert torch.count_nonzero(logits.grad[1]) == 0


def test_custom_vocabulary_is_novel_by_default() -> None:
    head = _head()
    new = F.normalize(torch.randn(3, D), dim=-1)
    head.set_vocabulary(new)
    assert head.num_classes == 3 and not head.base_mask.any()
    logits, feats = torch.randn(4, 4), torch.randn(4, D)
    expected = _hand_fused(logits, feats, new.numpy(), [], _bg(head))
    scores = head.class_scores(logits, feats).double()
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-7)
    head.set_vocabulary(new, base_mask=[True, False, False])
    assert head.base_mask.tolist() == [True, False, False]
    with pytest.raises(ValueError, match='base_mask'):
        head.set_vocabulary(new, base_mask=[True])
