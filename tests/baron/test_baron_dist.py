"""BARON's tiny config through the distributed launchers: 2 gloo processes train, 2 evaluate."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

from baron_test_utils import REPO_ROOT, TINY_CONFIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _launch(script: str, *args: str, cwd) -> str:
    env = dict(os.environ, PORT=str(_free_port()), OMP_NUM_THREADS='1', PYTHON=sys.executable)
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools' / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    return log


def test_baron_dist_train_and_dist_test(baron_workspace) -> None:
    root = baron_workspace['root']
    work = root / 'work_dist'
    paths = ['--cfg-options', f'model.teacher.pretrained={baron_workspace["clip_ckpt"]}',
             f'model.roi_head.bbox_head.class_embeddings={baron_workspace["attn12"]}']
    log = _launch('dist_train.sh', str(TINY_CONFIG), '2', '--work-dir', str(work), *paths, cwd=root)
    assert 'Distributed training: True' in log
    assert log.count('loss_bag') >= 4, log[-3000:]
    ckpt = work / 'iter_4.pth'
    assert ckpt.is_file()
    log = _launch('dist_test.sh', str(TINY_CONFIG), str(ckpt), '2', '--work-dir', str(root / 'test_dist'), *paths,
                  cwd=root)
    for key in ('novel_ap50', 'base_ap50', 'all_ap50'):
        assert f'ov_coco/{key}' in log, log[-3000:]
