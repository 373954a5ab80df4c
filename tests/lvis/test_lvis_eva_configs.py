"""The EVA-02 OV-LVIS configs (CLIPSelf's recipe): they parse with the recipe's values, and their model builds
through the CLIP factory with a tiny EVA-02 (the real timm architecture function, shrunk) in place of the
released weights."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lvis_test_utils import REPO_ROOT

EVA_LVIS = {'configs/fvit/fvit_eva_vitb16_ovlvis.py': ('EVA02-B-16', 0.6, (1024, 1024)),
            'configs/fvit/fvit_eva_vitl14_ovlvis.py': ('EVA02-L-14-336', 0.4, (896, 896))}
# timm's eva02_base_patch16_clip_224 with 2 blocks of width 128 (2 heads of 64) on a 4 x 4 grid.
TINY_EVA_WIDTH, TINY_EVA_EMBED = 128, 32
TINY_EVA_CFG = dict(
    embed_dim=TINY_EVA_EMBED,
    vision_cfg=dict(timm_model_name='eva02_base_patch16_clip_224', image_size=64,
                    timm_kwargs=dict(img_size=64, embed_dim=TINY_EVA_WIDTH, depth=2, num_heads=2)),
    text_cfg=dict(context_length=16, vocab_size=100, width=32, heads=1, layers=1))


@pytest.mark.parametrize('path', sorted(EVA_LVIS))
def test_eva_ovlvis_config_is_clipselfs_recipe_and_builds(path: str, tmp_path: Path) -> None:
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from clim.models.eva_clip import EvaCLIPModel

    model_name, beta, size = EVA_LVIS[path]
    cfg = Config.fromfile(str(REPO_ROOT / path))
    m = cfg.model
    assert m.backbone.clip_cfg.type == 'CLIP' and m.backbone.clip_cfg.model_name == model_name
    head = m.roi_head.bbox_head
    assert head.ensemble == dict(alpha=0.1, beta=beta, clip_temperature=50.0)
    assert head.background == 'text' and head.background_row and not head.projection and head.bg_weight == 0.9
    assert m.neck[1].type == 'FPN' and m.roi_head.mask_head.class_agnostic
    assert cfg.train_dataloader.dataset.type == 'OVLVISDataset'  # no repeat-factor sampling
    assert cfg.train_dataloader.dataset.ann_file.endswith('lvis_v1_train_base.json')
    resize, pad = cfg.test_dataloader.dataset.pipeline[1:3]
    assert resize.scale == size and pad.size == size
    assert m.data_preprocessor.mean == [123.675, 116.28, 103.53]  # ImageNet's, as CLIPSelf
    assert cfg.optim_wrapper.optimizer.lr == 1e-4 and cfg.optim_wrapper.clip_grad.max_norm == 1.0
    assert cfg.train_cfg.max_epochs == 48 and cfg.val_evaluator.type == 'OVLVISMetric'

    # The model, with the tiny EVA and a 1203-class setup written to disk (rare weight 0, background row).
    rng = np.random.default_rng(0)
    info = [{'id': i + 1, 'name': f'c{i}', 'frequency': 'rcf'[i % 3], 'image_count': 0 if i % 3 == 0 else 5,
             'instance_count': 0 if i % 3 == 0 else 9} for i in range(1203)]
    (tmp_path / 'info.json').write_text(json.dumps(info))
    emb = rng.normal(size=(1204, TINY_EVA_EMBED)).astype(np.float32)
    np.save(tmp_path / 'emb.npy', emb / np.linalg.norm(emb, axis=1, keepdims=True))
    m.backbone.clip_cfg = dict(type='CLIP', model_cfg=TINY_EVA_CFG)
    m.backbone.out_indices = (0, 1, 1, 1)
    m.neck[0].in_channels = TINY_EVA_WIDTH
    m.neck[1].in_channels = [TINY_EVA_WIDTH] * 4
    bn = dict(type='BN')
    m.neck[0].norm_cfg = m.neck[1].norm_cfg = head.norm_cfg = m.roi_head.mask_head.norm_cfg = bn
    head.update(class_embeddings=str(tmp_path / 'emb.npy'), category_info=str(tmp_path / 'info.json'),
                fc_out_channels=TINY_EVA_EMBED)
    m.test_cfg.rpn.update(nms_pre=60, max_per_img=20)  # 20 proposals x 1203 classes keep the prediction quick
    torch.manual_seed(0)
    model = MODELS.build(m)
    assert type(model.backbone.clip) is EvaCLIPModel
    assert model.roi_head.bbox_head.base_mask.sum().item() == sum(c['image_count'] > 0 for c in info)
    # One prediction: boxes and original-size masks come out of the EVA + FPN + text-classifier + mask head.
    from mmdet.structures import DetDataSample

    model.eval().roi_head.test_cfg.score_thr = 0.0
    sample = DetDataSample(metainfo=dict(img_shape=(48, 64), ori_shape=(48, 64), scale_factor=(1.0, 1.0),
                                         pad_shape=(64, 64), batch_input_shape=(64, 64)))
    with torch.no_grad():
        data = model.data_preprocessor({'inputs': [torch.rand(3, 64, 64) * 255], 'data_samples': [sample]})
        (out,) = model(**data, mode='predict')
    pred = out.pred_instances
    assert len(pred) > 0 and pred.labels.max() < 1203 and tuple(pred.masks.shape[1:]) == (48, 64)
