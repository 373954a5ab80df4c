"""The BARON-KD detector: reference config values, the two branches, the teacher targets, and the tiny
config through tools/train.py."""
from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from baron_test_utils import REPO_ROOT, TINY_CLIP_CFG, TINY_CONFIG, run_tool


def test_reference_config_settings() -> None:
    from mmengine.config import Config

    base = Config.fromfile(str(REPO_ROOT / 'configs' / 'baron' / 'baron_kd_r50fpn_ovcoco.py'))
    clim = Config.fromfile(str(REPO_ROOT / 'configs' / 'baron' / 'baron_kd_r50fpn_clim_ovcoco.py'))
    m = base.model
    assert m.backbone.norm_cfg.type == 'SyncBN' and m.backbone.frozen_stages == -1 and not m.backbone.norm_eval
    assert m.backbone.init_cfg is None and m.soco_checkpoint == 'ckpt/res50_fpn_soco_star_400.pth'
    assert m.neck.norm_cfg.type == 'SyncBN' and m.rpn_head.type == 'DetachedObjectnessRPNHead'
    head = m.roi_head.bbox_head
    assert (head.type, head.num_shared_convs, head.num_shared_fcs, head.bg_weight) == ('BaronBBoxHead', 4, 1, 0.7)
    assert head.norm_cfg == dict(type='BN', requires_grad=False) and head.words_per_region == 6
    # the 80 COCO classes: 48 base with weight 1, 17 novel + 15 unevaluated with 0, all 80 predicted at test
    assert head.num_classes == 80 == len(base.val_dataloader.dataset.metainfo.classes)
    assert sum(head.class_weights) == 48 and head.class_weights[base.coco_classes.index('traffic light')] == 0
    assert base.coco_classes[:3] == ('person', 'bicycle', 'car') and base.coco_classes[-1] == 'toothbrush'
    assert m.teacher.model_name == 'ViT-B-32' and m.single_mask == 'reference' and m.bag_mask == 'reference'
    assert m.boxes_cache.start_calls == 20000 and m.test_cfg.rcnn.score_thr == 0.01
    dl = base.train_dataloader
    assert dl.batch_size == 4 and dl.batch_sampler.per_source == (2, 2)
    assert [d.type for d in dl.dataset.datasets] == ['OVCocoDataset', 'BaseAnnotationsCocoDataset']
    assert dl.dataset.datasets[1].filter_cfg.filter_empty_gt is False
    resize = dl.dataset.datasets[0].pipeline[2]
    assert resize.type == 'RandomChoiceResize' and [s[1] for s in resize.scales] == list(range(640, 801, 32))
    assert base.optim_wrapper.type == 'AmpOptimWrapper' and base.optim_wrapper.clip_grad is None
    assert base.optim_wrapper.optimizer == dict(type='SGD', lr=0.04, momentum=0.9, weight_decay=2.5e-5)
    assert base.param_scheduler[0].end == 1000 and base.train_cfg.max_iters == 90000
    # the CLIM variant changes only the CLIP weights (and the embeddings made from them)
    diff = {k for k in clim.model if clim.model[k] != m[k]}
    assert diff == {'teacher', 'roi_head'}
    assert clim.model.roi_head.bbox_head.class_embeddings != head.class_embeddings
    tiny = Config.fromfile(str(TINY_CONFIG))
    assert tiny.tiny_clip_cfg.to_dict() == TINY_CLIP_CFG


def _batch(cfg, model, num_each: int = 2):
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate

    import ovdet.datasets.baron_kd_sources  # noqa: F401

    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    det, kd = dataset.source_range('det'), dataset.source_range('kd')
    data = pseudo_collate([dataset[i] for i in [*det[:num_each], *kd[:num_each]]])
    return model.data_preprocessor(data, True)


@pytest.fixture
def model(tiny_cfg, baron_workspace, monkeypatch):
    from mmdet.registry import MODELS

    monkeypatch.chdir(baron_workspace['root'])
    m = MODELS.build(tiny_cfg.model)
    m.init_weights()
    return m.train()


def test_kd_losses_reach_student_not_rpn_or_teacher(model, tiny_cfg) -> None:
    data = _batch(tiny_cfg, model)
    losses = model.kd_loss(data['inputs']['kd'], data['data_samples']['kd'])
    assert set(losses) == {'loss_bag', 'loss_single'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    (losses['loss_bag'] + losses['loss_single']).backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0 and model.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    head = model.roi_head.bbox_head
    assert head.fc_cls.proj.weight.grad.abs().sum() > 0 and head.shared_fcs[0].weight.grad.abs().sum() > 0
    assert model.positional.net[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.rpn_head.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())
    stats = model.last_bag_stats
    assert int(model.bag_loss.teacher_queue.count) == stats['sequences']
    assert int(model.single_loss.student_queue.count) == min(stats['regions'], 16)


def test_detection_branch_sees_only_det_images(model, tiny_cfg) -> None:
    from mmdet.models.detectors import TwoStageDetector

    data = _batch(tiny_cfg, model)
    torch.manual_seed(0)
    both = model.loss(data['inputs'], data['data_samples'])
    torch.manual_seed(0)
    det_only = TwoStageDetector.loss(model, data['inputs']['det'], data['data_samples']['det'])
    for key in ('loss_cls', 'loss_bbox'):
        torch.testing.assert_close(both[key], det_only[key])
    assert 'loss_bag' in both and 'loss_bag' not in det_only


def test_teacher_crop_embedding_and_cls_residual_tokens(model) -> None:
    from ovdet.models.baron.teacher import crop_embeddings_and_tokens, pool_member_tokens

    clip = model.teacher
    g = torch.Generator().manual_seed(0)
    crops = torch.randn(2, 3, *clip.image_size, generator=g)
    v, tokens = crop_embeddings_and_tokens(clip, crops)
    torch.testing.assert_close(v, clip.encode_image(crops, normalize=True), atol=1e-5, rtol=1e-4)
    visual = clip.visual
    x = visual.conv1(crops).flatten(2).transpose(1, 2)
    x = torch.cat([visual.class_embedding.expand(2, 1, -1), x], 1) + visual.positional_embedding
    x = visual.ln_pre(x)
    blocks = list(visual.transformer.resblocks)
    for b in blocks[:-1]:
        x = b(x)
    last = blocks[-1]
    w = last.attn.embed_dim
    val = F.linear(last.ln_1(x[:, 1:]), last.attn.in_proj_weight[2 * w:], last.attn.in_proj_bias[2 * w:])
    y = x[:, :1] + last.attn.out_proj(val)
    y = y + last.mlp(last.ln_2(y))
    ref = visual.ln_post(y) @ visual.proj  # (2, h*w, D)
    gh, gw = tokens.shape[-2:]
    torch.testing.assert_close(tokens.flatten(2).transpose(1, 2), ref, atol=1e-5, rtol=1e-4)
    # member box = token cell (0, 1) of crop 1: aligned RoIAlign, 2x2 samples at continuous (1.25 | 1.75,
    # 0.25 | 0.75) = index (0.75 | 1.25, -0.25 -> 0 | 0.25): columns 0/1/2 weigh 1/8, 6/8, 1/8, rows 0/1 7/8, 1/8
    box = torch.tensor([[1 / gw, 0.0, 2 / gw, 1 / gh]])
    r = pool_member_tokens(tokens, torch.tensor([1]), box)
    wx, wy = torch.tensor([0.125, 0.75, 0.125]), torch.tensor([0.875, 0.125])
    hand = (tokens[1, :, :2, :3] * wy[:, None] * wx[None]).sum((1, 2))
    torch.testing.assert_close(r[0], F.normalize(hand, dim=0), atol=1e-5, rtol=1e-4)


def test_test_time_predictions(model, tiny_cfg) -> None:
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate

    model.eval()
    dataset = DATASETS.build(tiny_cfg.val_dataloader.dataset)
    data = model.data_preprocessor(pseudo_collate([dataset[0]]), False)
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    assert 0 < out.bboxes.shape[0] <= 100 and (out.scores > 0.01).all()
    assert out.labels.max() < 10


@pytest.fixture(scope='module')
def baron_trained(baron_workspace):
    work = baron_workspace['root'] / 'work_dirs' / 'baron_kd_tiny_shapes'
    proc = run_tool([str(REPO_ROOT / 'tools' / 'train.py'), str(TINY_CONFIG), '--work-dir', str(work),
                     '--cfg-options', f'model.teacher.pretrained={baron_workspace["clip_ckpt"]}',
                     f'model.roi_head.bbox_head.class_embeddings={baron_workspace["attn12"]}'],
                    cwd=baron_workspace['root'])
    ckpt = work / 'iter_4.pth'
    assert ckpt.is_file(), proc.stdout[-3000:]
    return dict(work_dir=work, checkpoint=ckpt, log=proc.stdout + proc.stderr)


def test_tiny_config_trains_and_evaluates(baron_workspace, baron_trained, tiny_cfg, monkeypatch) -> None:
    from clim.engine import safe_torch_load
    from mmdet.registry import MODELS

    log = baron_trained['log']
    bag = [float(v) for v in re.findall(r'\bloss_bag: ([0-9.]+)', log)]
    single = [float(v) for v in re.findall(r'\bloss_single: ([0-9.]+)', log)]
    assert len(bag) == 4 and len(single) == 4, log[-3000:]
    assert all(0 < v < 1e4 for v in bag + single)
    assert re.search(r'ov_coco/novel_ap50: ([0-9.]+)', log), log[-3000:]
    ckpt = safe_torch_load(baron_trained['checkpoint'])
    state = ckpt['state_dict']
    reference = torch.load(baron_workspace['clip_ckpt'], weights_only=True)['state_dict']
    for key, value in reference.items():
        assert torch.equal(state['teacher.clip.' + key], value), key
    assert int(state['bag_loss.teacher_queue.count']) > 0 and 'single_loss.student_queue.ids' in state
    monkeypatch.chdir(baron_workspace['root'])
    model = MODELS.build(tiny_cfg.model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and not any(n.startswith('teacher.') for n in trainable)
    assert not any('shared_convs' in n and '.bn.' in n for n in trainable)  # frozen head BN
    handed = sum(len(g['params']) for g in ckpt['optimizer']['param_groups'])
    assert handed == len(trainable)
