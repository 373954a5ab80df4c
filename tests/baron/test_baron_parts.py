"""BARON-KD's parts: detached RPN objectness, the frozen-BN box head and its loss, the SoCo loader, the
boxes cache, the two-source data."""
from __future__ import annotations

import json
import math

import pytest
import torch


def test_rpn_objectness_reads_the_detached_shared_conv(tiny_cfg) -> None:
    from mmdet.registry import MODELS

    cfg = tiny_cfg.model.rpn_head.copy()
    cfg.update(train_cfg=tiny_cfg.model.train_cfg.rpn, test_cfg=tiny_cfg.model.test_cfg.rpn)
    head = MODELS.build(cfg)
    x = torch.randn(1, cfg.in_channels, 8, 8, requires_grad=True)
    cls, reg = head.forward_single(x)
    cls.sum().backward()
    assert x.grad is None and head.rpn_conv.weight.grad is None and head.rpn_reg.weight.grad is None
    assert head.rpn_cls[0].weight.grad.abs().sum() > 0 and head.rpn_cls[2].weight.grad.abs().sum() > 0
    reg.sum().backward()
    assert x.grad.abs().sum() > 0 and head.rpn_conv.weight.grad.abs().sum() > 0
    # by hand: objectness = 1x1(relu(3x3(relu(rpn_conv(x))))), the reference's layer names
    with torch.no_grad():
        shared = torch.relu(head.rpn_conv(x))
        hand = head.rpn_cls[2](torch.relu(head.rpn_cls[0](shared)))
        torch.testing.assert_close(cls, hand)
        torch.testing.assert_close(reg, head.rpn_reg(shared))
    assert head.rpn_cls[0].weight.shape[-1] == 3 and head.rpn_cls[0].in_channels == cfg.feat_channels


@pytest.fixture
def head(tiny_cfg, baron_workspace):
    from mmdet.registry import MODELS

    cfg = tiny_cfg.model.roi_head.bbox_head.copy()
    return MODELS.build(cfg)


def test_box_head_convs_frozen_bn_and_mlp_regressor(head) -> None:
    head.train()
    assert len(head.shared_convs) == 4 and len(head.shared_fcs) == 1
    for conv in head.shared_convs:
        assert conv.conv.bias is None and not conv.bn.training
        assert not any(p.requires_grad for p in conv.bn.parameters())
    before = head.shared_convs[0].bn.running_mean.clone()
    feats = head.shared_features(torch.randn(3, 32, 7, 7))
    assert torch.equal(before, head.shared_convs[0].bn.running_mean)  # eval BN: statistics untouched
    assert feats.shape == (3, 64)
    reg = head.fc_reg
    assert [type(m).__name__ for m in reg] == ['Linear', 'ReLU', 'Linear'] and reg[-1].out_features == 4
    assert head.fc_cls.proj.out_features == 2 * 64


def test_classification_loss_masks_weight0_and_weights_background(head) -> None:
    # 10 classes, novel ids 3, 5, 8 (weight 0); background index 10 (weight 0.7)
    g = torch.Generator().manual_seed(0)
    cls_score = torch.randn(4, 11, generator=g) * 3
    labels = torch.tensor([0, 10, 2, 10])
    out = head.loss(cls_score.clone(), torch.zeros(4, 4), torch.zeros(4, 5), labels, torch.ones(4),
                    torch.zeros(4, 4), torch.zeros(4, 4))
    w = [1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0.7]
    total = 0.0
    for i, lab in enumerate(labels.tolist()):
        row = [v for c, v in enumerate(cls_score[i].tolist()) if w[c] > 0]
        m = max(row)
        lse = m + math.log(sum(math.exp(v - m) for v in row))
        total += w[lab] * (lse - cls_score[i, lab].item())
    assert abs(float(out['loss_cls']) - total / 4) < 1e-4


def _soco_state(model):
    from ovdet.models.baron import SOCO_PREFIXES

    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone()
            for k, v in model.state_dict().items() if k.startswith(SOCO_PREFIXES) and 'num_batches' not in k}


def test_soco_checkpoint_loader_strict_keys(tiny_cfg, baron_workspace, tmp_path, monkeypatch) -> None:
    from mmdet.registry import MODELS

    from ovdet.models.baron import SocoCheckpointError, load_soco_checkpoint

    monkeypatch.chdir(baron_workspace['root'])
    model = MODELS.build(tiny_cfg.model)
    state = _soco_state(model)
    assert any(k.startswith('roi_head.bbox_head.shared_convs.3.bn.') for k in state)
    assert any(k.startswith('neck.lateral_convs.0.bn.') for k in state)
    path = tmp_path / 'soco.pth'
    torch.save({'state_dict': state}, path)
    rpn_before = model.rpn_head.rpn_conv.weight.clone()
    load_soco_checkpoint(model, path)
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items())
    assert torch.equal(model.rpn_head.rpn_conv.weight, rpn_before)  # not in the file: keeps its init
    bad = dict(state)
    bad.pop('neck.fpn_convs.1.conv.weight')
    bad['roi_head.bbox_head.fc_cls.proj.weight'] = torch.zeros(1)
    torch.save({'state_dict': bad}, path)
    with pytest.raises(SocoCheckpointError, match=r'unexpected keys: roi_head\.bbox_head\.fc_cls\.proj\.weight.*'
                                                  r'missing keys: neck\.fpn_convs\.1\.conv\.weight'):
        load_soco_checkpoint(model, path)
    bad = dict(state)
    bad['backbone.conv1.weight'] = torch.zeros(2, 2)
    torch.save(bad, path)
    with pytest.raises(SocoCheckpointError, match='shape mismatches: backbone.conv1.weight'):
        load_soco_checkpoint(model, path)


def test_boxes_cache_round_trip_and_merge() -> None:
    from ovdet.models.baron.boxes_cache import BoxesCache, to_frame, to_original

    meta = dict(scale_factor=(2.0, 0.5), flip=True, img_shape=(50, 200))
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    # scaled: (20, 10, 60, 30); flipped in width 200: (140, 10, 180, 30)
    assert torch.equal(to_frame(boxes, meta), torch.tensor([[140.0, 10.0, 180.0, 30.0]]))
    torch.testing.assert_close(to_original(to_frame(boxes, meta), meta), boxes)
    cache = BoxesCache(start_calls=2, score_thr=0.85, nms_thr=0.1, max_boxes=300)
    frame_a = torch.tensor([[140.0, 10.0, 180.0, 30.0]])
    out, _ = cache.merge(7, frame_a, torch.tensor([0.9]), meta)  # call 1 < start: untouched, not stored
    cache.sync()
    assert torch.equal(out, frame_a) and not cache.store
    out, s = cache.merge(7, frame_a, torch.tensor([0.9]), meta)  # call 2: stored in original coordinates
    cache.sync()
    torch.testing.assert_close(cache.store[7][:, :4], boxes)
    # next visit, other augmentation (no flip, scale 1): the cached box joins a new one; a low one is dropped
    meta2 = dict(scale_factor=(1.0, 1.0), flip=False, img_shape=(100, 100))
    new = torch.tensor([[60.0, 60.0, 90.0, 90.0], [0.0, 0.0, 5.0, 5.0]])
    out, s = cache.merge(7, new, torch.tensor([0.95, 0.5]), meta2)
    cache.sync()
    assert out.tolist() == [[60.0, 60.0, 90.0, 90.0], [10.0, 20.0, 30.0, 60.0]] and s.tolist() == pytest.approx(
        [0.95, 0.9])
    assert cache.store[7].shape == (2, 5)


def _edit_json(src, dst, drop_image_index: int):
    coco = json.loads(src.read_text())
    img_id = coco['images'][drop_image_index]['id']
    coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] != img_id]
    dst.write_text(json.dumps(coco))
    return img_id


def test_two_source_batches_two_det_two_kd_and_kd_sees_images_without_gt(tiny_cfg, baron_workspace,
                                                                         tmp_path, monkeypatch) -> None:
    from mmdet.registry import DATA_SAMPLERS, DATASETS
    from mmengine.dataset import DefaultSampler, pseudo_collate

    import ovdet.datasets.baron_kd_sources  # noqa: F401

    root = baron_workspace['root']
    monkeypatch.chdir(root)
    ann = root / 'data' / 'shapes' / 'annotations'
    empty_id = _edit_json(ann / 'instances_val.json', tmp_path / 'kd.json', 0)
    cfg = tiny_cfg.train_dataloader.dataset
    cfg.datasets[1].ann_file = str(tmp_path / 'kd.json')
    dataset = DATASETS.build(cfg)
    det, kd = dataset.source_range('det'), dataset.source_range('kd')
    sampler = DATA_SAMPLERS.build(dict(type='TwoSourceAspectRatioBatchSampler', per_source=(2, 2)),
                                  default_args=dict(sampler=DefaultSampler(dataset, seed=0), batch_size=4))
    batches = list(sampler)
    assert len(batches) == len(det) // 2 == len(sampler)
    seen_kd = set()
    for b in batches:
        assert all(i in det for i in b[:2]) and all(i in kd for i in b[2:])
        seen_kd.update(b[2:])
    ids = {dataset.get_data_info(i)['img_id']: i for i in kd}
    assert ids[empty_id] in seen_kd  # the KD branch gets the image without any box
    assert not dataset.get_data_info(ids[empty_id])['instances']
    # novel boxes never reach the KD source
    classes = dataset.metainfo['classes']
    kd_labels = {classes[inst['bbox_label']] for i in kd for inst in dataset.get_data_info(i)['instances']}
    assert kd_labels and not kd_labels & {'star', 'ring', 'arrow'}
    # samples are tagged and the preprocessor batches the branches separately
    from mmdet.registry import MODELS
    pre = MODELS.build(tiny_cfg.model.data_preprocessor)
    data = pre(pseudo_collate([dataset[i] for i in batches[0]]), True)
    assert set(data['inputs']) == {'det', 'kd'} and data['inputs']['det'].shape[0] == 2
    assert [s.metainfo['branch'] for s in data['data_samples']['kd']] == ['kd', 'kd']


def test_aspect_groups_are_never_mixed() -> None:
    from mmengine.dataset import BaseDataset, DefaultSampler

    from ovdet.datasets.baron_kd_sources import BranchConcatDataset, TwoSourceAspectRatioBatchSampler

    class Fake(BaseDataset):
        def __init__(self, sizes):
            self.sizes = sizes
            super().__init__(serialize_data=False)

        def load_data_list(self):
            return [dict(width=w, height=h) for w, h in self.sizes]

    det = Fake([(100, 50), (50, 100), (60, 90), (90, 60), (100, 100), (40, 80)])
    kd = Fake([(50, 100), (100, 50), (80, 40), (30, 60), (70, 70)])
    ds = BranchConcatDataset([det, kd])
    sampler = TwoSourceAspectRatioBatchSampler(DefaultSampler(ds, seed=3), batch_size=4)
    batches = list(sampler)
    assert batches
    for b in batches:
        groups = {ds.get_data_info(i)['width'] < ds.get_data_info(i)['height'] for i in b}
        assert len(groups) == 1, b
