"""torchvision's CUDA kernels for the two mmcv ops our detectors call, when mmcv has no CUDA ops.

mmcv built without nvcc (``tools/install.sh`` on a machine where the CUDA build cannot work) has
only CPU kernels. Its Python wrappers (``RoIAlign`` / ``roi_align``, ``nms`` / ``batched_nms``) call
the compiled module ``mmcv._ext``, whose C++ dispatcher then fails on the first CUDA tensor
("roi_align_forward_impl: implementation for device cuda:0 not found"). The detectors reach
exactly these compiled functions (``tests/foundation/test_mmcv_cuda_fallback.py`` records the calls
of a tiny F-ViT and BARON train and test step): ``roi_align_forward`` / ``roi_align_backward``
through MMDetection's ``SingleRoIExtractor`` (``roi_layer=dict(type='RoIAlign')``) and ``nms``
through ``batched_nms`` (RPN proposals, ``multiclass_nms``, BARON's region sampling).
``clim/models/dense.py`` and BARON's teacher crops call torchvision's ``roi_align`` directly.

torchvision ships CUDA kernels of the same two ops with the same semantics (Detectron2's
RoIAlign: ``aligned`` half-pixel shift, ``sampling_ratio <= 0`` adaptive, average pooling; NMS
suppressing IoU > threshold in descending score order; tied scores keep mmcv's order, see
``TorchvisionKernels.nms``). So instead of changing configs, the
``ext_module`` that ``mmcv.ops.roi_align`` and ``mmcv.ops.nms`` hold is wrapped: calls on CUDA
tensors go to torchvision, every other call (CPU tensors, every other op) goes to mmcv's own
kernels unchanged. mmcv's Python logic around the kernels (score thresholds, ``max_num``,
``split_thr``, class offsets) keeps running as it is. Nothing is installed on a machine without
CUDA or when mmcv was built with CUDA ops.
"""
from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch
from torchvision.ops import nms as tv_nms
from torchvision.ops import roi_align as tv_roi_align

_AVG_POOL = 1  # mmcv's pool_mode code for 'avg' (0 is 'max', which torchvision does not have)


def mmcv_has_cuda_ops() -> bool:
    """Whether the installed mmcv was compiled with CUDA kernels (``MMCV_WITH_CUDA``)."""
    from mmcv.ops import get_compiling_cuda_version

    return get_compiling_cuda_version() not in ('', 'not available')


def _is_cuda(tensor: torch.Tensor) -> bool:
    return tensor.is_cuda


class TorchvisionKernels:
    """Stands in for mmcv's compiled module ``mmcv._ext`` inside ``mmcv.ops.nms`` / ``mmcv.ops.roi_align``.

    ``nms(boxes (N, 4), scores (N,), iou_threshold, offset) -> kept indices (K,) int64``,
    ``roi_align_forward(input (B, C, H, W), rois (R, 5), output (R, C, h, w), ...)`` (fills
    ``output``) and ``roi_align_backward(grad_output (R, C, h, w), rois, ..., grad_input (B, C, H, W),
    ...)`` (fills ``grad_input``) run torchvision's kernels when ``use_torchvision(tensor)`` is true
    (default: the tensor is on CUDA); otherwise, and for every other attribute, mmcv's own.
    Arguments are those mmcv's wrappers pass (keywords included).
    """

    def __init__(self, ext: ModuleType | Any, use_torchvision: Callable[[torch.Tensor], bool] = _is_cuda) -> None:
        self._ext = ext
        self._use_torchvision = use_torchvision

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ext, name)

    def nms(self, bboxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, offset: int) -> torch.Tensor:
        if not self._use_torchvision(bboxes):
            return self._ext.nms(bboxes, scores, iou_threshold=iou_threshold, offset=offset)
        if offset != 0:
            raise NotImplementedError(f'nms with offset={offset} on {bboxes.device}: mmcv has no CUDA ops and '
                                      "torchvision's nms knows only offset 0; build mmcv with CUDA ops "
                                      '(tools/install.sh on this machine)')
        # mmcv's kernels visit the boxes in the order of an unstable descending sort of the scores and
        # return the kept ones in that order; torchvision sorts stably, so tied scores (common for an
        # untrained RPN) would come out in another order and change what is kept downstream. So sort
        # as mmcv does and hand torchvision strictly decreasing ranks. IoU in float32, as mmcv's kernels.
        order = scores.sort(0, descending=True)[1]
        ranks = torch.arange(order.numel(), 0, -1, dtype=torch.float32, device=order.device)
        return order[tv_nms(bboxes[order].float(), ranks, float(iou_threshold))]

    @staticmethod
    def _check_avg(pool_mode: int, device: torch.device) -> None:
        if pool_mode != _AVG_POOL:
            raise NotImplementedError(f"RoIAlign pool_mode='max' on {device}: mmcv has no CUDA ops and "
                                      "torchvision's roi_align only averages; build mmcv with CUDA ops "
                                      '(tools/install.sh on this machine)')

    def roi_align_forward(self, input: torch.Tensor, rois: torch.Tensor, output: torch.Tensor,
                          argmax_y: torch.Tensor, argmax_x: torch.Tensor, aligned_height: int, aligned_width: int,
                          spatial_scale: float, sampling_ratio: int, pool_mode: int, aligned: bool) -> None:
        if not self._use_torchvision(input):
            self._ext.roi_align_forward(input, rois, output, argmax_y, argmax_x, aligned_height=aligned_height,
                                        aligned_width=aligned_width, spatial_scale=spatial_scale,
                                        sampling_ratio=sampling_ratio, pool_mode=pool_mode, aligned=aligned)
            return
        self._check_avg(pool_mode, input.device)
        # mmcv's sampling_ratio 0 and torchvision's <= 0 both mean ceil(roi size / output size) samples.
        output.copy_(tv_roi_align(input, rois.to(input.dtype), (aligned_height, aligned_width), spatial_scale,
                                  sampling_ratio, aligned))

    def roi_align_backward(self, grad_output: torch.Tensor, rois: torch.Tensor, argmax_y: torch.Tensor,
                           argmax_x: torch.Tensor, grad_input: torch.Tensor, aligned_height: int, aligned_width: int,
                           spatial_scale: float, sampling_ratio: int, pool_mode: int, aligned: bool) -> None:
        if not self._use_torchvision(grad_output):
            self._ext.roi_align_backward(grad_output, rois, argmax_y, argmax_x, grad_input,
                                         aligned_height=aligned_height, aligned_width=aligned_width,
                                         spatial_scale=spatial_scale, sampling_ratio=sampling_ratio,
                                         pool_mode=pool_mode, aligned=aligned)
            return
        self._check_avg(pool_mode, grad_output.device)
        # RoIAlign is linear in its input, so its gradient is the same at any input: take it at zeros
        # through torchvision's own autograd (public API, its CUDA backward kernel).
        with torch.enable_grad():
            probe = grad_input.new_zeros(grad_input.shape, requires_grad=True)
            pooled = tv_roi_align(probe, rois.to(probe.dtype), (aligned_height, aligned_width), spatial_scale,
                                  sampling_ratio, aligned)
            (grad,) = torch.autograd.grad(pooled, probe, grad_output.to(pooled.dtype))
        grad_input.copy_(grad)


def _wrapped_modules() -> list[ModuleType]:
    # by module name: the attributes mmcv.ops.nms / mmcv.ops.roi_align are the functions of those names
    return [importlib.import_module('mmcv.ops.nms'), importlib.import_module('mmcv.ops.roi_align')]


def install_torchvision_kernels(use_torchvision: Callable[[torch.Tensor], bool] = _is_cuda) -> None:
    """Wrap the ``ext_module`` of ``mmcv.ops.nms`` and ``mmcv.ops.roi_align`` (idempotent)."""
    for module in _wrapped_modules():
        ext = module.ext_module
        if isinstance(ext, TorchvisionKernels):
            ext = ext._ext
        module.ext_module = TorchvisionKernels(ext, use_torchvision)


def uninstall_torchvision_kernels() -> None:
    """Give ``mmcv.ops.nms`` and ``mmcv.ops.roi_align`` back their own compiled module."""
    for module in _wrapped_modules():
        if isinstance(module.ext_module, TorchvisionKernels):
            module.ext_module = module.ext_module._ext


def install_mmcv_cuda_fallback() -> bool:
    """On a CUDA machine whose mmcv has no CUDA ops, route mmcv's nms / RoIAlign on CUDA tensors to
    torchvision (once, with a warning saying how to get mmcv's own). Returns whether it did."""
    if not torch.cuda.is_available() or mmcv_has_cuda_ops():
        return False
    if not isinstance(_wrapped_modules()[0].ext_module, TorchvisionKernels):
        from mmengine.logging import print_log

        print_log('mmcv was built without CUDA ops: nms and RoIAlign on CUDA tensors run torchvision\'s '
                  'CUDA kernels (same results; other mmcv CUDA ops are unavailable). `bash tools/install.sh` '
                  'on this machine builds mmcv with CUDA ops.', logger='current', level=logging.WARNING)
        install_torchvision_kernels()
    return True
