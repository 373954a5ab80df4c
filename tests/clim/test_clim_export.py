"""The per-epoch export is alpha * trained + (1 - alpha) * original, tensor by tensor, and loads."""
from __future__ import annotations

import copy
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from clim.method.export import CLIPExportHook
from clim.method.hooks import LogitScaleClampHook
from clim.models import CLIPModel, load_clip_state
from clim_test_utils import build_tiny_clim


def _runner(model, work_dir: Path, epoch: int = 0, max_epochs: int = 3) -> SimpleNamespace:
    return SimpleNamespace(model=model, work_dir=str(work_dir), epoch=epoch, iter=7, max_epochs=max_epochs)


def _train_a_bit(model) -> None:
    """Stand-in for training: move every trainable tensor."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)


@pytest.mark.parametrize('alpha', [0.7, 1.0])
def test_export_is_the_weight_ensemble(tmp_path: Path, tiny_clip_cfg: dict, alpha: float):
    cfg = copy.deepcopy(tiny_clip_cfg)
    cfg['quick_gelu'] = True  # the activation must travel with the file
    model = build_tiny_clim(cfg)
    original = {k: v.clone() for k, v in model.clip.clip.state_dict().items()}
    hook = CLIPExportHook(alpha=alpha)
    runner = _runner(model, tmp_path)
    hook.before_train(runner)
    _train_a_bit(model)
    trained = {k: v.clone() for k, v in model.clip.clip.state_dict().items()}
    hook.after_train_epoch(runner)

    path = tmp_path / 'clip_epoch_1.pt'
    assert path.is_file() and (tmp_path / 'clip_latest.pt').is_file()
    assert not list(tmp_path.glob('.*tmp*'))  # atomic writes leave no temporary file
    blob = torch.load(path, weights_only=True)
    assert blob['clip_arch']['quick_gelu'] is True and blob['meta']['epoch'] == 1
    sd = blob['state_dict']
    assert set(sd) == set(trained)
    n_changed = 0
    for k, w in sd.items():
        expected = alpha * trained[k] + (1 - alpha) * original[k] if alpha < 1 else trained[k]
        torch.testing.assert_close(w, expected, atol=1e-6, rtol=0, msg=lambda m, k=k: f'{k}: {m}')
        n_changed += int(not torch.equal(trained[k], original[k]))
    assert n_changed > 0
    latest = torch.load(tmp_path / 'clip_latest.pt', weights_only=True)
    assert torch.equal(latest['state_dict']['logit_scale'], sd['logit_scale'])

    loaded = CLIPModel(pretrained=str(path))
    assert loaded.quick_gelu is True
    for k, v in loaded.clip.state_dict().items():
        torch.testing.assert_close(v, sd[k], atol=0, rtol=0)
    _, info = load_clip_state(path)
    assert info['format'] == 'clim'


def test_original_weights_survive_resume(tmp_path: Path, tiny_clip_cfg: dict):
    """The original weights travel in the MMEngine checkpoint, so a resumed run ensembles with them."""
    model = build_tiny_clim(tiny_clip_cfg)
    hook = CLIPExportHook()
    runner = _runner(model, tmp_path)
    hook.before_train(runner)
    original = copy.deepcopy(hook.original)
    _train_a_bit(model)
    ckpt: dict = {}
    hook.before_save_checkpoint(runner, ckpt)
    resumed = CLIPExportHook()
    resumed.after_load_checkpoint(runner, ckpt)
    resumed.before_train(runner)  # must not re-capture the (already trained) weights
    assert set(resumed.original) == set(original)
    for k in original:
        assert torch.equal(resumed.original[k], original[k])


def test_val_runs_on_ensembled_weights_then_restores(tmp_path: Path, tiny_clip_cfg: dict):
    model = build_tiny_clim(tiny_clip_cfg)
    hook = CLIPExportHook(alpha=0.7)
    runner = _runner(model, tmp_path)
    hook.before_train(runner)
    _train_a_bit(model)
    trained = {k: v.clone() for k, v in model.clip.clip.state_dict().items()}
    expected = hook.ensembled_state(runner)
    hook.before_val_epoch(runner)
    for k, v in model.clip.clip.state_dict().items():
        torch.testing.assert_close(v, expected[k], atol=1e-6, rtol=0)
    hook.after_val_epoch(runner, {})
    for k, v in model.clip.clip.state_dict().items():
        assert torch.equal(v, trained[k])


def test_logit_scale_clamp(tiny_clip_cfg: dict):
    model = build_tiny_clim(tiny_clip_cfg)
    hook = LogitScaleClampHook()
    for value, expected in ((10.0, math.log(100)), (-1.0, 0.0), (2.0, 2.0)):
        with torch.no_grad():
            model.clip.logit_scale.fill_(value)
        hook.after_train_iter(SimpleNamespace(model=model), 0)
        assert model.clip.logit_scale.item() == pytest.approx(expected)
