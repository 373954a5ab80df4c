"""tools/dist_train.sh runs two processes on a machine without CUDA (gloo, DDP with device_ids=None)."""
from __future__ import annotations

import os
import socket
import sys
import subprocess
from pathlib import Path

import torch

from .test_train_resume import resume_config, shapes_64  # noqa: F401  (module fixtures)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_two_cpu_processes(repo_root: Path, resume_config: Path, tmp_path: Path) -> None:  # noqa: F811
    work_dir = tmp_path / 'dist'
    env = dict(os.environ, PORT=str(_free_port()), OMP_NUM_THREADS='1', PYTHON=sys.executable)
    result = subprocess.run(
        ['bash', str(repo_root / 'tools/dist_train.sh'), str(resume_config), '2', '--work-dir', str(work_dir),
         '--cfg-options', 'train_cfg.max_epochs=1'],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log, log[-3000:]
    assert (work_dir / 'epoch_1.pth').is_file()
    if not torch.cuda.is_available():
        assert "dist_cfg: {'backend': 'gloo'}" in log
