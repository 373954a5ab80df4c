"""The real-scale F-ViT configs: the recipe's numbers, and the ViT-B/16 model builds."""
from __future__ import annotations

import numpy as np
import pytest
from fvit_test_utils import REPO_ROOT

CONFIGS = REPO_ROOT / 'configs' / 'fvit'


@pytest.mark.parametrize('name,pretrained,quick_gelu', [
    ('fvit_vitb16_ovcoco.py', 'ckpt/ViT-B-16.pt', False),  # CLIM's reference: plain GELU
    ('fvit_vitb16_clim_ovcoco.py', 'ckpt/openai_vitb16_coco_clim.pt', False),
    ('fvit_vitl14_ovcoco.py', 'ckpt/ViT-L-14.pt', True),  # not a reference config
])
def test_recipe(name: str, pretrained: str, quick_gelu: bool) -> None:
    from mmengine.config import Config

    cfg = Config.fromfile(str(CONFIGS / name))
    model = cfg.model
    assert model.backbone.clip_cfg.pretrained == pretrained and model.backbone.clip_cfg.quick_gelu is quick_gelu
    head = model.roi_head.bbox_head
    # All 80 COCO classes live; 48 base train, 17 novel + 15 unevaluated have weight 0.
    assert head.num_classes == 80 and len(head.class_weights) == 80 and head.class_weights.count(0.0) == 32
    assert head.bg_weight == 0.6 and head.temperature == 50.0 and head.reg_class_agnostic
    assert (head.num_shared_convs, head.num_shared_fcs) == (4, 2)
    assert head.ensemble == dict(alpha=0.1, beta=0.8, clip_temperature=75.0)
    rcnn = dict(score_thr=0.01, nms=dict(type='nms', iou_threshold=0.4), max_per_img=100)
    assert model.test_cfg.rcnn == rcnn
    assert model.rpn_head.num_convs == 2 and [n.type for n in model.neck] == ['SimplePyramid', 'FPN']
    assert len(model.neck[1].in_channels) == 4 and model.neck[0].in_channels == model.neck[1].in_channels[0]
    assert model.data_preprocessor.mean == [122.7709383, 116.7460125, 104.09373615]

    optim = cfg.optim_wrapper
    assert optim.optimizer == dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1)
    assert optim.clip_grad.max_norm == 1.0 and cfg.auto_scale_lr.base_batch_size == 64
    assert cfg.train_cfg.max_epochs == 3 and cfg.param_scheduler[0].end == 250
    lsj = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert lsj['RandomResize'].ratio_range == (0.1, 2.0) and lsj['RandomResize'].scale == (640, 640)
    assert lsj['RandomCrop'].crop_size == (640, 640) and lsj['RandomFlip'].prob == 0.5 and 'Pad' in lsj
    test = {t.type: t for t in cfg.test_dataloader.dataset.pipeline}
    assert test['Resize'].scale == (640, 640) and test['Resize'].keep_ratio and 'Pad' in test
    assert cfg.train_dataloader.dataset.type == 'OVCocoDataset' and cfg.val_evaluator.type == 'OVCocoMetric'
    assert cfg.train_dataloader.dataset.metainfo.classes == cfg.test_dataloader.dataset.metainfo.classes


def test_vitb16_model_builds_with_random_weights() -> None:
    from mmdet.registry import MODELS
    from mmengine.config import Config

    cfg = Config.fromfile(str(CONFIGS / 'fvit_vitb16_ovcoco.py'))
    cfg.model.backbone.clip_cfg.pretrained = None
    cfg.model.roi_head.bbox_head.class_embeddings = np.eye(80, 512, dtype=np.float32)
    model = MODELS.build(cfg.model)
    assert model.backbone.clip.vision_width == 768 and model.backbone.out_indices == (3, 5, 7, 11)
    # The reference's plain GELU, not QuickGELU, in every block of the detector's ViT.
    acts = {type(b.mlp.gelu).__name__ for b in model.backbone.clip.visual.transformer.resblocks}
    assert acts == {'GELU'}
    assert model.roi_head.bbox_head.classifier.embed_dim == 512
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.backbone.clip.parameters())
    assert frozen > 140e6 and not any(p.requires_grad for p in model.backbone.clip.parameters())
    assert 10e6 < trainable < frozen


@pytest.mark.parametrize('name', ['fvit_eva_vitl14_ovcoco.py', 'fvit_eva_vitl14_ovlvis.py'])
def test_eva_l14_runs_the_reference_token_grid(name: str) -> None:
    # CLIPSelf's L/14 F-ViT: 896 px at patch 14 (64 x 64 tokens); every stride follows the patch stride.
    import open_clip
    import timm
    import torch
    from mmengine.config import Config

    cfg = Config.fromfile(str(CONFIGS / name))
    m = cfg.model
    vision = open_clip.get_model_config(m.backbone.clip_cfg.model_name)['vision_cfg']
    with torch.device('meta'):  # the real architecture, no weights
        patch = timm.create_model(vision['timm_model_name']).patch_embed.patch_size[0]
    assert patch == 14 and m.backbone.token_grid == 'patch'
    levels = [patch / 4, patch / 2, patch, patch * 2]
    assert m.rpn_head.anchor_generator.strides == levels + [patch * 4]
    extractors = [m.roi_head.bbox_roi_extractor] + ([m.roi_head.mask_roi_extractor] if 'mask_roi_extractor'
                                                    in m.roi_head else [])
    assert all(e.featmap_strides == levels for e in extractors)
    pad = next(t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'Pad')
    assert pad.size == (896, 896) and 896 % (2 * patch) == 0  # an even 64 x 64 grid for the 2x max-pool
