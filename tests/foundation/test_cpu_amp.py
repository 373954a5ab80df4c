"""--amp on a machine without CUDA: bf16 autocast through CPUBf16AmpOptimWrapper."""
from __future__ import annotations

import torch
from torch import nn


def test_cpu_amp_wrapper_autocasts_and_steps() -> None:
    import clim  # noqa: F401  (registers the wrapper)
    from mmdet.registry import OPTIM_WRAPPERS

    model = nn.Linear(8, 4)
    before = model.weight.detach().clone()
    wrapper = OPTIM_WRAPPERS.build(dict(type='CPUBf16AmpOptimWrapper', loss_scale='dynamic',
                                        optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 8))
    assert out.dtype == torch.bfloat16  # the matmul ran in bf16
    wrapper.update_params(out.float().pow(2).mean())
    assert model.weight.dtype == torch.float32  # master weights stay fp32
    assert not torch.equal(before, model.weight)
    with wrapper.optim_context(model):
        pass
    assert model(torch.randn(3, 8)).dtype == torch.float32  # autocast ends with the context
