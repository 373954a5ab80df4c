"""tools/train.py end to end: train, resume after an interruption, refuse a tampered checkpoint.

Uses the real tiny CLIM config (configs/tiny/clim_tiny_shapes.py) on generated data, through the same
command line a user types, run from a directory other than the repo (custom_imports must work).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

EPOCHS = 3


@pytest.fixture(scope='module')
def shapes_64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 train images: two CLIM batches of 32 (>= one 2x2+3x3+4x4 mosaic group) per epoch."""
    from ovd_demo.shapes import generate_shapes_dataset

    out = tmp_path_factory.mktemp('shapes64')
    generate_shapes_dataset(out, num_train=64, num_val=4, image_size=64, seed=1)
    return out


@pytest.fixture(scope='module')
def resume_config(tmp_path_factory: pytest.TempPathFactory, shapes_64: Path) -> Path:
    """The tiny config with a schedule that does not depend on max_epochs.

    The interrupted run is launched with max_epochs=2 and resumed with max_epochs=3; a cosine
    schedule ending at max_epochs would differ between the two, so this one is fixed in iterations.
    """
    repo = Path(__file__).resolve().parents[2]
    cfg = tmp_path_factory.mktemp('cfg') / 'clim_tiny_resume.py'
    cfg.write_text(
        f"_base_ = ['{repo / 'configs/tiny/clim_tiny_shapes.py'}']\n"
        f"data_root = '{shapes_64}/'\n"
        "train_dataloader = dict(dataset=dict(data_root=data_root))\n"
        "val_dataloader = dict(dataset=dict(data_root=data_root))\n"
        "test_dataloader = val_dataloader\n"
        f"train_cfg = dict(max_epochs={EPOCHS}, val_interval=100)\n"
        "param_scheduler = [\n"
        "    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),\n"
        "    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=2, end=20, T_max=18),\n"
        "]\n")
    return cfg


def _train(repo_root: Path, config: Path, work_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(repo_root / 'tools/train.py'), str(config), '--work-dir', str(work_dir), *extra]
    return subprocess.run(cmd, cwd=work_dir.parent, capture_output=True, text=True, timeout=600)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from clim.engine import safe_torch_load

    return safe_torch_load(path, map_location='cpu')['state_dict']


def test_resume_matches_uninterrupted_run(repo_root: Path, resume_config: Path, tmp_path: Path) -> None:
    full = _train(repo_root, resume_config, tmp_path / 'full')
    assert full.returncode == 0, full.stderr[-3000:]

    part = _train(repo_root, resume_config, tmp_path / 'resumed', '--cfg-options', 'train_cfg.max_epochs=2')
    assert part.returncode == 0, part.stderr[-3000:]
    assert (tmp_path / 'resumed/epoch_2.pth').is_file()
    assert not (tmp_path / 'resumed/epoch_3.pth').exists()

    resumed = _train(repo_root, resume_config, tmp_path / 'resumed', '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert 'resumed' in log.lower(), log[-2000:]

    expected, got = _weights(tmp_path / 'full/epoch_3.pth'), _weights(tmp_path / 'resumed/epoch_3.pth')
    assert expected.keys() == got.keys()
    changed = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not changed, f'weights differ after resume: {changed[:5]}'
    # Training did move the weights (the comparison above is not between two untouched models).
    first = _weights(tmp_path / 'resumed/epoch_2.pth')
    assert any(not torch.equal(first[k], got[k]) for k in got)
    # Atomic writes leave no temporary files behind.
    assert not list((tmp_path / 'resumed').glob('.*.tmp'))


def test_resume_refuses_a_tampered_checkpoint(repo_root: Path, resume_config: Path, tmp_path: Path) -> None:
    from clim.engine import safe_torch_load

    run = _train(repo_root, resume_config, tmp_path / 'run', '--cfg-options', 'train_cfg.max_epochs=1')
    assert run.returncode == 0, run.stderr[-3000:]
    ckpt = safe_torch_load(tmp_path / 'run/epoch_1.pth')
    ckpt['meta']['hook'] = subprocess.Popen  # a global that could run code when unpickled
    tampered = tmp_path / 'tampered.pth'
    torch.save(ckpt, tampered)

    result = _train(repo_root, resume_config, tmp_path / 'run2', '--resume', str(tampered))
    assert result.returncode != 0
    assert 'Refusing to load checkpoint' in result.stderr and 'tampered.pth' in result.stderr
    assert 'Popen' in result.stderr  # the offending global is named
