"""F-ViT on a padded, non-square batch: the CLIP region features of each proposal come from the dense
map cells over that proposal, at the stride of the padded batch input (not of one image's shape).

Pooling is checked against RoIAlign on the part of the dense map that covers each unpadded image
(boxes kept half a cell inside it, so bilinear sampling never reaches the padding); the scores that
the box head fuses from these features are tested in test_fvit_head.py.
"""
from __future__ import annotations

import math

import pytest
import torch
from mmdet.structures import DetDataSample

from clim.models.dense import pool_boxes

STRIDE = 16


def _batch(model, shapes: list[tuple[int, int]], seed: int = 0) -> dict:
    """Images of ``shapes`` (h, w) through the detector's own data preprocessor (pads to /32)."""
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i, (h, w) in enumerate(shapes):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        samples.append(DetDataSample(metainfo=dict(img_id=i, img_shape=(h, w), ori_shape=(h, w),
                                                   scale_factor=(1.0, 1.0))))
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), False)


def _boxes_inside(h: int, w: int, n: int, seed: int) -> torch.Tensor:
    """n boxes ending at least half a cell before the image's right / bottom edge."""
    g = torch.Generator().manual_seed(seed)
    lo = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.5, h * 0.5])
    size = 8 + torch.rand(n, 2, generator=g) * torch.tensor([w * 0.5 - 16, h * 0.5 - 16])
    return torch.cat([lo, lo + size], dim=1)


@pytest.fixture
def fvit_model(tiny_model_cfg):
    from mmdet.registry import MODELS

    torch.manual_seed(0)
    return MODELS.build(tiny_model_cfg.model).eval()


def test_clip_region_features_use_the_padded_batch_stride(fvit_model) -> None:
    from ovdet.models import FViTRoIHead

    # The first image is smaller than the batch but has its aspect ratio: a stride taken from its
    # img_shape (48 / 4 = 12 px per cell) would pass the shape check and pool the wrong cells.
    shapes = [(48, 72), (64, 96)]
    data = _batch(fvit_model, shapes)
    metas = [s.metainfo for s in data['data_samples']]
    assert all(m['batch_input_shape'] == (64, 96) for m in metas)
    assert metas[0]['img_shape'] == (48, 72)
    with torch.no_grad():
        _, dense = fvit_model.backbone.forward_with_dense(data['inputs'])
    assert dense.shape[-2:] == (64 // STRIDE, 96 // STRIDE)
    boxes = [_boxes_inside(h, w, 5, seed=i) for i, (h, w) in enumerate(shapes)]
    got = FViTRoIHead.clip_region_features(dense, boxes, metas)
    assert got.shape == (10, dense.shape[1])
    for i, (h, w) in enumerate(shapes):
        own = dense[i:i + 1, :, :math.ceil(h / STRIDE), :math.ceil(w / STRIDE)]
        expected = pool_boxes(own, [boxes[i]], normalized=False, stride=STRIDE)  # L2-normalized
        torch.testing.assert_close(got[5 * i:5 * (i + 1)], expected, rtol=1e-5, atol=1e-6,
                                   msg=lambda m, i=i: f'image {i}: {m}')


def test_predict_on_a_padded_non_square_batch(fvit_model) -> None:
    """Two images of other shapes and aspect ratios than the padded batch, through predict."""
    shapes = [(64, 80), (48, 96)]  # batch input (64, 96)
    data = _batch(fvit_model, shapes, seed=1)
    assert data['data_samples'][0].batch_input_shape == (64, 96)
    with torch.no_grad():
        out = fvit_model.predict(data['inputs'], data['data_samples'], rescale=True)
    assert len(out) == 2
    for (h, w), sample in zip(shapes, out):
        pred = sample.pred_instances
        assert len(pred.bboxes) > 0
        assert torch.isfinite(pred.scores).all() and (pred.scores >= 0).all() and (pred.scores <= 1).all()
        assert (pred.bboxes[:, 2] <= w + 1e-3).all() and (pred.bboxes[:, 3] <= h + 1e-3).all()
