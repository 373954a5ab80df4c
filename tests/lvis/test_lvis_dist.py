"""The tiny OV-LVIS config through the distributed launchers: 2 gloo processes train (with masks), 2 evaluate,
and the federated metric sees every val image once (the ranks' results gathered)."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys

from lvis_test_utils import REPO_ROOT, TINY_LVIS_CONFIG
from tests.helpers import free_port


def _launch(script: str, *args: str, cwd) -> str:
    env = dict(os.environ, PORT=str(free_port()), OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHON=sys.executable)
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools' / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    return log


def test_lvis_dist_train_and_dist_test_print_mask_and_box_apr(lvis_workspace: dict) -> None:
    root = lvis_workspace['root']
    work = root / 'work_lvis_dist'
    # One epoch, no validation inside training (the test run below evaluates).
    log = _launch('dist_train.sh', str(TINY_LVIS_CONFIG), '2', '--work-dir', str(work),
                  '--cfg-options', 'train_cfg.val_interval=2', cwd=root)
    assert 'Distributed training: True' in log
    mask_losses = [float(v) for v in re.findall(r'\bloss_mask: ([0-9.]+)', log)]
    assert mask_losses and all(math.isfinite(v) for v in mask_losses), log[-3000:]
    ckpt = work / 'epoch_1.pth'
    assert ckpt.is_file()
    log = _launch('dist_test.sh', str(TINY_LVIS_CONFIG), str(ckpt), '2', '--work-dir', str(root / 'test_lvis_dist'),
                  cwd=root)
    for key in ('segm_APr', 'bbox_APr'):
        found = re.findall(rf"ov_lvis/{key}'?: ([0-9.]+)", log)
        assert found and math.isfinite(float(found[-1])), (key, log[-3000:])
    assert 'OV-LVIS (4 images' in log, log[-3000:]  # both ranks' images, each once
