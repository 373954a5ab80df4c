"""Mixed precision on CPU: MMEngine's AmpOptimWrapper only runs on accelerators, and bf16 autocast is not
always faster on a CPU.

Measured on an AMD EPYC with avx512_bf16 (issue 17): the CLIM ViT-B/16 step took 20.0 s under bf16
autocast against 7.9 s in float32, 2.5x slower; CPUs with AMX tiles (Intel Sapphire Rapids and later)
can gain instead. So ``tools/train.py --amp`` on a CPU first times a transformer block both ways
(:func:`probe_cpu_bf16`, ~2 s) and keeps float32 when bf16 is not faster, saying so with the numbers.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from mmdet.registry import OPTIM_WRAPPERS
from mmengine.optim import OptimWrapper
from torch import nn

__all__ = ['CPUAmpProbe', 'CPUBf16AmpOptimWrapper', 'probe_cpu_bf16']


@OPTIM_WRAPPERS.register_module()
class CPUBf16AmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under ``torch.autocast('cpu', dtype=torch.bfloat16)``.

    bfloat16 has float32's exponent range, so no loss scaling is needed. ``tools/train.py --amp``
    picks this wrapper when there is no CUDA and bf16 measured faster (see :func:`probe_cpu_bf16`);
    arguments are those of :class:`OptimWrapper` (a ``loss_scale`` entry, meaningful only for fp16, is
    accepted and ignored).
    """

    def __init__(self, *args, loss_scale: object = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.bfloat16):
            yield


@dataclass
class CPUAmpProbe:
    """Median seconds of one training step of the probe block in float32 and under bf16 autocast."""

    fp32_s: float
    bf16_s: float

    @property
    def speedup(self) -> float:
        """fp32 time / bf16 time (> 1: bf16 is faster)."""
        return self.fp32_s / self.bf16_s

    @property
    def bf16_faster(self) -> bool:
        # A 5 % margin: a tie is not worth bf16's rounding.
        return self.speedup > 1.05

    def message(self) -> str:
        cpu = _cpu_name()
        timing = (f'one ViT-B-sized transformer block forward + backward took {self.bf16_s * 1e3:.0f} ms under '
                  f'bf16 autocast vs {self.fp32_s * 1e3:.0f} ms in float32 on {cpu} '
                  f'({torch.get_num_threads()} threads)')
        if self.bf16_faster:
            return f'--amp on CPU: {timing}, {self.speedup:.2f}x faster: training with bf16 autocast'
        return (f'--amp on CPU: {timing}, {1 / self.speedup:.2f}x the time: bf16 autocast would slow training '
                f'down on this CPU, so it trains in float32 (--cpu-amp bf16 forces bf16)')


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return 'this CPU'


def probe_cpu_bf16(width: int = 768, tokens: int = 197, batch: int = 4, repeats: int = 3) -> CPUAmpProbe:
    """Time a pre-norm transformer block (ViT-B/16 sized by default: width 768, 12 heads, MLP 4x) on
    (batch, tokens, width) inputs, forward + backward, in float32 and under CPU bf16 autocast.

    Returns:
        the medians of ``repeats`` timed steps each, after one warm-up step.
    """
    gen = torch.Generator().manual_seed(0)
    block = nn.TransformerEncoderLayer(width, max(1, width // 64), 4 * width, dropout=0.0, activation='gelu',
                                       batch_first=True, norm_first=True)
    x = torch.randn(batch, tokens, width, generator=gen)

    def step(bf16: bool) -> float:
        t0 = time.perf_counter()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            out = block(x)
        out.float().square().mean().backward()
        block.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    times: dict[bool, list[float]] = {False: [], True: []}
    for bf16 in (False, True):
        step(bf16)  # warm-up: oneDNN primitive creation
    for _ in range(repeats):
        for bf16 in (False, True):  # interleaved: load drift on a shared machine hits both
            times[bf16].append(step(bf16))
    return CPUAmpProbe(fp32_s=statistics.median(times[False]), bf16_s=statistics.median(times[True]))
