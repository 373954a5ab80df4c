"""Mixed precision on CPU: MMEngine's AmpOptimWrapper only runs on accelerators, and bf16 autocast is not
always faster on a CPU.

``tools/train.py --amp`` on a CPU therefore times one training step of the real model on a real batch of
the config both ways (:func:`probe_training_step`) and keeps float32 unless bf16 measured faster, saying
so with the numbers. :func:`probe_cpu_bf16` (one ViT-B block) is the fallback where no model step can be
timed.

Why (the measurements): see docs/performance.md#mixed-precision-on-cpu.
"""
from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

import torch
from mmdet.registry import OPTIM_WRAPPERS
from mmengine.optim import OptimWrapper
from torch import nn

__all__ = ['CPUAmpProbe', 'CPUBf16AmpOptimWrapper', 'probe_cpu_bf16', 'preserved_rng', 'probe_training_step',
           'time_precisions']


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
    """Median seconds of one timed training step in float32 and under bf16 autocast; ``what`` names the step
    (the message says what was timed)."""

    fp32_s: float
    bf16_s: float
    what: str = 'one ViT-B-sized transformer block forward + backward'

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
        timing = (f'{self.what} took {self.bf16_s * 1e3:.0f} ms under '
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


def time_precisions(step: Callable[[], object], repeats: int = 3, warmup: int = 1,
                    clock: Callable[[], float] = time.perf_counter) -> tuple[float, float]:
    """Median seconds of ``step()`` in float32 and under CPU bf16 autocast.

    Args:
        step: one forward + backward; called ``warmup + repeats`` times per precision, interleaved (load
            drift on a shared machine hits both).
        clock: seconds now (a seam for tests).

    Returns:
        ``(fp32_s, bf16_s)``.
    """
    def timed(bf16: bool) -> float:
        t0 = clock()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            step()
        return clock() - t0

    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(warmup):
        for bf16 in (False, True):
            timed(bf16)  # oneDNN primitive creation, allocator warm-up
    for _ in range(max(1, repeats)):
        for bf16 in (False, True):
            times[bf16].append(timed(bf16))
    return statistics.median(times[False]), statistics.median(times[True])


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

    def step() -> None:
        block(x).float().square().mean().backward()
        block.zero_grad(set_to_none=True)

    fp32_s, bf16_s = time_precisions(step, repeats=repeats)
    return CPUAmpProbe(fp32_s=fp32_s, bf16_s=bf16_s)


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Python, NumPy and torch (CPU) random states are restored after the block: loading a probe batch
    through the pipeline or timing steps must not shift what training draws."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@contextmanager
def _untouched(model: nn.Module) -> Iterator[None]:
    """Restore the model's gradients, buffers (BatchNorm statistics) and every RNG after the block: timing
    steps must leave training exactly as it would have run without them."""
    grads = {n: p.grad for n, p in model.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    try:
        with preserved_rng():
            yield
    finally:
        for n, p in model.named_parameters():
            p.grad = grads[n]
        with torch.no_grad():
            for n, b in model.named_buffers():
                b.copy_(buffers[n])


def describe_batch(data: dict) -> str:
    """'inputs (32, 3, 224, 224)'-style summary of a collated batch (what the probe message names)."""
    inputs = data.get('inputs')
    if isinstance(inputs, torch.Tensor):
        return f'inputs {tuple(inputs.shape)}'
    if isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], torch.Tensor):
        shapes = sorted({tuple(x.shape) for x in inputs})
        return f'{len(inputs)} inputs of {", ".join(map(str, shapes[:3]))}'
    return 'one batch'


def probe_training_step(model: nn.Module, data: dict, repeats: int = 2, warmup: int = 1,
                        clock: Callable[[], float] = time.perf_counter) -> CPUAmpProbe:
    """Time the model's own training step (preprocess once, then ``forward(mode='loss')`` + backward, as
    MMEngine's ``train_step`` runs it) in float32 and under bf16 autocast, without changing the model.

    Args:
        model: an MMEngine ``BaseModel`` in the state training starts from (not a DDP wrapper).
        data: one collated batch of the training dataloader (so mosaic size, batch and text path are the
            config's).
        clock: seconds now (a seam for tests).

    Returns:
        the medians of ``repeats`` timed steps per precision after ``warmup``; weights, gradients, buffers
        and RNG states are as before.
    """
    was_training = model.training
    model.train()
    with _untouched(model):
        processed = model.data_preprocessor(data, True)

        def step() -> None:
            losses = model(**processed, mode='loss')
            loss, _ = model.parse_losses(losses)
            loss.backward()
            for p in model.parameters():
                p.grad = None

        fp32_s, bf16_s = time_precisions(step, repeats=repeats, warmup=warmup, clock=clock)
    model.train(was_training)
    mosaics = getattr(model, 'train_image_size', None)
    shape = describe_batch(data) + (f', mosaics at {mosaics}' if mosaics else '')
    what = f'one training step of this {type(model).__name__} ({shape}, forward + backward)'
    return CPUAmpProbe(fp32_s=fp32_s, bf16_s=bf16_s, what=what)
