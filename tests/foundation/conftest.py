"""Foundation test fixtures: stand-ins for the NVIDIA command-line tools the installer reads."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def fake_cuda_tools(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """``make(nvcc_release='12.8', smi_line=None, headers=True)`` writes an ``nvcc`` that reports that
    release (inside a toolkit folder with ``include/cuda_runtime_api.h`` when ``headers``) and, when
    ``smi_line`` is given, an ``nvidia-smi`` printing it; returns an environment with both on PATH
    and CUDA_HOME at the fake toolkit."""

    def make(nvcc_release: str | None = '12.8', smi_line: str | None = None, headers: bool = True) -> dict[str, str]:
        home = tmp_path / 'cuda'
        (home / 'bin').mkdir(parents=True, exist_ok=True)
        if headers:
            (home / 'include').mkdir(exist_ok=True)
            (home / 'include' / 'cuda_runtime_api.h').write_text('/* fake */\n')
        tools = [home / 'bin' / 'nvcc'] if nvcc_release else []
        if nvcc_release:
            tools[0].write_text('#!/bin/sh\necho "nvcc: NVIDIA (R) Cuda compiler driver"\n'
                                f'echo "Cuda compilation tools, release {nvcc_release}, V{nvcc_release}.1"\n')
        if smi_line is not None:
            smi = home / 'bin' / 'nvidia-smi'
            smi.write_text(f'#!/bin/sh\necho "{smi_line}"\n')
            tools.append(smi)
        for tool in tools:
            tool.chmod(0o755)
        env = dict(os.environ, PATH=f'{home / "bin"}:{os.environ["PATH"]}', CUDA_HOME=str(home))
        env.pop('TORCH_CUDA_ARCH_LIST', None)
        env.pop('MMCV_CUDA', None)
        return env

    return make
