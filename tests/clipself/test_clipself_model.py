"""The CLIPSelf model on a tiny CLIP: the loss against a hand computation, which weights train, and the
teacher: bit-identical through training, in no optimizer / state dict, checked by digest on loading."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper

from clim.method import CLIP_MEAN, CLIP_STD, CLIPSelf, cosine_distill_loss
from clim.models import CLIPModel
from clipself_test_utils import CROP_SIZE, build_tiny_clipself, random_distill_batch

# The reference schedule's optimizer (configs/_base_/schedules/clipself_6e.py) at a test lr.
OPTIM = dict(type='OptimWrapper',
             optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
             paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0))


def _perturb_student(model: CLIPSelf, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.clip.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=g))


def _aligned_boxes_batch() -> dict:
    """Boxes on whole cells of the 8 x 8 map, so RoIAlign 1x1 (aligned, adaptive sampling) is the plain
    mean of the covered cells: sample points fall on cell centres."""
    batch = random_distill_batch(counts=(2, 1))
    batch['data_samples'][0].boxes = torch.tensor([[0, 0, 0.5, 0.5], [0.25, 0.5, 1.0, 0.75]])
    batch['data_samples'][1].boxes = torch.tensor([[0.5, 0.25, 0.75, 1.0]])
    return batch


def test_loss_equals_a_hand_computation(tiny_clip_cfg: dict):
    model = build_tiny_clipself(tiny_clip_cfg).eval()
    torch.manual_seed(0)
    original = CLIPModel(model_cfg=copy.deepcopy(tiny_clip_cfg)).eval()  # what the teacher must stay
    _perturb_student(model)  # student != teacher, so a loss from the wrong tower shows
    batch = _aligned_boxes_batch()
    uint8_crops = torch.cat([s.crops for s in batch['data_samples']]).float()
    data = model.data_preprocessor(batch, training=True)
    images, samples = data['inputs'], data['data_samples']
    with torch.no_grad():
        loss = model(images, samples, mode='loss')['loss_cosine']
        dense = model.clip.dense_features(images, mode='v2')                       # (2, 32, 8, 8), per-cell unit
        cells = [(0, slice(0, 4), slice(0, 4)), (0, slice(4, 6), slice(2, 8)), (1, slice(2, 8), slice(4, 6))]
        student = torch.stack([dense[b, :, ys, xs].mean(dim=(1, 2)) for b, ys, xs in cells])
        mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
        crops = (uint8_crops - mean) / std
        teacher = original.clip.visual(crops)                                       # class token, ln_post, proj
        cos = (F.normalize(student, dim=-1) * F.normalize(teacher, dim=-1)).sum(-1)
    assert crops.shape == (3, 3, CROP_SIZE, CROP_SIZE)
    assert loss.item() == pytest.approx(1.0 - cos.mean().item(), abs=1e-5)
    assert 0.0 < loss.item() < 2.0


def test_cosine_weight_scales_the_loss(tiny_clip_cfg: dict):
    batch = random_distill_batch()
    losses = []
    for w in (1.0, 2.5):
        model = build_tiny_clipself(tiny_clip_cfg, cosine_weight=w)
        _perturb_student(model)
        data = model.data_preprocessor(batch, training=True)
        with torch.no_grad():
            losses.append(model(**data, mode='loss')['loss_cosine'].item())
    assert losses[1] == pytest.approx(2.5 * losses[0], rel=1e-5)


def test_cosine_distill_loss_by_hand():
    s = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), dim=-1)
    t = F.normalize(torch.tensor([[0.0, 1.0], [1.0, 1.0]]), dim=-1)
    assert cosine_distill_loss(s, t).item() == pytest.approx(1.0 - (0.0 + 1.0) / 2)
    with pytest.raises(ValueError):
        cosine_distill_loss(s[:0], t[:0])


def test_every_block_trains_and_nothing_else(tiny_clipself: CLIPSelf):
    trainable = {n for n, p in tiny_clipself.clip.clip.named_parameters() if p.requires_grad}
    blocks = {n for n, _ in tiny_clipself.clip.clip.named_parameters() if n.startswith('visual.transformer.resblocks.')}
    assert trainable == blocks and blocks


def test_teacher_is_frozen_out_of_the_optimizer_and_the_state_dict_and_bit_identical(tiny_clip_cfg: dict):
    model = build_tiny_clipself(tiny_clip_cfg)
    teacher = model.teacher
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in model.clip.state_dict().items()}
    optim = build_optim_wrapper(model, copy.deepcopy(OPTIM))
    in_optim = {id(p) for g in optim.optimizer.param_groups for p in g['params']}
    assert not in_optim & {id(p) for p in teacher.parameters()}
    assert in_optim == {id(p) for p in model.parameters() if p.requires_grad}
    assert not any(k.startswith('teacher.') or '_teacher' in k for k in model.state_dict())
    model.train()
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    losses = []
    for step in range(3):
        losses.append(model.train_step(random_distill_batch(seed=step), optim)['loss_cosine'].item())
        assert all(p.grad is None for p in teacher.parameters())
    after = teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(not torch.equal(student_before[k], v) for k, v in model.clip.state_dict().items())
    assert all(torch.isfinite(torch.tensor(losses)))


def test_teacher_follows_the_model_to_other_dtypes(tiny_clipself: CLIPSelf):
    tiny_clipself.to(torch.float64)
    assert tiny_clipself.teacher.clip.visual.conv1.weight.dtype == torch.float64
    assert tiny_clipself.clip.clip.visual.conv1.weight.dtype == torch.float64


def test_a_checkpoint_of_another_teacher_is_refused(tiny_clip_cfg: dict):
    model = build_tiny_clipself(tiny_clip_cfg, seed=0)
    state = model.state_dict()
    build_tiny_clipself(tiny_clip_cfg, seed=0).load_state_dict(state)  # same teacher: fine
    with pytest.raises(RuntimeError, match='another teacher'):
        build_tiny_clipself(tiny_clip_cfg, seed=1).load_state_dict(state)


def test_box_and_crop_counts_must_agree(tiny_clipself: CLIPSelf):
    batch = random_distill_batch(counts=(2, 1))
    batch['data_samples'][1].crops = batch['data_samples'][1].crops.repeat(2, 1, 1, 1)
    data = tiny_clipself.data_preprocessor(batch, training=True)
    with pytest.raises(ValueError, match='sample 1 has 1 boxes but 2 crops'):
        tiny_clipself(**data, mode='loss')
