"""The CLIM export and its validation inside a real MMEngine Runner (the tiny config, one epoch with
validation): the val loop scores the ensembled weights, training resumes from the trained ones, and
the exported file is alpha * trained + (1 - alpha) * original.

test_clim_export.py calls the hook's methods by hand; this test lets the Runner call them, in its own
order, next to the checkpoint hook and the val loop, and watches the weights from a probe hook that
runs last at each point.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from clim.engine import safe_torch_load
from clim_test_utils import REPO_ROOT
from mmdet.registry import HOOKS


def _trainable(runner) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in runner.model.clip.clip.named_parameters() if p.requires_grad}


@HOOKS.register_module(force=True)
class _WeightProbeHook(Hook):
    """Snapshots of the CLIP's trainable weights at the points the export hook acts on."""

    priority = 'LOWEST'  # after the export hook (LOW) and the checkpoint hook (VERY_LOW)

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, torch.Tensor]] = {}
        self.metrics: dict | None = None

    def before_train(self, runner) -> None:
        self.seen['original'] = _trainable(runner)

    def after_train_epoch(self, runner) -> None:
        self.seen['trained'] = _trainable(runner)

    def before_val_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if batch_idx == 0:
            self.seen['evaluated'] = _trainable(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.seen['after_val'] = _trainable(runner)
        self.metrics = metrics


def test_runner_validates_the_ensemble_then_restores(clim_shapes: dict, tmp_path: Path) -> None:
    cfg = Config.fromfile(str(REPO_ROOT / 'configs' / 'tiny' / 'clim_tiny_shapes.py'))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = clim_shapes['root'] + '/'
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_epochs, cfg.train_cfg.val_interval = 1, 1
    cfg.randomness = dict(seed=0)  # deterministic=True would stay switched on for the rest of the session
    cfg.custom_hooks = [*cfg.custom_hooks, dict(type='_WeightProbeHook')]
    export_cfg = next(h for h in cfg.custom_hooks if h['type'] == 'CLIPExportHook')
    alpha = export_cfg['alpha']
    assert alpha < 1
    runner = Runner.from_cfg(cfg)
    runner.train()
    probe = next(h for h in runner.hooks if isinstance(h, _WeightProbeHook))
    seen = probe.seen
    assert set(seen) == {'original', 'trained', 'evaluated', 'after_val'}
    assert probe.metrics and all(math.isfinite(v) for v in probe.metrics.values())

    exported = torch.load(tmp_path / 'clip_epoch_1.pt', weights_only=True)['state_dict']
    checkpoint = safe_torch_load(tmp_path / 'epoch_1.pth', map_location='cpu')['state_dict']
    moved = [k for k in seen['trained'] if not torch.equal(seen['trained'][k], seen['original'][k])]
    assert len(moved) >= 10  # training moved the unlocked blocks
    for k, trained in seen['trained'].items():
        ensemble = alpha * trained + (1 - alpha) * seen['original'][k]
        msg = lambda m, k=k: f'{k}: {m}'  # noqa: E731
        torch.testing.assert_close(exported[k], ensemble, atol=1e-6, rtol=0, msg=msg)
        # the val loop scored exactly the exported weights ...
        torch.testing.assert_close(seen['evaluated'][k], exported[k], atol=1e-6, rtol=0, msg=msg)
        # ... and training continues from (and the checkpoint holds) the trained ones
        assert torch.equal(seen['after_val'][k], trained), k
        assert torch.equal(checkpoint[f'clip.clip.{k}'], trained), k
