"""EVA-02 tower numerics on random weights in the release layout: against upstream timm's ``Eva`` forward
(native grid), against a hand-written forward from the raw release names (native, larger square and
non-square grids), and the RoPE table against the spec's formula."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, TINY_CFG
from eva_reference import reference_dense, reference_encode_image, rope_rotate
from timm.layers import apply_rot_embed_cat

from clim.models.eva_clip import EvaCLIPModel

REF = dict(depth=TINY['depth'], heads=TINY['heads'], patch=TINY['patch'])
NATIVE = TINY['patch'] * TINY['grid']


def _load(path) -> EvaCLIPModel:
    return EvaCLIPModel(model_cfg=TINY_CFG, pretrained=path).eval()


@pytest.fixture(scope='module')
def model(tiny_release_file) -> EvaCLIPModel:
    """Shared by the read-only tests; tests that train or lock build their own."""
    return _load(tiny_release_file)


def test_image_embedding_equals_timm_eva_and_reference(model, tiny_release_state):
    images = torch.randn(2, 3, NATIVE, NATIVE)
    with torch.no_grad():
        ours = model.encode_image(images, normalize=False)
        upstream = model.visual.trunk(images)                                # timm Eva forward
        # Another size: timm (no dynamic size here) cannot run it; the hand forward can.
        big = torch.randn(1, 3, 96, 96)
        ours_big = model.encode_image(big, normalize=False)
    torch.testing.assert_close(ours, upstream, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours, reference_encode_image(tiny_release_state, images, **REF), rtol=1e-4,
                               atol=1e-5)
    torch.testing.assert_close(ours_big, reference_encode_image(tiny_release_state, big, **REF), rtol=1e-4,
                               atol=1e-5)
    assert ours.std() > 0.1  # the weights really reach the output


@pytest.mark.parametrize('size', [(NATIVE, NATIVE), (96, 96), (96, 64)],
                         ids=['native-4x4', 'square-6x6', 'non-square-6x4'])
def test_dense_v2_equals_reference(model, tiny_release_state, size):
    images = torch.randn(2, 3, *size)
    with torch.no_grad():
        dense = model.dense_features(images)
        maps, final = model.vit_tokens(images, block_ids=(0, -1))
        projected = model.project_dense(final)
    expected, taps = reference_dense(tiny_release_state, images, **REF)
    grid = (size[0] // TINY['patch'], size[1] // TINY['patch'])
    assert dense.shape == (2, TINY['embed'], *grid)
    torch.testing.assert_close(dense, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(projected, dense)
    torch.testing.assert_close(maps[0], taps[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(maps[1], taps[TINY['depth'] - 1], rtol=1e-4, atol=1e-5)


def test_plain_dense_is_the_ordinary_last_block(model):
    """'plain' = every block with attention; at the native grid its patch tokens are timm's."""
    images = torch.randn(1, 3, NATIVE, NATIVE)
    with torch.no_grad():
        plain = model.dense_features(images, mode='plain', normalize=False)
        trunk = model.visual.trunk
        tokens = trunk.forward_features(images)[:, 1:]                       # after timm's final norm
        expected = F.linear(tokens, trunk.head.weight, trunk.head.bias)
    torch.testing.assert_close(plain.flatten(2).transpose(1, 2), expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(plain, model.dense_features(images, normalize=False))


@pytest.mark.parametrize('side', [4, 14, 24, 64])
def test_rope_table_is_the_spec_formula(model, side):
    """Table recomputed per grid (not interpolated): positions i * 16 / S, 16 bands per axis."""
    table = model.image_tower.rope((side, side), torch.device('cpu'))
    q = torch.randn(2, TINY['heads'], side * side, 64, dtype=torch.float64)
    ours = apply_rot_embed_cat(q, table.double())                            # as timm's EvaAttention does
    # float32 table: angles up to 16 rad round at ~1e-6; a wrong position or band is off by O(1).
    torch.testing.assert_close(ours, rope_rotate(q, (side, side)), rtol=0, atol=1e-5)
    if side == 64:  # spec: "64x64 uses p_i = i / 4": token (row 1, col 0) rotates dims (0, 1) by 1/4 rad
        sin, cos = table.chunk(2, dim=-1)
        torch.testing.assert_close(sin[64, 0], torch.tensor(0.25).sin())
        torch.testing.assert_close(cos[64, 32], torch.tensor(1.0))          # column 0: no rotation


def test_non_square_rope_is_per_axis(model):
    """Extension beyond the reference (square only): rows at i * 16 / h, columns at j * 16 / w."""
    table = model.image_tower.rope((6, 4), torch.device('cpu'))
    q = torch.randn(1, 1, 24, 64, dtype=torch.float64)
    torch.testing.assert_close(apply_rot_embed_cat(q, table.double()), rope_rotate(q, (6, 4)), rtol=0, atol=1e-5)


def test_grad_checkpointing_gives_the_same_values_and_gradients(tiny_release_file):
    model = _load(tiny_release_file)
    images = torch.randn(1, 3, NATIVE, NATIVE)
    model.train()
    outs, grads = [], []
    for enable in (False, True):
        model.set_grad_checkpointing(enable)
        model.zero_grad()
        out = model.dense_features(images)
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append(model.visual.trunk.blocks[0].attn.q_proj.weight.grad.clone())
    torch.testing.assert_close(outs[0], outs[1])
    torch.testing.assert_close(grads[0], grads[1])
    assert grads[0].abs().sum() > 0


def test_lock_groups(tiny_release_file):
    model = _load(tiny_release_file)
    groups = model.image_tower.param_groups()
    assert [n for n, _ in groups] == ['stem', 'pos_embed'] + [f'blocks.{i}' for i in range(TINY['depth'])]
    grouped = {id(p) for _, g in groups for p in g}
    head = {id(p) for p in model.image_tower.head_parameters()}
    assert grouped | head == {id(p) for p in model.visual.parameters()} and not grouped & head
    model.lock_image_tower(unlocked_groups=2)
    trainable = {n for n, p in model.visual.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(('trunk.blocks.1.', 'trunk.blocks.2.')) for n in trainable)
    assert len(trainable) == 2 * len(list(model.visual.trunk.blocks[0].parameters()))
    model.lock_text_tower()
    assert not any(p.requires_grad for p in model.text.parameters()) and model.logit_scale.requires_grad
