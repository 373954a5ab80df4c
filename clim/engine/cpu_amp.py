"""Mixed precision on CPU: MMEngine's AmpOptimWrapper only runs on accelerators."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from mmdet.registry import OPTIM_WRAPPERS
from mmengine.optim import OptimWrapper
from torch import nn


@OPTIM_WRAPPERS.register_module()
class CPUBf16AmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under ``torch.autocast('cpu', dtype=torch.bfloat16)``.

    bfloat16 has float32's exponent range, so no loss scaling is needed. ``tools/train.py --amp``
    picks this wrapper when there is no CUDA; arguments are those of :class:`OptimWrapper`
    (a ``loss_scale`` entry, meaningful only for fp16, is accepted and ignored).
    """

    def __init__(self, *args, loss_scale: object = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.bfloat16):
            yield
