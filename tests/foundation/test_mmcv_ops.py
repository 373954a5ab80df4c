"""mmcv's compiled ops are present and correct on this machine (its CPU kernels; tests/foundation/
test_mmcv_cuda_fallback.py compares CUDA with CPU where there is a GPU)."""
from __future__ import annotations

import math

import pytest
import torch


def _bilinear(feat: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """Bilinear sample of feat (C, H, W) at (y, x) with RoIAlign's border rules."""
    _, h, w = feat.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return feat.new_zeros(feat.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(math.floor(y)), int(math.floor(x))
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * feat[:, y0, x0] + (1 - ly) * lx * feat[:, y0, x1]
            + ly * (1 - lx) * feat[:, y1, x0] + ly * lx * feat[:, y1, x1])


def _roi_align_by_hand(feat: torch.Tensor, box: list[float], out: int, ratio: int, scale: float) -> torch.Tensor:
    """RoIAlign (aligned=True) of one box, written from its definition."""
    x1, y1, x2, y2 = (v * scale - 0.5 for v in box)
    bin_h, bin_w = (y2 - y1) / out, (x2 - x1) / out
    result = feat.new_zeros(feat.shape[0], out, out)
    for i in range(out):
        for j in range(out):
            acc = feat.new_zeros(feat.shape[0])
            for iy in range(ratio):
                for ix in range(ratio):
                    yy = y1 + i * bin_h + (iy + 0.5) * bin_h / ratio
                    xx = x1 + j * bin_w + (ix + 0.5) * bin_w / ratio
                    acc += _bilinear(feat, yy, xx)
            result[:, i, j] = acc / (ratio * ratio)
    return result


def test_mmcv_build_matches_this_torch() -> None:
    """mmcv._ext loaded against this torch reports its compiler and its CUDA: none ('not available')
    or exactly torch's CUDA major.minor (the installer builds with nvcc of that version); without
    CUDA ops on a CUDA machine, the torchvision stand-in must be in place."""
    import importlib
    import re

    from mmcv.ops import get_compiler_version, get_compiling_cuda_version

    from clim.engine.mmcv_cuda_fallback import TorchvisionKernels, install_mmcv_cuda_fallback, mmcv_has_cuda_ops

    assert re.fullmatch(r'(GCC|clang) \d+\.\d+(\.\d+)?', get_compiler_version()), get_compiler_version()
    cuda = get_compiling_cuda_version()
    if cuda == 'not available':
        assert not mmcv_has_cuda_ops()
        if torch.cuda.is_available():
            install_mmcv_cuda_fallback()  # what `import clim` does
            assert isinstance(importlib.import_module('mmcv.ops.nms').ext_module, TorchvisionKernels)
    else:
        assert mmcv_has_cuda_ops()
        assert torch.version.cuda is not None, f'mmcv has CUDA {cuda} ops but torch {torch.__version__} has no CUDA'
        assert cuda.split('.')[:2] == torch.version.cuda.split('.')[:2], (cuda, torch.version.cuda)


@pytest.mark.parametrize('out_size', [1, 2])
def test_roi_align_matches_hand_computation(out_size: int) -> None:
    from mmcv.ops import roi_align

    feat = torch.randn(1, 3, 9, 11, dtype=torch.float64)
    boxes = [[1.3, 2.1, 15.7, 12.4], [0.0, 0.0, 22.0, 18.0], [5.5, 3.25, 9.0, 17.5]]
    rois = torch.tensor([[0.0, *b] for b in boxes], dtype=torch.float64)
    # positional: roi_align is an autograd Function (output_size, spatial_scale, sampling_ratio, mode, aligned)
    got = roi_align(feat, rois, (out_size, out_size), 0.5, 2, 'avg', True)
    for k, box in enumerate(boxes):
        expected = _roi_align_by_hand(feat[0], box, out_size, ratio=2, scale=0.5)
        torch.testing.assert_close(got[k], expected, atol=1e-9, rtol=1e-9)


def test_nms_keeps_the_expected_boxes() -> None:
    from mmcv.ops import nms

    boxes = torch.tensor([[0, 0, 10, 10],   # best
                          [1, 1, 11, 11],   # IoU 0.68 with box 0: suppressed at 0.5
                          [20, 20, 30, 30],  # disjoint: kept
                          [0, 0, 10, 4]],    # IoU 0.4 with box 0: kept
                         dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2, 3]
    torch.testing.assert_close(dets[:, 4], scores[[0, 2, 3]])
