"""The command-line options a user reaches for, on the tiny F-ViT: tools/test.py --out / --show-dir,
tools/train.py --auto-scale-lr / --amp, and the launchers' usage errors."""
from __future__ import annotations

import math
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fvit_test_utils import REPO_ROOT, TINY_CONFIG, run_tool
from tests.helpers import printed_metrics


def test_test_tool_dumps_predictions_and_draws_them(fvit_workspace: dict, fvit_trained: dict) -> None:
    root = fvit_workspace['root']
    work, out = root / 'entry_test', root / 'entry_test' / 'preds.pkl'
    proc = run_tool([str(REPO_ROOT / 'tools' / 'test.py'), str(TINY_CONFIG), str(fvit_trained['checkpoint']),
                     '--work-dir', str(work), '--out', str(out), '--show-dir', 'shown'], cwd=root)
    metrics = printed_metrics(proc.stdout)
    assert all(math.isfinite(metrics[f'ov_coco/{k}']) for k in ('novel_ap50', 'base_ap50', 'all_ap50'))
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    val_images = sorted(p.name for p in Path(fvit_workspace['val_img_dir']).iterdir())
    assert len(preds) == len(val_images)
    for p in preds:
        inst = p['pred_instances']
        h, w = p['ori_shape']
        assert len(inst['bboxes']) == len(inst['scores']) == len(inst['labels']) > 0
        assert (inst['bboxes'][:, 2] <= w + 1e-3).all() and (inst['bboxes'][:, 3] <= h + 1e-3).all()
        assert ((inst['labels'] >= 0) & (inst['labels'] < len(fvit_workspace['classes']))).all()
    drawn = sorted(p.name for p in work.glob('*/shown/*') if p.is_file())
    assert drawn == val_images


def test_test_tool_rejects_a_non_pickle_out(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO_ROOT / 'tools' / 'test.py'), str(TINY_CONFIG), 'any.pth',
                           '--out', 'preds.json'], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and '--out must be a .pkl file' in proc.stderr


def _train_one_epoch(root: Path, work: Path, *flags: str) -> str:
    proc = run_tool([str(REPO_ROOT / 'tools' / 'train.py'), str(TINY_CONFIG), '--work-dir', str(work), *flags,
                     '--cfg-options', 'randomness.seed=0', 'train_cfg.val_interval=100'], cwd=root)
    log = proc.stdout + proc.stderr
    losses = [float(v) for v in re.findall(r'\bloss: ([0-9.na]+)', log)]
    assert losses and all(math.isfinite(v) for v in losses), log[-3000:]
    return log


def test_train_with_auto_scaled_lr(fvit_workspace: dict) -> None:
    from clim.engine import safe_torch_load
    from mmengine.config import Config

    root = fvit_workspace['root']
    _train_one_epoch(root, root / 'entry_autolr', '--auto-scale-lr')
    cfg = Config.fromfile(str(TINY_CONFIG))
    ratio = cfg.train_dataloader.batch_size / cfg.auto_scale_lr.base_batch_size  # one process
    assert ratio != 1
    ckpt = safe_torch_load(root / 'entry_autolr' / 'epoch_1.pth', map_location='cpu')
    for group in ckpt['optimizer']['param_groups']:
        assert group['initial_lr'] == pytest.approx(cfg.optim_wrapper.optimizer.lr * ratio, rel=1e-9)


def test_train_with_amp(fvit_workspace: dict) -> None:
    """--amp on a CPU: mmcv's CPU nms / RoIAlign take float32 only, so the detector trains in float32 and
    says so (instead of crashing with "expected scalar type Float but found BFloat16")."""
    root = fvit_workspace['root']
    proc = _train_one_epoch(root, root / 'entry_amp', '--amp', '--cpu-amp', 'bf16')
    assert 'float32 only' in proc
    dumped = (root / 'entry_amp' / 'fvit_tiny_shapes.py').read_text()
    assert 'CPUBf16AmpOptimWrapper' not in dumped and 'AmpOptimWrapper' not in dumped
    assert (root / 'entry_amp' / 'epoch_1.pth').is_file()


@pytest.mark.parametrize('script, args', [
    ('slurm_train.sh', ['partition', 'job', 'config.py']),
    ('slurm_test.sh', ['partition', 'job', 'config.py']),
    ('dist_train.sh', ['config.py']),
    ('dist_test.sh', ['config.py', 'ckpt.pth']),
])
def test_launchers_print_usage_on_missing_arguments(script: str, args: list[str], tmp_path: Path) -> None:
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools' / script), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith('usage:') and script in proc.stderr
