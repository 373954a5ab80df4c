"""tools/install.sh's mmcv build decision (tools/_mmcv_build_plan.py) for machines we do not have.

torch's own facts (its CUDA version, the devices' compute capabilities, the cuda-toolkit pin) are
given on the plan's command line; nvcc and nvidia-smi are real executables on PATH that print what
the NVIDIA tools print, so their discovery and parsing run as they would on a GPU machine.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def plan_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location('_mmcv_build_plan', REPO_ROOT / 'tools' / '_mmcv_build_plan.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def plan(plan_module: ModuleType, monkeypatch: pytest.MonkeyPatch):
    """``plan(env, *args)``: the plan's shell assignments (as bash reads them) for ``args`` under ``env``."""

    def make(env: dict[str, str], *args: str) -> dict[str, str]:
        for key in ('PATH', 'CUDA_HOME', 'TORCH_CUDA_ARCH_LIST', 'MMCV_CUDA'):
            if key in env:
                monkeypatch.setenv(key, env[key])
            else:
                monkeypatch.delenv(key, raising=False)
        ns = plan_module.build_parser().parse_args(list(args))
        shell = plan_module.as_shell(plan_module.decide(plan_module.read_facts(ns)))
        names = [line.split('=', 1)[0] for line in shell.splitlines()]
        script = shell + '\n' + ''.join(f'printf "%s\\0" "${n}"\n' for n in names)
        values = subprocess.run(['bash', '-c', script], capture_output=True, text=True, check=True).stdout
        return dict(zip(names, values.split('\0')))

    return make


def test_print_plan_on_this_machine(repo_root: Path) -> None:
    proc = subprocess.run(['bash', str(repo_root / 'tools/install.sh'), '--print-plan'], capture_output=True,
                          text=True, timeout=300, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr
    if torch.cuda.is_available():
        assert 'GPUs torch sees: none' not in proc.stdout
    else:
        assert 'mmcv ops: CPU only (variant cpu)' in proc.stdout, proc.stdout


def test_system_nvcc_of_torchs_cuda_builds_for_the_devices_arch(fake_cuda_tools, plan) -> None:
    env = fake_cuda_tools(nvcc_release='12.8')
    p = plan(env, '--torch-cuda', '12.8', '--gpu-capability', '8.6,8.6')
    assert p['plan_variant'] == 'cu128-sm86'
    assert p['plan_arch_list'] == '8.6'
    assert p['plan_nvcc_source'] == 'system'
    assert p['plan_cuda_home'] == env['CUDA_HOME']
    assert int(p['plan_max_jobs']) >= 1
    assert "torch's CUDA 12.8" in p['plan_reason']  # the quote survives the shell


def test_user_arch_list_wins_and_keys_the_cache(fake_cuda_tools, plan) -> None:
    env = fake_cuda_tools(nvcc_release='12.8') | {'TORCH_CUDA_ARCH_LIST': '8.0;9.0+PTX'}
    p = plan(env, '--torch-cuda', '12.8', '--gpu-capability', '9.0')
    assert p['plan_arch_list'] == '8.0;9.0+PTX'
    assert p['plan_variant'] == 'cu128-sm80-sm90ptx'


def test_mismatched_nvcc_takes_the_pypi_toolkit_pinned_by_torch(fake_cuda_tools, plan) -> None:
    env = fake_cuda_tools(nvcc_release='12.9')
    p = plan(env, '--torch-cuda', '13.1', '--gpu-capability', '9.0', '--cuda-toolkit', '13.1.2.0')
    assert p['plan_nvcc_source'] == 'pypi'
    assert p['plan_pypi_requirement'].startswith('cuda-toolkit[nvcc,')
    assert p['plan_pypi_requirement'].endswith(']==13.1.2.0')
    # beside torch's own CUDA 13 wheels, whose cuBLAS / cuSPARSE headers torch's headers include
    assert p['plan_cuda_home'] == str(Path(sysconfig.get_paths()['purelib']) / 'nvidia' / 'cu13')
    assert p['plan_nvcc'] == p['plan_cuda_home'] + '/bin/nvcc'
    assert p['plan_variant'] == 'cu131-sm90'
    if (Path(p['plan_cuda_home']) / 'include').is_dir():  # torch's CUDA 13 wheels are installed here
        assert p['plan_extra_include'] == p['plan_cuda_home'] + '/include'


def test_no_pypi_route_for_cuda_12_wheels(fake_cuda_tools, plan) -> None:
    env = fake_cuda_tools(nvcc_release='12.4')
    p = plan(env, '--torch-cuda', '12.8', '--gpu-capability', '9.0', '--cuda-toolkit', '12.8.1')
    assert p['plan_variant'] == 'cpu' and 'CUDA >= 13' in p['plan_reason']


def test_nvcc_wrapper_without_headers_is_not_a_toolkit(fake_cuda_tools, plan) -> None:
    env = fake_cuda_tools(nvcc_release='12.8', headers=False)
    p = plan(env, '--torch-cuda', '12.8', '--gpu-capability', '9.0', '--cuda-toolkit', '')
    assert p['plan_variant'] == 'cpu'
    assert 'no CUDA headers beside it' in p['plan_reason']


def test_no_matching_nvcc_and_no_pin_says_why_and_what_to_do(fake_cuda_tools, plan) -> None:
    env = fake_cuda_tools(nvcc_release='12.4')
    p = plan(env, '--torch-cuda', '12.8', '--gpu-capability', '9.0', '--cuda-toolkit', '')
    assert p['plan_variant'] == 'cpu'
    assert p['plan_gpu'] == '1'  # the CPU build must then hide the GPU from mmcv's setup.py
    assert 'no nvcc of CUDA 12.8' in p['plan_reason'] and '(12.4)' in p['plan_reason']
    assert 'CUDA_HOME' in p['plan_advice'] and 'torchvision' in p['plan_advice']


def test_gpu_listed_by_nvidia_smi_but_invisible_to_torch(fake_cuda_tools, plan) -> None:
    env = fake_cuda_tools(smi_line='NVIDIA H200, 9.0, 580.159.03')
    p = plan(env, '--torch-cuda', '13.0', '--gpu-capability', '')
    assert p['plan_variant'] == 'cpu' and p['plan_gpu'] == '0'
    assert 'NVIDIA H200, 9.0, 580.159.03' in p['plan_advice']


@pytest.mark.parametrize('torch_cuda', ['', '12.8'])
def test_cpu_only_when_torch_is_a_cpu_build_or_asked(fake_cuda_tools, plan, torch_cuda: str) -> None:
    env = fake_cuda_tools(nvcc_release='12.8')
    if torch_cuda:
        env['MMCV_CUDA'] = '0'
    p = plan(env, '--torch-cuda', torch_cuda, '--gpu-capability', '9.0')
    assert p['plan_variant'] == 'cpu'
    assert ('MMCV_CUDA=0' if torch_cuda else 'CPU build') in p['plan_reason']
