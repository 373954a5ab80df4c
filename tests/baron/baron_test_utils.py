"""Helpers shared by the BARON tests (a module of its own: conftest modules are not importable by name)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO_ROOT / 'configs' / 'tiny' / 'baron_tiny.py'


def _load_tiny_clip_cfg() -> dict:
    spec = importlib.util.spec_from_file_location('_baron_root_conftest', REPO_ROOT / 'tests' / 'conftest.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TINY_CLIP_CFG


TINY_CLIP_CFG: dict = _load_tiny_clip_cfg()


def run_tool(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a repo tool with the test interpreter; fail with its output on a non-zero exit."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS='2', MKL_NUM_THREADS='2')
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'{args[0]} exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n'
                             f'--- stderr\n{proc.stderr[-6000:]}')
    return proc
