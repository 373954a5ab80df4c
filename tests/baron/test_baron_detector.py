"""The BARON-KD detector: configs, one in-process loss step, and the tiny config through tools/train.py."""
from __future__ import annotations

import re

import pytest
import torch

from baron_test_utils import REPO_ROOT, TINY_CLIP_CFG, TINY_CONFIG, run_tool


def test_configs_load_with_reference_settings() -> None:
    from mmengine.config import Config

    base = Config.fromfile(str(REPO_ROOT / 'configs' / 'baron' / 'baron_kd_r50fpn_ovcoco.py'))
    clim = Config.fromfile(str(REPO_ROOT / 'configs' / 'baron' / 'baron_kd_r50fpn_clim_ovcoco.py'))
    m = base.model
    assert m.type == 'BaronKD' and m.backbone.type == 'ResNet' and m.backbone.depth == 50
    assert m.neck.type == 'FPN' and m.roi_head.type == 'BaronRoIHead'
    head = m.roi_head.bbox_head
    assert head.type == 'TextEmbeddingBBoxHead' and head.bg_weight == 0.7 and head.num_classes == 65
    assert sum(w == 0 for w in head.class_weights) == 17 and sum(w == 1 for w in head.class_weights) == 48
    assert m.proposal_cfg.topk == 300 and m.proposal_cfg.objectness_thr == 0.85 and m.proposal_cfg.nms_thr == 0.1
    assert m.sampler_cfg.num_groups == 3 and m.sampler_cfg.num_orders == 2
    assert m.word_cfg.words_per_region == 6 and m.word_cfg.word_dropout == 0.5
    assert (m.bag_loss.temperature, m.bag_loss.loss_weight, m.bag_loss.queue_size) == (30.0, 1.0, 1024)
    assert (m.single_loss.temperature, m.single_loss.loss_weight, m.single_loss.queue_size) == (50.0, 0.1, 1024)
    assert m.teacher.type == 'CLIPModel' and m.teacher.pretrained == 'ckpt/ViT-B-16.pt'
    assert clim.model.teacher.pretrained == 'ckpt/openai_vitb16_coco_clim.pt'
    assert clim.model.teacher.model_name == 'ViT-B-16'
    assert base.val_evaluator.type == 'OVCocoMetric'
    assert base.optim_wrapper.constructor == 'TrainableParamsOptimWrapperConstructor'
    tiny = Config.fromfile(str(TINY_CONFIG))
    assert tiny.tiny_clip_cfg.to_dict() == TINY_CLIP_CFG
    assert tiny.model.backbone.init_cfg is None and tiny.model.backbone.depth == 18


def _batch(cfg, num_images: int = 2):
    """A preprocessed training batch of the tiny config (first images of its train set)."""
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate

    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return pseudo_collate([dataset[i] for i in range(num_images)])


def test_loss_step_trains_student_and_keeps_teacher_frozen(tiny_cfg, baron_workspace, monkeypatch) -> None:
    from mmdet.registry import MODELS

    monkeypatch.chdir(baron_workspace['root'])
    cfg = tiny_cfg
    cfg.model.seed = 0
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    assert not model.teacher.training
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    data = model.data_preprocessor(_batch(cfg), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    for key in ('loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_bag', 'loss_single'):
        assert key in losses
    assert torch.isfinite(losses['loss_bag']) and float(losses['loss_bag'].detach()) > 0
    assert torch.isfinite(losses['loss_single']) and float(losses['loss_single'].detach()) > 0
    total = losses['loss_bag'] + losses['loss_single']
    total.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert model.word_projector.proj.weight.grad.abs().sum() > 0
    assert model.backbone.conv1.weight.grad.abs().sum() > 0  # the bag loss reaches the backbone
    # the classifier projection gets the single-region loss
    assert model.roi_head.bbox_head.fc_cls.proj.weight.grad.abs().sum() > 0
    assert int(model.bag_loss.teacher_queue.count) > 0 and int(model.single_loss.student_queue.count) > 0
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k
    # switching the extra work off leaves the plain detector losses
    model.baron_enabled = False
    plain = model.loss(data['inputs'], data['data_samples'])
    assert 'loss_bag' not in plain and 'loss_cls' in plain


def test_batch_without_bags_gives_zero_losses_with_graph(tiny_cfg, baron_workspace, monkeypatch) -> None:
    from mmdet.registry import MODELS

    monkeypatch.chdir(baron_workspace['root'])
    tiny_cfg.model.proposal_cfg.objectness_thr = 1.01  # no proposal passes
    model = MODELS.build(tiny_cfg.model)
    model.train()
    data = model.data_preprocessor(_batch(tiny_cfg), True)
    for s in data['data_samples']:
        s.gt_instances = s.gt_instances[:0]
    losses = model.loss(data['inputs'], data['data_samples'])
    assert model.last_bag_stats['sequences'] == 0
    assert float(losses['loss_bag'].detach()) == 0.0 and float(losses['loss_single'].detach()) == 0.0
    (losses['loss_bag'] + losses['loss_single'] + losses['loss_cls']).backward()
    assert all(p.grad is not None for p in model.word_projector.parameters())


def test_teacher_crop_of_whole_image_equals_clip_on_resized_image(tiny_cfg, baron_workspace, monkeypatch) -> None:
    """The teacher sees CLIP-normalized pixels: re-normalization from the detector's mean / std is exact."""
    import torch.nn.functional as F
    from mmdet.registry import MODELS

    monkeypatch.chdir(baron_workspace['root'])
    model = MODELS.build(tiny_cfg.model).eval()
    pre = model.data_preprocessor
    g = torch.Generator().manual_seed(0)
    pixels = torch.rand(1, 3, 64, 64, generator=g) * 255
    det_input = (pixels - pre.mean.view(1, 3, 1, 1)) / pre.std.view(1, 3, 1, 1)
    emb = model.teacher_embeddings(det_input, [torch.tensor([[0.0, 0.0, 64.0, 64.0]])])
    clip_in = (pixels - torch.tensor([122.7709383, 116.7460125, 104.09373615]).view(1, 3, 1, 1)) / \
        torch.tensor([68.5005327, 66.6321579, 70.32316305]).view(1, 3, 1, 1)
    ref = model.teacher.encode_image(clip_in)
    torch.testing.assert_close(emb, ref, atol=2e-3, rtol=1e-3)
    # a different crop gives a different embedding
    other = model.teacher_embeddings(det_input, [torch.tensor([[0.0, 0.0, 32.0, 32.0]])])
    assert (F.normalize(other, dim=-1) - emb).abs().max() > 1e-3


@pytest.fixture(scope='module')
def baron_trained(baron_workspace):
    work = baron_workspace['root'] / 'work_dirs' / 'baron_tiny'
    proc = run_tool([str(REPO_ROOT / 'tools' / 'train.py'), str(TINY_CONFIG), '--work-dir', str(work)],
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
    metrics = re.search(r'ov_coco/novel_ap50: ([0-9.]+)\s+ov_coco/base_ap50: ([0-9.]+)\s+ov_coco/all_ap50: ([0-9.]+)',
                        log)
    assert metrics, log[-3000:]

    ckpt = safe_torch_load(baron_trained['checkpoint'])
    state = ckpt['state_dict']
    reference = torch.load(baron_workspace['clip_ckpt'], weights_only=True)['state_dict']
    teacher_keys = [k for k in state if k.startswith('teacher.clip.')]
    assert len(teacher_keys) == len(reference)
    for key, value in reference.items():
        assert torch.equal(state['teacher.clip.' + key], value), key
    # queues are part of the checkpoint (resume continues with the same negatives)
    assert int(state['bag_loss.teacher_queue.count']) > 0
    # the optimizer holds no teacher parameter
    monkeypatch.chdir(baron_workspace['root'])
    model = MODELS.build(tiny_cfg.model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and not any(n.startswith('teacher.') for n in trainable)
    assert any(True for _ in model.teacher.parameters())
    handed = sum(len(g['params']) for g in ckpt['optimizer']['param_groups'])
    assert handed == len(trainable) == len(ckpt['optimizer']['state'])
