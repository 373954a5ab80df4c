"""Frozen attention blocks project their input with one GEMM (clim.models.attention_layout), same losses.

Without it, a block that runs without autograd (CLIM's frozen ViT blocks, the frozen text tower) projects
q/k/v through a batched product with the weight broadcast over the sequence, which oneDNN copies under
CPU bf16 autocast: the bf16 CLIM step was 2.5-4x slower than float32 (issue 17).
"""
from __future__ import annotations

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from clim.models.attention_layout import fold_attention_inputs, unfold_attention_inputs
from clim_test_utils import build_tiny_clim, random_batch


def _broadcast_weight_products(fn) -> list[list]:
    """Input shapes of every ``aten::bmm`` whose second operand is a 3-D projection weight (L, E, 3E)."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        fn()
    out = []
    for e in prof.events():
        if e.name == 'aten::bmm' and len(e.input_shapes) >= 2 and len(e.input_shapes[1]) == 3:
            l_dim, e_dim, out_dim = e.input_shapes[1]
            if out_dim == 3 * e_dim:
                out.append(e.input_shapes)
    return out


def _step(model, data: dict, bf16: bool) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        loss = model.loss(data['inputs'], data['data_samples'])['loss_contrast']
    loss.backward()
    return loss.detach()


@pytest.fixture
def clim_pair(tiny_clip_cfg: dict):
    """The tiny CLIM (block 0 and the text tower frozen) with and without the fold, same weights, and a
    preprocessed batch of two 2x2 mosaics + two single images (one sequence alone would fold anyway)."""
    folded = build_tiny_clim(tiny_clip_cfg, mosaic_choices=(2,))
    upstream = build_tiny_clim(tiny_clip_cfg, mosaic_choices=(2,), fold_frozen_attention=False)
    upstream.load_state_dict(folded.state_dict())
    folded.train(), upstream.train()
    data = folded.data_preprocessor(random_batch(10), True)
    return folded, upstream, data


@pytest.mark.parametrize('bf16', [False, True])
def test_frozen_blocks_project_with_one_gemm(clim_pair, bf16: bool) -> None:
    folded, upstream, data = clim_pair
    # The un-folded model shows what is looked for: frozen image block 0 (mosaic and single) and both
    # text blocks broadcast their projection weight.
    assert len(_broadcast_weight_products(lambda: _step(upstream, data, bf16))) >= 4
    assert _broadcast_weight_products(lambda: _step(folded, data, bf16)) == []


def test_fold_keeps_losses_and_gradients(clim_pair) -> None:
    folded, upstream, data = clim_pair
    for bf16 in (False, True):
        a, b = _step(folded, data, bf16), _step(upstream, data, bf16)
        grads = {n: p.grad for n, p in folded.named_parameters() if p.grad is not None}
        ref = {n: p.grad for n, p in upstream.named_parameters() if p.grad is not None}
        assert sorted(grads) == sorted(ref) and grads
        # One GEMM instead of L small ones accumulates in another order, nothing more: float32 rounding, and
        # under bf16 an output rounded to bf16 now and then (bit-equal on this tiny model on an AMX Xeon; the
        # ViT-B step moved by 2e-5 relative).
        torch.testing.assert_close(a, b, rtol=1e-3 if bf16 else 1e-6, atol=1e-3 if bf16 else 1e-6)
        for n in ref:
            torch.testing.assert_close(grads[n], ref[n], rtol=2e-2 if bf16 else 1e-4, atol=1e-5 if bf16 else 1e-6,
                                       msg=n)


def test_fold_leaves_trainable_and_eval_paths_alone(clim_pair) -> None:
    """Blocks that need a gradient, and eval-mode float32 (torch's fused attention), run as before."""
    folded, upstream, data = clim_pair
    images = data['inputs']
    for model in (folded, upstream):
        model.clip.lock_image_tower(99)  # every image block trains
    torch.testing.assert_close(folded.clip.encode_image(images), upstream.clip.encode_image(images),
                               rtol=0, atol=0)
    folded.eval(), upstream.eval()
    with torch.no_grad():
        torch.testing.assert_close(folded.clip.encode_image(images), upstream.clip.encode_image(images),
                                   rtol=0, atol=0)


def test_fold_install_is_idempotent_and_removable(tiny_clip_cfg: dict) -> None:
    import copy

    model = build_tiny_clim(tiny_clip_cfg, mosaic_choices=(2,))
    n_attn = sum(isinstance(m, torch.nn.MultiheadAttention) for m in model.clip.modules())
    assert fold_attention_inputs(model.clip) == n_attn == 5  # 3 image + 2 text blocks
    hooks = [len(m._forward_pre_hooks) for m in model.clip.modules() if isinstance(m, torch.nn.MultiheadAttention)]
    assert hooks == [1] * n_attn
    twin = copy.deepcopy(model)
    unfold_attention_inputs(model.clip)
    assert all(not m._forward_pre_hooks for m in model.clip.modules())
    # a copy keeps its own relayout (the hook is a module-level function, not a bound handle)
    data = twin.data_preprocessor(random_batch(10), True)
    twin.train()
    assert _broadcast_weight_products(lambda: _step(twin, data, True)) == []
