"""CLIM: CLIP models, the CLIM method and caption data.

Importing it registers every module in MMDetection's registries, routes MMEngine's checkpoint
I/O through ``clim.engine`` (allow-listed loading under torch>=2.6, atomic writes) and, on a CUDA
machine whose mmcv has no CUDA ops, runs mmcv's nms / RoIAlign on torchvision's CUDA kernels.
"""
from . import datasets, evaluation, method, models  # noqa: F401
from .engine import install_checkpoint_safety, install_mmcv_cuda_fallback

install_checkpoint_safety()
install_mmcv_cuda_fallback()
