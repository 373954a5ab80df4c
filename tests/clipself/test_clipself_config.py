"""The real-scale CLIPSelf configs carry the spec's recipe: the lr of every step equals the reference's
warmup + cosine formula, every ViT-B/16 block trains, 2 images per GPU at 1024 with 224 crops, the
0.7 export after epoch 6 only."""
from __future__ import annotations

import math

import open_clip
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import PARAM_SCHEDULERS

from clipself_test_utils import REPO_ROOT

CONFIGS = ['configs/clipself/clipself_vitb16_coco_patches.py', 'configs/clipself/clipself_vitb16_coco_proposals.py']


def _reference_lr(step: int, base: float, warmup: int, total: int) -> float:
    """open_clip's cosine_lr as CLIPSelf's scripts call it (clipself.md)."""
    if step < warmup:
        return base * (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup))) * base


@pytest.mark.filterwarnings('ignore:Detected call of')  # schedulers stepped without training
def test_the_lr_of_every_step_is_the_references():
    cfg = Config.fromfile(str(REPO_ROOT / CONFIGS[0]))
    total = 6 * 7393  # clipself.md: COCO 7,393 steps per epoch on 8 x 2, 44,358 in all
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=opt)) for s in cfg.param_scheduler]
    worst = 0.0
    for step in range(total):
        lr = opt.param_groups[0]['lr']
        worst = max(worst, abs(lr - _reference_lr(step, 1e-5, 1000, total)))
        for s in schedulers:
            s.step()
    assert worst < 1e-12


@pytest.mark.parametrize('config', CONFIGS)
def test_recipe_numbers(config: str):
    cfg = Config.fromfile(str(REPO_ROOT / config))
    assert cfg.model.type == 'CLIPSelf' and cfg.model.clip.quick_gelu is True
    assert cfg.model.unlocked_groups == open_clip.get_model_config('ViT-B-16')['vision_cfg']['layers']
    loader = cfg.train_dataloader
    assert loader.batch_size == 2
    steps = {t['type']: t for t in loader.dataset.pipeline}
    assert steps['PrepareCLIPSelfInputs']['image_size'] == 1024 and steps['PrepareCLIPSelfInputs']['crop_size'] == 224
    if 'proposals' in config:
        assert loader.dataset.with_proposals and steps['SampleProposalBoxes']['crop_scale'] == 1.5
    else:
        assert not loader.dataset.with_proposals and steps['SampleGridBoxes']['max_split'] == 6
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, tuple(opt.betas), opt.eps, opt.weight_decay) == ('AdamW', 1e-5, (0.9, 0.999), 1e-8, 0.1)
    assert cfg.train_cfg.max_epochs == 6 and 'clip_grad' not in cfg.optim_wrapper
    export = [h for h in cfg.custom_hooks if h['type'] == 'CLIPExportHook']
    assert len(export) == 1 and export[0]['alpha'] == 0.7 and export[0]['interval'] == cfg.train_cfg.max_epochs
