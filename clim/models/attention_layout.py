"""Batch-first ``nn.MultiheadAttention`` without autograd: one matrix product for the input projection.

open_clip's transformer blocks call ``nn.MultiheadAttention(batch_first=True)`` with (N, L, E) tokens; the
module transposes them to an (L, N, E) *view* and ``F.linear`` applies the packed q/k/v projection to it.
``torch.matmul`` folds a non-contiguous 3-D input into one (L * N, E) matrix product only when something
needs a gradient or N is 1; otherwise (frozen blocks: CLIM's first 6 ViT blocks, every frozen text tower)
it broadcasts the weight to (L, E, 3E) and runs a batched product of L tiny (N, E) @ (E, 3E) matrices,
slower than the folded product in float32 and far slower under CPU bf16 autocast, where oneDNN
materialises the broadcast weight (docs/reference_parity.md, T5).

:func:`fold_attention_inputs` hands such attention modules their input already laid out as (L, N, E) in
memory, so the module's transpose gives a contiguous tensor and the projection is one GEMM. Same function,
other GEMM blocking: rounding-level differences only.
Only CPU tensors are touched (CUDA's strided batched GEMM does not materialise the broadcast), and only
calls that take the module's slow path without gradients: training mode or autocast, nothing requiring
grad. When a gradient is needed, matmul makes the same copy itself, so trainable blocks are unchanged.

Why (the measurements): see docs/performance.md#frozen-attention-input-layout.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ['fold_attention_inputs', 'unfold_attention_inputs']


def _needs_grad(mod: nn.MultiheadAttention, x: torch.Tensor) -> bool:
    if not torch.is_grad_enabled():
        return False
    return x.requires_grad or any(p is not None and p.requires_grad for p in (mod.in_proj_weight, mod.in_proj_bias))


def _fold_input(mod: nn.MultiheadAttention, args: tuple) -> tuple | None:
    if len(args) < 3:
        return None
    q, k, v = args[:3]
    if not (q is k and k is v) or q.dim() != 3 or q.device.type != 'cpu' or not mod.batch_first:
        return None
    # Eval mode without autocast takes torch's fused fast path (or matmul folds for the gradient): no relayout.
    if not (mod.training or torch.is_autocast_enabled('cpu')) or _needs_grad(mod, q):
        return None
    x = q.transpose(0, 1).contiguous().transpose(0, 1)  # same (N, L, E) values, (L, N, E) memory
    return (x, x, x, *args[3:])  # one object three times: MHA's packed self-attention path needs `q is k is v`


def _hook_ids(m: nn.Module) -> list[int]:
    return [i for i, hook in m._forward_pre_hooks.items() if hook is _fold_input]


def fold_attention_inputs(module: nn.Module) -> int:
    """Install the input relayout on every batch-first ``nn.MultiheadAttention`` in ``module`` (idempotent;
    survives ``copy.deepcopy`` and pickling: the hook is a module-level function).

    Args:
        module: any module (a CLIP, a tower, a block).

    Returns:
        how many attention modules carry the relayout now.
    """
    count = 0
    for m in module.modules():
        if isinstance(m, nn.MultiheadAttention) and m.batch_first:
            if not _hook_ids(m):
                m.register_forward_pre_hook(_fold_input)
            count += 1
    return count


def unfold_attention_inputs(module: nn.Module) -> None:
    """Remove what :func:`fold_attention_inputs` installed (open_clip's own kernels again)."""
    for m in module.modules():
        for i in _hook_ids(m):
            del m._forward_pre_hooks[i]
