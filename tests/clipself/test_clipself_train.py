"""The tiny CLIPSelf config through tools/train.py on generated data: finite, changing losses; the export
is alpha * trained + (1 - alpha) * original and loads as a CLIPModel and as F-ViT's backbone; checkpoints
hold no teacher; a run interrupted after epoch 1 and resumed ends bit-identical to the uninterrupted one."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from clim.engine import safe_torch_load
from clim.models import CLIPModel
from clipself_test_utils import REPO_ROOT
from mmdet.registry import MODELS
from tests.helpers import run_tool

CONFIG = 'configs/tiny/clipself_tiny_shapes_patches.py'


def _train(root: str, work: Path, *extra: str) -> str:
    opts = [f'{k}.dataset.data_root={root}/' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    res = run_tool(['tools/train.py', CONFIG, '--work-dir', str(work), *extra, '--cfg-options', *opts],
                   cwd=REPO_ROOT, threads=1)
    return res.stdout + res.stderr


@pytest.fixture(scope='module')
def full_run(synthetic_dataset: dict, tmp_path_factory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp('clipself_full')
    return work, _train(synthetic_dataset['root'], work)


def test_tiny_clipself_trains_with_finite_changing_loss(full_run):
    work, log = full_run
    losses = [float(v) for v in re.findall(r'Epoch\(train\) +\[\d\]\[\d+/6\].*?loss_cosine: ([-0-9.e+na]+)', log)]
    assert len(losses) == 12, log[-3000:]
    assert all(math.isfinite(v) and 0.0 < v < 2.0 for v in losses)
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4  # the cosine gap closes (tiny CLIP, lr 1e-4)
    assert 'skipped_images: 0' in log
    assert 'region/box_top1_things' in log  # the val loop (region recognition) ran on the ensemble


def test_export_is_the_ensemble_and_loads(full_run):
    work, _ = full_run
    ckpt = safe_torch_load(work / 'epoch_2.pth', map_location='cpu')
    state, original = ckpt['state_dict'], ckpt['clip_export_original']
    assert 'teacher_digest' in state and not any('teacher.' in k for k in state)
    assert original and all(k.startswith('visual.transformer.resblocks.') for k in original)
    blob = torch.load(work / 'clip_latest.pt', weights_only=True)
    assert blob['meta']['method'] == 'CLIPSelf' and blob['meta']['epoch'] == 2 and blob['meta']['alpha'] == 0.7
    assert blob['meta']['grad_sync'] is None  # one process: no sync mode applies
    assert 'gradient sync: single process' in full_run[1]
    exported = CLIPModel(pretrained=str(work / 'clip_latest.pt')).clip.state_dict()
    changed = 0
    for k, v in exported.items():
        trained = state[f'clip.clip.{k}']
        want = 0.7 * trained + 0.3 * original[k] if k in original else trained
        torch.testing.assert_close(v, want, rtol=0, atol=1e-6)
        changed += int(k in original and not torch.equal(trained, original[k]))
    assert changed > 0
    # F-ViT's backbone takes the export as its CLIP
    cfg = Config.fromfile(str(REPO_ROOT / 'configs' / 'tiny' / 'fvit_tiny_shapes.py')).model.backbone
    cfg.clip_cfg.pretrained = str(work / 'clip_latest.pt')
    backbone = MODELS.build(cfg)
    torch.testing.assert_close(backbone.clip.clip.visual.conv1.weight, exported['visual.conv1.weight'])
    block = 'visual.transformer.resblocks.2.mlp.c_fc.weight'
    torch.testing.assert_close(dict(backbone.clip.clip.named_parameters())[block], exported[block])


def test_resume_matches_the_uninterrupted_run(full_run, synthetic_dataset: dict, tmp_path: Path):
    work, _ = full_run
    part = tmp_path / 'resumed'
    _train(synthetic_dataset['root'], part, '--cfg-options', 'train_cfg.max_epochs=1')
    assert (part / 'epoch_1.pth').is_file() and not (part / 'epoch_2.pth').exists()
    _train(synthetic_dataset['root'], part, '--resume')
    a = safe_torch_load(work / 'epoch_2.pth', map_location='cpu')['state_dict']
    b = safe_torch_load(part / 'epoch_2.pth', map_location='cpu')['state_dict']
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ea = torch.load(work / 'clip_epoch_2.pt', weights_only=True)['state_dict']
    eb = torch.load(part / 'clip_epoch_2.pt', weights_only=True)['state_dict']
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
