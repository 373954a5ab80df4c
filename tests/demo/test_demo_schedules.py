"""The demo's epoch settings drive the learning-rate schedules of its configs."""
from __future__ import annotations

from pathlib import Path

import pytest

from ovd_demo.configs import CLIM_CONFIG, FVIT_CONFIG, PRETRAIN_CONFIG, load_demo_config


@pytest.mark.parametrize('config, epochs', [(PRETRAIN_CONFIG, 3), (CLIM_CONFIG, 9), (FVIT_CONFIG, 1)])
def test_cosine_decay_ends_with_the_demo_epochs(tmp_path: Path, config: str, epochs: int) -> None:
    cfg = load_demo_config(config, tmp_path, {'train_cfg.max_epochs': epochs})
    assert cfg.train_cfg.max_epochs == epochs
    cosine = [s for s in cfg.param_scheduler if s['type'] == 'CosineAnnealingLR']
    assert cosine and all(s['end'] == epochs and s['T_max'] == epochs for s in cosine)
    warmup = [s for s in cfg.param_scheduler if not s.get('by_epoch', True)]
    assert warmup, 'iteration-based warm-up is left alone'
