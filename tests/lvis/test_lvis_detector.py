"""The OV-LVIS F-ViT: configs (NAS-FPN, class-agnostic mask head, LVIS test settings), class weights from
the category-info file, mask prediction, and the tiny config trained and evaluated end to end."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from lvis_test_utils import REPO_ROOT, TINY_LVIS_CONFIG, run_tool

REAL = REPO_ROOT / 'configs' / 'fvit' / 'fvit_vitb16_clim_ovlvis.py'


def test_real_config_is_the_reference_recipe() -> None:
    from mmengine.config import Config

    cfg = Config.fromfile(str(REAL))
    m = cfg.model
    pyramid, fpn = m.neck  # the simple pyramid, then the NAS-FPN
    assert pyramid.type == 'SimplePyramid' and pyramid.in_channels == 768
    assert fpn.type == 'NASFPN' and fpn.stack_times == 7 and fpn.num_outs == 5
    assert m.backbone.clip_cfg.pretrained == 'ckpt/openai_vitb16_cc3m_clim.pt'
    assert m.backbone.clip_cfg.quick_gelu is False  # the reference's GELU quirk
    head = m.roi_head.bbox_head
    assert head.type == 'CategoryInfoBBoxHead' and head.num_classes == 1203 and head.bg_weight == 0.9
    assert head.ensemble == dict(alpha=0.35, beta=0.65, clip_temperature=50.0)
    mask = m.roi_head.mask_head
    assert mask.class_agnostic and mask.num_convs == 4 and m.roi_head.mask_roi_extractor.roi_layer.output_size == 14
    assert m.test_cfg.rcnn.max_per_img == 300 and m.test_cfg.rcnn.score_thr == 1e-4
    assert m.test_cfg.rcnn.nms.iou_threshold == 0.5 and m.test_cfg.rcnn.mask_thr_binary == 0.5
    ds = cfg.train_dataloader.dataset
    assert ds.type == 'ClassBalancedDataset' and ds.oversample_thr == 1e-3
    assert ds.dataset.filter_cfg == dict(filter_empty_gt=True, min_size=32)
    assert cfg.train_cfg.max_epochs == 48 and cfg.train_cfg.val_interval == 12
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=128)
    assert cfg.val_evaluator.type == 'OVLVISMetric' and cfg.val_evaluator.max_dets == 300
    tiny = Config.fromfile(str(TINY_LVIS_CONFIG))
    assert tiny.model.neck[1].type == 'NASFPN' and tiny.model.roi_head.mask_head.class_agnostic


def test_real_config_fails_fast_without_data(tmp_path: Path) -> None:
    with pytest.raises(AssertionError) as err:
        run_tool([str(REPO_ROOT / 'tools' / 'train.py'), str(REAL), '--work-dir', str(tmp_path / 'w')],
                 cwd=tmp_path, timeout=300)
    assert re.search(r"(openai_vitb16_cc3m_clim\.pt'? not found|not found: \S*lvis_v1_train_base_cat_info\.json)",
                     str(err.value)), str(err.value)[-3000:]


def test_category_info_sets_the_class_weights(lvis_workspace: dict, tmp_path: Path) -> None:
    from mmdet.registry import MODELS

    info_path = lvis_workspace['lvis_root'] / 'annotations' / 'lvis_v1_train_base_cat_info.json'
    src = json.loads(lvis_workspace['train_json'].read_text())['categories']
    cfg = dict(type='CategoryInfoBBoxHead', category_info=str(info_path),
               class_embeddings=str(lvis_workspace['lvis_root'] / 'shapes_tiny.npy'), num_classes=10,
               in_channels=8, roi_feat_size=7, conv_out_channels=8, fc_out_channels=16)
    head = MODELS.build(cfg)
    # Weight 1 = trained with boxes: a common / frequent category with train images (the reference's count > 0).
    expected = [c['frequency'] != 'r' and c['image_count'] > 0 for c in sorted(src, key=lambda c: c['id'])]
    assert head.base_mask.tolist() == expected and not all(expected)
    with pytest.raises(ValueError, match='lists 10 categories, num_classes is 9'):
        MODELS.build({**cfg, 'num_classes': 9})
    with pytest.raises(FileNotFoundError, match='gone.json'):
        MODELS.build({**cfg, 'category_info': str(tmp_path / 'gone.json')})


def _tiny_model_and_batch(lvis_workspace: dict, with_mask: bool = True):
    from mmdet.registry import DATASETS, MODELS
    from mmengine.config import Config

    cfg = Config.fromfile(str(TINY_LVIS_CONFIG))
    ws = lvis_workspace
    cfg.model.backbone.clip_cfg.pretrained = str(ws['clip_ckpt'])
    cfg.model.roi_head.bbox_head.class_embeddings = str(ws['lvis_root'] / 'shapes_tiny.npy')
    cfg.model.roi_head.bbox_head.category_info = str(ws['lvis_root'] / 'annotations' /
                                                     'lvis_v1_train_base_cat_info.json')
    if not with_mask:
        cfg.model.roi_head.pop('mask_head')
        cfg.model.roi_head.pop('mask_roi_extractor')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    ds_cfg = cfg.val_dataloader.dataset
    ds_cfg.data_root = str(ws['lvis_root']) + '/'
    # Test at 96 px: a scale factor != 1 between the 128 px originals and the network input.
    for t in ds_cfg.pipeline:
        if t.type in ('Resize', 'Pad'):
            t['scale' if t.type == 'Resize' else 'size'] = (96, 96)
    ds = DATASETS.build(ds_cfg)
    return model, ds


def test_predict_adds_original_size_masks_and_keeps_the_boxes(lvis_workspace: dict) -> None:
    from mmengine.dataset import pseudo_collate

    model, ds = _tiny_model_and_batch(lvis_workspace)
    # A looser test-time setting so an untrained head still returns detections.
    model.roi_head.test_cfg.score_thr = 0.0
    no_mask, _ = _tiny_model_and_batch(lvis_workspace, with_mask=False)
    no_mask.load_state_dict(model.state_dict(), strict=False)
    no_mask.roi_head.test_cfg.score_thr = 0.0
    batch = pseudo_collate([ds[0], ds[1]])
    with torch.no_grad():
        out = model.test_step(batch)
        ref = no_mask.test_step(pseudo_collate([ds[0], ds[1]]))
    for o, r in zip(out, ref):
        pred = o.pred_instances
        assert len(pred) > 0
        assert tuple(pred.masks.shape[1:]) == tuple(o.ori_shape) != tuple(o.img_shape)
        assert pred.masks.dtype == torch.bool
        torch.testing.assert_close(pred.bboxes, r.pred_instances.bboxes)
        torch.testing.assert_close(pred.scores, r.pred_instances.scores)


def test_tiny_config_trains_with_masks_and_reports_finite_mask_ap(lvis_trained: dict) -> None:
    log = lvis_trained['log']
    mask_losses = [float(v) for v in re.findall(r'\bloss_mask: ([0-9.]+)', log)]
    assert len(mask_losses) >= 2 and all(math.isfinite(v) for v in mask_losses), log[-3000:]
    for key in ('segm_APr', 'segm_AP', 'bbox_APr', 'bbox_AP'):
        found = re.findall(rf'ov_lvis/{key}: ([0-9.]+|nan)', log)
        assert found and math.isfinite(float(found[-1])), (key, log[-3000:])


def test_test_tool_prints_mask_and_box_apr(lvis_workspace: dict, lvis_trained: dict) -> None:
    work = Path(lvis_trained['work_dir']).with_name('fvit_tiny_ovlvis_test')
    prefix = work / 'dets'
    proc = run_tool([str(REPO_ROOT / 'tools' / 'test.py'), str(TINY_LVIS_CONFIG), str(lvis_trained['checkpoint']),
                     '--work-dir', str(work), '--cfg-options', f'test_evaluator.outfile_prefix={prefix}'],
                    cwd=lvis_workspace['root'])
    out = proc.stdout + proc.stderr
    for key in ('segm_APr', 'bbox_APr'):
        found = re.findall(rf"ov_lvis/{key}'?: ([0-9.]+)", out)
        assert found and math.isfinite(float(found[-1])), out[-3000:]
    assert 'OV-LVIS (4 images' in out
    # The numbers come from real detections: masks at the original size, at most 300 per image.
    segm = json.loads(Path(f'{prefix}.segm.json').read_text())
    val = json.loads(lvis_workspace['val_json'].read_text())
    size = {im['id']: [im['height'], im['width']] for im in val['images']}
    assert segm and all(d['segmentation']['size'] == size[d['image_id']] for d in segm)
    per_image = [sum(d['image_id'] == i for d in segm) for i in size]
    assert max(per_image) <= 300
