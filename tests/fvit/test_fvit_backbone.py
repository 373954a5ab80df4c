"""The frozen-CLIP backbone and its simple-pyramid neck: pyramid shapes / strides, dense map, and a CLIP
that never changes."""
from __future__ import annotations

import copy

import pytest
import torch


def _backbone(clip_cfg: dict, **kwargs):
    """The tiny CLIP backbone followed by its pyramid neck, as F-ViT chains them."""
    from ovdet.models import CLIPViTBackbone, SimplePyramid

    backbone = CLIPViTBackbone(clip_cfg=dict(model_cfg=clip_cfg), out_indices=(0, 1, 1, 2), **kwargs)
    return torch.nn.ModuleDict(dict(backbone=backbone, neck=SimplePyramid(
        backbone.out_channels, norm_cfg=dict(type='BN'), init_cfg=kwargs.get('init_cfg'))))


def test_pyramid_shapes_and_strides_on_non_square_input(tiny_clip_cfg: dict) -> None:
    model = _backbone(tiny_clip_cfg).eval()
    backbone, neck = model['backbone'], model['neck']
    x = torch.randn(2, 3, 96, 160)
    with torch.no_grad():
        feats = neck(backbone(x))
        tokens, dense = backbone.forward_with_dense(x)
        feats2 = neck(tokens)
    assert neck.strides == (4, 8, 16, 32)
    assert [tuple(f.shape) for f in feats] == [(2, 64, 96 // s, 160 // s) for s in (4, 8, 16, 32)]
    for a, b in zip(feats, feats2):
        torch.testing.assert_close(a, b)
    # The dense map: the wrapper's v2 dense features, one unit vector per stride-16 cell.
    assert dense.shape == (2, 32, 6, 10)
    torch.testing.assert_close(dense.norm(dim=1), torch.ones(2, 6, 10))
    torch.testing.assert_close(dense, backbone.clip.dense_features(x, mode='v2'))
    with pytest.raises(ValueError, match='multiple of 16'):
        backbone(torch.randn(1, 3, 100, 160))


def test_patch14_clip_keeps_stride16_levels(tiny_clip_cfg: dict) -> None:
    cfg = copy.deepcopy(tiny_clip_cfg)
    cfg['vision_cfg'].update(patch_size=14, image_size=56)
    model = _backbone(cfg).eval()
    with torch.no_grad():
        tokens, dense = model['backbone'].forward_with_dense(torch.randn(1, 3, 96, 160))
        feats = model['neck'](tokens)
    assert [tuple(f.shape[-2:]) for f in feats] == [(24, 40), (12, 20), (6, 10), (3, 5)]
    assert tuple(dense.shape[-2:]) == (6, 10)


def test_clip_is_frozen_eval_and_not_in_the_optimizer(tiny_clip_cfg: dict) -> None:
    from mmengine.optim import DefaultOptimWrapperConstructor

    from ovdet.models import TrainableParamsOptimWrapperConstructor

    model = _backbone(tiny_clip_cfg)
    backbone, neck = model['backbone'], model['neck']
    model.train()
    assert all(not p.requires_grad for p in backbone.clip.parameters())
    assert not any(m.training for m in backbone.clip.modules())
    assert all(m.training for m in neck.adapters.modules())

    feats = neck(backbone(torch.randn(2, 3, 64, 96)))
    sum(f.square().mean() for f in feats).backward()
    assert all(p.grad is None for p in backbone.clip.parameters())
    assert all(p.grad is not None for p in neck.adapters.parameters())

    adapters = {id(p) for p in neck.adapters.parameters()}
    clip = {id(p) for p in backbone.clip.parameters()}
    optim_cfg = dict(optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.1))
    for paramwise in (None, dict(norm_decay_mult=0.0)):
        wrapper = TrainableParamsOptimWrapperConstructor(copy.deepcopy(optim_cfg), paramwise)(model)
        handed = {id(p) for g in wrapper.optimizer.param_groups for p in g['params']}
        assert handed == adapters
    # MMEngine's stock constructor would hand the frozen CLIP to the optimizer: why ours exists.
    stock = DefaultOptimWrapperConstructor(copy.deepcopy(optim_cfg))(model)
    assert clip <= {id(p) for g in stock.optimizer.param_groups for p in g['params']}


def test_init_weights_never_touches_clip(tiny_clip_cfg: dict) -> None:
    xavier = dict(type='Xavier', layer=['Conv2d', 'Linear', 'ConvTranspose2d'])
    model = _backbone(tiny_clip_cfg, init_cfg=xavier)
    backbone, neck = model['backbone'], model['neck']
    keys = list(backbone.state_dict())
    clip_before = {k: v.clone() for k, v in backbone.clip.state_dict().items()}
    adapter_before = neck.adapters[1].weight.detach().clone()
    backbone.init_weights()
    neck.init_weights()
    assert list(backbone.state_dict()) == keys
    for k, v in backbone.clip.state_dict().items():
        assert torch.equal(v, clip_before[k]), k
    assert not torch.equal(neck.adapters[1].weight, adapter_before)


def test_patch_token_grid_runs_the_input_unresized(tiny_clip_cfg: dict) -> None:
    # token_grid='patch' (the EVA F-ViT L/14 recipe): no resize, every level at the patch stride 14.
    cfg = copy.deepcopy(tiny_clip_cfg)
    cfg['vision_cfg'].update(patch_size=14, image_size=56)
    model = _backbone(cfg, token_grid='patch').eval()
    backbone = model['backbone']
    x = torch.randn(1, 3, 84, 140)
    with torch.no_grad():
        tokens, dense = backbone.forward_with_dense(x)
        feats = model['neck'](tokens)
        maps, final = backbone.clip.vit_tokens(x, backbone.out_indices)
    assert [tuple(f.shape[-2:]) for f in feats] == [(24, 40), (12, 20), (6, 10), (3, 5)]  # strides 3.5-28
    for a, b in zip(tokens, maps):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(dense, backbone.clip.dense_features(x))
    with pytest.raises(ValueError, match='token stride 14'):
        backbone(torch.randn(1, 3, 96, 140))
    with pytest.raises(ValueError, match="token_grid must be 'stride16' or 'patch'"):
        _backbone(cfg, token_grid='native')


def test_patch_token_grid_detector_trains_and_predicts_at_fractional_strides(tiny_clip_cfg: dict,
                                                                             tmp_path) -> None:
    import numpy as np
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    from tests.helpers import REPO_ROOT, total_loss

    register_all_modules()
    clip_cfg = copy.deepcopy(tiny_clip_cfg)
    clip_cfg['vision_cfg'].update(patch_size=14, image_size=56)
    emb = np.random.default_rng(0).normal(size=(3, 32)).astype(np.float32)
    np.save(tmp_path / 'emb.npy', emb / np.linalg.norm(emb, axis=1, keepdims=True))
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/tiny/fvit_tiny_shapes.py')).model
    cfg.backbone.clip_cfg = dict(model_cfg=clip_cfg)
    cfg.backbone.update(out_indices=(0, 1, 1, 2), token_grid='patch')
    cfg.data_preprocessor.pad_size_divisor = 28
    cfg.rpn_head.anchor_generator.strides = [3.5, 7, 14, 28, 56][:len(cfg.rpn_head.anchor_generator.strides)]
    cfg.roi_head.bbox_roi_extractor.featmap_strides = [3.5, 7, 14, 28]
    cfg.roi_head.bbox_head.update(class_embeddings=str(tmp_path / 'emb.npy'), num_classes=3, class_weights=None)
    model = MODELS.build(cfg)
    model.init_weights()
    packed = demo_mm_inputs(2, [[3, 84, 112]] * 2, num_classes=3, with_mask=False)
    model.train()
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    total = total_loss(losses)
    assert torch.isfinite(total) and total > 0
    total.backward()
    model.eval()
    with torch.no_grad():
        out = model(**model.data_preprocessor(packed, False), mode='predict')
    assert len(out) == 2 and out[0].pred_instances.bboxes.shape[-1] == 4
