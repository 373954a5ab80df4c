"""The steps of tools/gpu_check.sh that need Python; each prints one table row (or a workspace).

    python tools/_gpu_check.py workspace DIR            # tiny detector + CLIM data, tiny CLIP, embeddings
    python tools/_gpu_check.py ops DEVICE               # mmcv RoIAlign / nms on DEVICE against mmcv on CPU
    python tools/_gpu_check.py run WORK_DIR EXPECT      # a tools/train.py run: final loss, val metric
    python tools/_gpu_check.py bench NAME RESULTS_DIR   # a benchmarks/*.py result: images/s, peak memory

A row is ``status<TAB>result``; status is ``ok``, ``FAIL`` or ``n/a``. The exit status is 1 for FAIL.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path


# float32 kernels summing in different orders; far below any real disagreement (wrong alignment,
# sampling or box convention moves results by O(1e-1)).
ROI_TOLERANCE = 1e-4


def row(status: str, result: str) -> int:
    print(f'{status}\t{result}')
    return 1 if status == 'FAIL' else 0


def workspace(root: str) -> int:
    from ovd_demo.shapes import generate_shapes_dataset
    from tests.helpers import make_tiny_detector_workspace

    make_tiny_detector_workspace(Path(root))  # incl. the "attn12" file of configs/tiny/baron_kd_tiny_shapes.py
    # CLIM's mosaics need >= 29 images per batch (the tiny config's batch is 32): two batches per epoch.
    generate_shapes_dataset(Path(root) / 'data' / 'shapes_clim', num_train=64, num_val=8, image_size=64, seed=1)
    return row('ok', f'workspace {root}')


def _roi_case(device: str, aligned: bool, sampling_ratio: int):
    import torch
    from mmcv.ops import RoIAlign

    g = torch.Generator().manual_seed(sampling_ratio + 2 * aligned)
    n = 64 if device == 'cpu' else 300  # the dry run's CPU kernels are slow
    feat = torch.randn(2, 16, 40, 56, generator=g)
    xy = torch.rand(n, 2, generator=g) * torch.tensor([224.0, 160.0])
    wh = torch.rand(n, 2, generator=g) * 96 + 0.5
    rois = torch.cat([torch.randint(0, 2, (n, 1), generator=g).float(), xy, xy + wh], 1)
    grad_out = torch.randn(n, 16, 7, 7, generator=g)
    layer = RoIAlign((7, 7), spatial_scale=0.25, sampling_ratio=sampling_ratio, aligned=aligned)
    results = []
    for dev in ('cpu', device):
        x = feat.to(dev).requires_grad_(True)
        out = layer(x, rois.to(dev))
        out.backward(grad_out.to(dev))
        results.append((out.detach().cpu(), x.grad.cpu()))
    (out_cpu, grad_cpu), (out_dev, grad_dev) = results
    return (out_cpu - out_dev).abs().max().item(), (grad_cpu - grad_dev).abs().max().item()


def _kernels() -> str:
    import importlib

    from clim.engine.mmcv_cuda_fallback import TorchvisionKernels, mmcv_has_cuda_ops

    if isinstance(importlib.import_module('mmcv.ops.nms').ext_module, TorchvisionKernels):
        return "torchvision's kernels (mmcv has no CUDA ops)"
    return 'mmcv CUDA ops' if mmcv_has_cuda_ops() else 'mmcv CPU ops'


def ops(device: str) -> int:
    """RoIAlign forward / backward and nms / batched_nms of ``device`` against mmcv's CPU kernels.

    ``device`` 'cpu' (the dry run) compares torchvision's kernels, forced onto CPU tensors, with mmcv's:
    the arithmetic the fallback would do on a GPU."""
    import torch
    from mmcv.ops import batched_nms, nms

    import clim  # noqa: F401  (installs the fallback where it applies)
    from clim.engine.mmcv_cuda_fallback import install_torchvision_kernels, uninstall_torchvision_kernels

    forced = device == 'cpu'
    if forced:
        install_torchvision_kernels(use_torchvision=lambda t: True)
    try:
        kernels = "torchvision's kernels on CPU tensors" if forced else _kernels()
        worst_fwd = worst_bwd = 0.0
        for aligned in (True, False):
            for ratio in (0, 2):
                fwd, bwd = _roi_case(device, aligned, ratio)
                worst_fwd, worst_bwd = max(worst_fwd, fwd), max(worst_bwd, bwd)
        g = torch.Generator().manual_seed(0)
        xy = torch.rand(3000, 2, generator=g) * 600
        boxes = torch.cat([xy, xy + torch.rand(3000, 2, generator=g) * 120 + 1], 1)
        scores = torch.rand(3000, generator=g)
        labels = torch.randint(0, 20, (3000,), generator=g)
        cfg = dict(type='nms', iou_threshold=0.5)
        keep = [nms(boxes.to(d), scores.to(d), 0.5)[1].cpu() for d in ('cpu', device)]
        bkeep = [batched_nms(boxes.to(d), scores.to(d), labels.to(d), cfg)[1].cpu() for d in ('cpu', device)]
    finally:
        if forced:
            uninstall_torchvision_kernels()
    status = 0
    ok = worst_fwd <= ROI_TOLERANCE and worst_bwd <= ROI_TOLERANCE
    status |= row('ok' if ok else 'FAIL', f'RoIAlign {device} vs mmcv CPU ({kernels}): max|diff| forward '
                  f'{worst_fwd:.1e}, backward {worst_bwd:.1e} (aligned, sampling_ratio 0 / 2)')
    same = torch.equal(keep[0], keep[1]) and torch.equal(bkeep[0], bkeep[1])
    status |= row('ok' if same else 'FAIL', f'nms / batched_nms {device} vs mmcv CPU ({kernels}): '
                  f'{"identical" if same else "DIFFERENT"} kept boxes ({len(keep[0])} / {len(bkeep[0])} of 3000)')
    return status


def _scalars(work_dir: Path) -> list[dict]:
    files = sorted(work_dir.glob('*/vis_data/scalars.json'))
    if not files:
        return []
    return [json.loads(line) for line in files[-1].read_text().splitlines() if line.strip()]


def run(work_dir: str, expect: str) -> int:
    """A finished tools/train.py run: checkpoint written, every logged loss finite, a val metric
    logged, and the optimizer wrapper / backend the row asked for (``expect``: 'fp16', 'bf16',
    'nccl', 'gloo' or 'fp32')."""
    from mmengine.config import Config

    work = Path(work_dir)
    ckpts = sorted(work.glob('*.pth'))
    records = _scalars(work)
    losses = [r['loss'] for r in records if 'loss' in r]
    metrics = [r for r in records if 'loss' not in r and any(k != 'step' for k in r)]
    problems = []
    if not ckpts:
        problems.append('no checkpoint')
    if not losses:
        problems.append('no loss logged')
    elif not all(math.isfinite(v) for v in losses):
        problems.append(f'non-finite loss {losses}')
    if not metrics:
        problems.append('no val metric logged')
    dumped = sorted(work.glob('*.py'))
    cfg = Config.fromfile(str(dumped[-1])) if dumped else None
    if cfg is not None:
        wrapper = cfg.optim_wrapper
        if expect in ('fp16', 'bf16'):
            want_dtype = 'float16' if expect == 'fp16' else 'bfloat16'
            got = wrapper.get('dtype') or ('bfloat16' if wrapper.type == 'CPUBf16AmpOptimWrapper' else 'float16')
            if 'Amp' not in wrapper.type or got != want_dtype:
                problems.append(f'optim_wrapper {wrapper.type} ({got}), not {expect} AMP')
    log_files = sorted(work.glob('*/*.log'))
    log = log_files[-1].read_text() if log_files else ''
    if expect in ('nccl', 'gloo') and f"'backend': '{expect}'" not in log:
        problems.append(f'backend {expect} not in the log')
    metric = {k: v for k, v in (metrics[-1] if metrics else {}).items() if k not in ('step', 'data_time', 'time')}
    first = next(iter(metric.items()), None)
    shown = f'{first[0]} {first[1]:.4g}' if first and isinstance(first[1], (int, float)) else 'no metric'
    result = (f'{len(losses)} iters, loss {losses[0]:.4g} -> {losses[-1]:.4g}, {shown}' if losses
              else 'no iterations')
    if problems:
        return row('FAIL', f'{result}; ' + '; '.join(problems))
    return row('ok', result)


def bench(name: str, results_dir: str) -> int:
    """images/s and peak memory of one benchmarks/*.py run (its JSON under ``results_dir``)."""
    files = sorted(Path(results_dir).glob('*.json'))
    if not files:
        return row('FAIL', f'no results JSON in {results_dir}')
    doc = json.loads(files[-1].read_text())

    def mem(m: dict) -> str:
        if 'cuda_peak_alloc_mib' in m:
            return f'peak GPU {m["cuda_peak_alloc_mib"] / 1024:.2f} GiB'
        return f'peak RSS {m["peak_rss_mib"] / 1024:.2f} GiB'

    if name == 'dense':
        parts = []
        for r in doc['results']:
            v2 = r['v2_dense']
            parts.append(f'{r["size"]} px: {doc.get("batch", 1) / v2["time"]["median_s"]:.3g} img/s, '
                         f'v2/plain {r["ratio"]:.3g}x, {mem(v2["memory"])}')
        return row('ok', '; '.join(parts))
    if name == 'clim_step':
        clim, plain = doc['rows'][0], doc['rows'][1]
        cfg = doc['config']
        return row('ok', f'batch {cfg["batch"]}, mosaics {cfg["mosaic_size"]} px: {clim["images_per_s"]:.3g} img/s '
                   f'(plain CLIP step {plain["images_per_s"]:.3g}), {mem(clim)}')
    if name == 'fvit_infer':
        t = doc['timings']['fvit']['median_s']
        return row('ok', f'{doc["args"]["size"]} px, batch 1: {1 / t:.3g} img/s, {mem(doc["memory"])}')
    return row('FAIL', f'unknown benchmark {name}')


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    steps = dict(workspace=workspace, ops=ops, run=run, bench=bench)
    if cmd not in steps:
        print(f'_gpu_check: unknown step {cmd!r}; one of {", ".join(steps)}', file=sys.stderr)
        return 2
    return steps[cmd](*args)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
