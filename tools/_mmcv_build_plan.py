"""How tools/install.sh builds mmcv on this machine: CPU ops only, or CUDA ops for the GPU that is here.

    python tools/_mmcv_build_plan.py            # the plan, readable (tools/install.sh --print-plan)
    python tools/_mmcv_build_plan.py --shell    # the plan as shell assignments (tools/install.sh evals them)

Facts come from torch (CUDA build, visible devices and their compute capability), nvidia-smi (the
GPU and driver it lists) and the nvcc binaries found ($CUDA_HOME/bin, /usr/local/cuda/bin, PATH).
The CUDA build needs nvcc of torch's CUDA version (major.minor): a system one, else the one from
NVIDIA's PyPI wheels that the ``cuda-toolkit`` metapackage pins for torch's CUDA (torch's CUDA 13
wheels depend on it), installed into the environment next to torch's CUDA libraries. When no CUDA
build can work, the plan says why and what to do; the detectors then run mmcv's nms / RoIAlign on
torchvision's CUDA kernels (clim/engine/mmcv_cuda_fallback.py).

Environment: ``MMCV_CUDA`` = ``auto`` (default) | ``0`` (CPU ops only) | ``1`` (CUDA ops or fail);
``TORCH_CUDA_ARCH_LIST`` set by the user wins over the detected architectures. ``--torch-cuda`` /
``--gpu-capability`` / ``--cuda-toolkit`` replace the facts read from torch (to see the plan a
machine with other hardware would get).
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field

# The PyPI wheels that make a CUDA_HOME: nvcc (+ its NVVM backend), the CRT / CCCL headers nvcc
# needs, and the runtime headers and libcudart the extension links.
PYPI_TOOLKIT_EXTRAS = 'nvcc,nvvm,crt,cccl,cudart,profiler,nvtx'


@dataclass
class Facts:
    """What the plan is decided from (each field as read on this machine, or given on the command line)."""

    torch_version: str | None
    torch_cuda: str | None  # torch.version.cuda, e.g. '13.0'; None for a CPU build of torch
    gpu_capabilities: list[str]  # compute capability of each device torch sees, e.g. ['9.0']
    gpu_names: list[str]
    smi_gpus: list[str]  # 'name, compute_cap, driver' per GPU nvidia-smi lists; [] when absent
    nvcc: list[tuple[str, str | None, str | None]]  # (path, 'major.minor' or None, its CUDA_HOME or None)
    cuda_toolkit: str | None  # version of the installed cuda-toolkit metapackage (torch's pin)
    cpu_count: int
    mem_gib: float
    env_arch_list: str | None = None
    mmcv_cuda: str = 'auto'
    site_packages: str = field(default_factory=lambda: sysconfig.get_paths()['purelib'])


@dataclass
class Plan:
    """The decision: ``variant`` 'cpu' or e.g. 'cu130-sm90' (the wheel cache key), how nvcc is found."""

    variant: str
    gpu: bool  # torch sees a CUDA device (a CPU build then must hide it from mmcv's setup.py)
    arch_list: str = ''
    nvcc_source: str = ''  # 'system' | 'pypi' | '' (CPU build)
    nvcc: str = ''
    cuda_home: str = ''
    pypi_requirement: str = ''
    # torch's own CUDA wheels' headers (cuBLAS, cuSPARSE, ...: torch's CUDA headers include them; a
    # compiler-only toolkit lacks them), for CPATH
    extra_include: str = ''
    max_jobs: int = 1
    reason: str = ''
    advice: list[str] = field(default_factory=list)


def nvcc_release(nvcc: str) -> str | None:
    """'13.0' from ``nvcc --version`` ('Cuda compilation tools, release 13.0, V13.0.88'), or None."""
    try:
        out = subprocess.run([nvcc, '--version'], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'release (\d+)\.(\d+)', out)
    return f'{match.group(1)}.{match.group(2)}' if match else None


def cuda_home_of(nvcc: str) -> str | None:
    """The toolkit folder of an nvcc binary: the one holding the CUDA runtime headers (a wrapper script
    such as /usr/local/bin/nvcc has none next to it; its real binary may)."""
    for home in (os.path.dirname(os.path.dirname(nvcc)), os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))):
        if os.path.isfile(os.path.join(home, 'include', 'cuda_runtime_api.h')):
            return home
    return None


def nvidia_smi_gpus() -> list[str]:
    """One 'name, compute_cap, driver_version' line per GPU that nvidia-smi lists ([] without it)."""
    smi = shutil.which('nvidia-smi')
    if smi is None:
        return []
    try:
        proc = subprocess.run([smi, '--query-gpu=name,compute_cap,driver_version', '--format=csv,noheader'],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()] if proc.returncode == 0 else []


def nvcc_candidates() -> list[str]:
    """nvcc binaries in the order a CUDA build would look for them (deduplicated by real path)."""
    paths = []
    if os.environ.get('CUDA_HOME'):
        paths.append(os.path.join(os.environ['CUDA_HOME'], 'bin', 'nvcc'))
    paths.append('/usr/local/cuda/bin/nvcc')
    if shutil.which('nvcc'):
        paths.append(shutil.which('nvcc'))
    seen, found = set(), []
    for path in paths:
        real = os.path.realpath(path)
        if os.access(path, os.X_OK) and real not in seen:
            seen.add(real)
            found.append(path)
    return found


def _mem_gib() -> float:
    try:
        return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    except (ValueError, OSError):
        return 8.0


def read_facts(args: argparse.Namespace) -> Facts:
    torch_version = torch_cuda = None
    caps: list[str] = []
    names: list[str] = []
    try:
        import torch

        torch_version = torch.__version__
        torch_cuda = torch.version.cuda
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                caps.append('{}.{}'.format(*torch.cuda.get_device_capability(i)))
                names.append(torch.cuda.get_device_name(i))
    except ImportError:
        pass
    if args.torch_cuda is not None:
        torch_cuda = args.torch_cuda or None
    if args.gpu_capability is not None:
        caps = [c for c in args.gpu_capability.split(',') if c]
        names = ['(given on the command line)'] * len(caps)
    toolkit = args.cuda_toolkit
    if toolkit is None:
        try:
            from importlib.metadata import PackageNotFoundError, version

            toolkit = version('cuda-toolkit')
        except PackageNotFoundError:
            toolkit = None
    return Facts(torch_version=torch_version, torch_cuda=torch_cuda, gpu_capabilities=caps, gpu_names=names,
                 smi_gpus=nvidia_smi_gpus(),
                 nvcc=[(p, nvcc_release(p), cuda_home_of(p)) for p in nvcc_candidates()],
                 cuda_toolkit=toolkit or None, cpu_count=os.cpu_count() or 1, mem_gib=_mem_gib(),
                 env_arch_list=os.environ.get('TORCH_CUDA_ARCH_LIST') or None,
                 mmcv_cuda=os.environ.get('MMCV_CUDA', 'auto'))


def _arch_key(arch_list: str) -> str:
    """'8.0;9.0+PTX' -> 'sm80-sm90ptx' (part of the wheel cache key)."""
    return '-'.join('sm' + re.sub(r'[^0-9a-zA-Z]', '', a).lower() for a in re.split(r'[;\s,]+', arch_list) if a)


def _describe_nvcc(facts: Facts) -> str:
    return ', '.join(f'{p} ({r or "version unreadable"}{"" if h else ", no CUDA headers beside it"})'
                     for p, r, h in facts.nvcc)


def decide(facts: Facts) -> Plan:
    """The build plan for ``facts``."""
    gpu = bool(facts.gpu_capabilities)
    cpu = Plan(variant='cpu', gpu=gpu)
    if facts.mmcv_cuda not in ('auto', '0', '1'):
        raise SystemExit(f"_mmcv_build_plan: MMCV_CUDA must be 'auto', '0' or '1', not {facts.mmcv_cuda!r}")
    if facts.mmcv_cuda == '0':
        cpu.reason = 'MMCV_CUDA=0: CPU ops only'
        return cpu
    if facts.torch_cuda is None:
        cpu.reason = f'torch {facts.torch_version or "(not installed)"} is a CPU build'
        if facts.smi_gpus:
            cpu.advice.append(f'nvidia-smi lists {facts.smi_gpus[0]}: install a CUDA build of torch to use it')
        return cpu
    if not gpu:
        cpu.reason = f'torch {facts.torch_version} (CUDA {facts.torch_cuda}) sees no CUDA device'
        if facts.smi_gpus:
            cpu.advice.append(f'nvidia-smi lists {facts.smi_gpus[0]} (name, compute capability, driver) but torch '
                              f'cannot use it: is the driver new enough for CUDA {facts.torch_cuda}, and is '
                              'CUDA_VISIBLE_DEVICES set?')
        return cpu
    arch_list = facts.env_arch_list or ';'.join(sorted(set(facts.gpu_capabilities), key=lambda c: tuple(
        int(x) for x in c.split('.'))))
    # nvcc's device code compiles take ~1.5 GiB each: bound the parallel jobs by memory as well as cores.
    max_jobs = max(1, min(facts.cpu_count, int(facts.mem_gib // 1.5)))
    plan = Plan(variant=f'cu{facts.torch_cuda.replace(".", "")}-{_arch_key(arch_list)}', gpu=True,
                arch_list=arch_list, max_jobs=max_jobs)
    major = int(facts.torch_cuda.split('.')[0])
    wheel_include = os.path.join(facts.site_packages, 'nvidia', f'cu{major}', 'include')
    plan.extra_include = wheel_include if os.path.isdir(wheel_include) else ''
    for path, release, home in facts.nvcc:
        if release == facts.torch_cuda and home:
            plan.nvcc_source, plan.nvcc, plan.cuda_home = 'system', path, home
            plan.reason = f'system nvcc {release} ({path}) matches torch\'s CUDA {facts.torch_cuda}'
            return plan
    found = _describe_nvcc(facts) or 'none'
    # From CUDA 13 on, NVIDIA's wheels share one prefix, site-packages/nvidia/cu<major>: installed next
    # to torch's own CUDA wheels (cuBLAS, cuSPARSE, ... headers that torch's headers include), nvcc
    # and the CRT / CCCL headers complete a CUDA_HOME there.
    if (major >= 13 and facts.cuda_toolkit
            and facts.cuda_toolkit.split('.')[:2] == facts.torch_cuda.split('.')[:2]):
        plan.nvcc_source = 'pypi'
        plan.pypi_requirement = f'cuda-toolkit[{PYPI_TOOLKIT_EXTRAS}]=={facts.cuda_toolkit}'
        plan.cuda_home = os.path.join(facts.site_packages, 'nvidia', f'cu{major}')
        plan.nvcc = os.path.join(plan.cuda_home, 'bin', 'nvcc')
        plan.reason = (f'no system nvcc of CUDA {facts.torch_cuda} (found: {found}); nvcc and headers from '
                       f'NVIDIA\'s PyPI wheels, {plan.pypi_requirement}')
        return plan
    cpu.reason = (f'no nvcc of CUDA {facts.torch_cuda} (found: {found}), and torch {facts.torch_version} does not '
                  'pin a CUDA >= 13 cuda-toolkit metapackage whose PyPI wheels would provide one')
    cpu.advice.append(f'install the CUDA {facts.torch_cuda} toolkit (nvcc) and rerun with CUDA_HOME=<its folder>; '
                      "until then nms / RoIAlign on CUDA run torchvision's kernels")
    return cpu


def describe(facts: Facts, plan: Plan) -> str:
    lines = [f'torch: {facts.torch_version} (CUDA {facts.torch_cuda or "none"})',
             'GPUs torch sees: ' + (', '.join(f'{n} (sm {c})' for n, c in zip(facts.gpu_names, facts.gpu_capabilities))
                                    or 'none'),
             'nvidia-smi: ' + ('; '.join(facts.smi_gpus) or 'no GPU listed (or not installed)'),
             'nvcc found: ' + (_describe_nvcc(facts) or 'none'),
             f'mmcv ops: {"CUDA + CPU" if plan.variant != "cpu" else "CPU only"} (variant {plan.variant})',
             f'why: {plan.reason}']
    if plan.variant != 'cpu':
        lines += [f'TORCH_CUDA_ARCH_LIST={plan.arch_list}', f'MAX_JOBS={plan.max_jobs}',
                  f'nvcc: {plan.nvcc} ({plan.nvcc_source})', f'CUDA_HOME={plan.cuda_home}',
                  f'CPATH+={plan.extra_include or "(none)"}']
        if plan.pypi_requirement:
            lines.append(f'pip install --target: {plan.pypi_requirement}')
    lines += [f'advice: {a}' for a in plan.advice]
    return '\n'.join(lines)


def as_shell(plan: Plan) -> str:
    values = dict(plan_variant=plan.variant, plan_gpu=int(plan.gpu), plan_arch_list=plan.arch_list,
                  plan_nvcc_source=plan.nvcc_source, plan_nvcc=plan.nvcc, plan_cuda_home=plan.cuda_home,
                  plan_pypi_requirement=plan.pypi_requirement, plan_extra_include=plan.extra_include,
                  plan_max_jobs=plan.max_jobs,
                  plan_reason=plan.reason, plan_advice=' '.join(plan.advice))
    return '\n'.join(f'{k}={shlex.quote(str(v))}' for k, v in values.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shell', action='store_true', help='print shell assignments (plan_*) instead')
    parser.add_argument('--torch-cuda', help="replace torch.version.cuda ('' for a CPU build of torch)")
    parser.add_argument('--gpu-capability', help="replace the visible devices' compute capabilities, e.g. 9.0 "
                        "or 8.0,9.0 ('' for none)")
    parser.add_argument('--cuda-toolkit', help='replace the installed cuda-toolkit metapackage version')
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    facts = read_facts(args)
    plan = decide(facts)
    print(as_shell(plan) if args.shell else describe(facts, plan))


if __name__ == '__main__':
    sys.exit(main())
