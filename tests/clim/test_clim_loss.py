"""The contrastive loss is the symmetric CLIP InfoNCE, and CLIM's loss is it on CLIM's features."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from clim.method.loss import ContrastiveLoss, infonce_loss
from clim_test_utils import random_batch


def approx(v: float):
    return pytest.approx(v, rel=1e-5, abs=1e-5)


def hand_infonce(img: torch.Tensor, txt: torch.Tensor, scale: float) -> float:
    """Symmetric InfoNCE with explicit loops, in float64."""
    img, txt = img.double(), txt.double()
    n = img.shape[0]
    sim = [[scale * float(img[i] @ txt[j]) for j in range(n)] for i in range(n)]
    i2t = sum(-sim[i][i] + math.log(sum(math.exp(sim[i][j]) for j in range(n))) for i in range(n)) / n
    t2i = sum(-sim[j][j] + math.log(sum(math.exp(sim[i][j]) for i in range(n))) for j in range(n)) / n
    return (i2t + t2i) / 2


def test_loss_equals_hand_written_infonce():
    torch.manual_seed(1)
    img = F.normalize(torch.randn(13, 8), dim=-1)
    txt = F.normalize(torch.randn(13, 8), dim=-1)
    scale = torch.tensor(14.3)
    expected = hand_infonce(img, txt, 14.3)
    assert ContrastiveLoss()(img, txt, scale).item() == approx(expected)
    assert ContrastiveLoss(loss_weight=0.5)(img, txt, scale).item() == approx(0.5 * expected)


def test_local_rows_against_gathered_columns():
    """The cross-rank form: rank r's rows with labels offset r * B; averaged over ranks = global loss."""
    torch.manual_seed(2)
    img = F.normalize(torch.randn(12, 8), dim=-1)
    txt = F.normalize(torch.randn(12, 8), dim=-1)
    scale = torch.tensor(7.0)
    local = [infonce_loss(img[r * 4:(r + 1) * 4], txt[r * 4:(r + 1) * 4], scale, img, txt, label_offset=4 * r)
             for r in range(3)]
    assert (sum(local) / 3).item() == approx(hand_infonce(img, txt, 7.0))


def test_clim_loss_uses_clim_features_and_logit_scale(tiny_clim):
    model = tiny_clim
    with torch.no_grad():
        model.clip.logit_scale.fill_(math.log(20.0))
    data = model.data_preprocessor(random_batch(32), True)
    losses = model(**data, mode='loss')
    img, txt = model(**data, mode='tensor')
    assert img.shape == txt.shape == (32, 32)
    torch.testing.assert_close(img.norm(dim=-1), torch.ones(32))
    assert losses['loss_contrast'].item() == approx(hand_infonce(img.detach(), txt, 20.0))
    assert losses['logit_scale'].item() == approx(20.0)
    # text tower frozen: no graph through the text features
    assert not txt.requires_grad and img.requires_grad


def test_clim_weights_that_train(tiny_clim):
    trainable = {n for n, p in tiny_clim.named_parameters() if p.requires_grad}
    assert 'clip.clip.logit_scale' in trainable
    assert any(n.startswith('clip.clip.visual.transformer.resblocks.2.') for n in trainable)
    assert any(n.startswith('clip.clip.visual.transformer.resblocks.1.') for n in trainable)
    assert not any(n.startswith('clip.clip.visual.transformer.resblocks.0.') for n in trainable)
    frozen = ('clip.clip.visual.ln_post', 'clip.clip.visual.proj', 'clip.clip.transformer.',
              'clip.clip.token_embedding', 'clip.clip.text_projection')
    assert not any(n.startswith(frozen) for n in trainable)
