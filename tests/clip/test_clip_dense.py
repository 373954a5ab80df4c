"""Dense features, region / mask pooling and ViT token maps of the CLIP wrapper (tiny models)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from clim.models import CLIPModel
from clim.models.towers import interpolate_pos_embed


def _ln(x: torch.Tensor, ln: torch.nn.LayerNorm) -> torch.Tensor:
    return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)


def _mlp(blk, x: torch.Tensor, quick_gelu: bool) -> torch.Tensor:
    h = x @ blk.mlp.c_fc.weight.T + blk.mlp.c_fc.bias
    h = h * torch.sigmoid(1.702 * h) if quick_gelu else F.gelu(h)
    return h @ blk.mlp.c_proj.weight.T + blk.mlp.c_proj.bias


def reference_v2_dense(model: CLIPModel, images: torch.Tensor) -> torch.Tensor:
    """CLIM's v2 dense map written out from the raw weights (spec "Dense features")."""
    v = model.clip.visual
    p = v.conv1.weight.shape[-1]
    x = F.conv2d(images, v.conv1.weight, stride=p)
    b, c, h, w = x.shape
    x = x.reshape(b, c, h * w).permute(0, 2, 1)
    gh, gw = v.grid_size
    pos_patch = v.positional_embedding[1:].reshape(1, gh, gw, c).permute(0, 3, 1, 2)
    pos_patch = F.interpolate(pos_patch, size=(h, w), mode='bicubic', align_corners=False)
    pos = torch.cat([v.positional_embedding[:1], pos_patch.permute(0, 2, 3, 1).reshape(h * w, c)])
    x = torch.cat([v.class_embedding.expand(b, 1, c), x], dim=1) + pos
    x = _ln(x, v.ln_pre)
    blocks = list(v.transformer.resblocks)
    for blk in blocks[:-1]:
        heads = blk.attn.num_heads
        qkv = _ln(x, blk.ln_1) @ blk.attn.in_proj_weight.T + blk.attn.in_proj_bias
        q, k, val = (t.reshape(b, -1, heads, c // heads).transpose(1, 2) for t in qkv.split(c, dim=-1))
        att = (q @ k.transpose(-1, -2) / math.sqrt(c // heads)).softmax(-1) @ val
        att = att.transpose(1, 2).reshape(b, -1, c)
        x = x + att @ blk.attn.out_proj.weight.T + blk.attn.out_proj.bias
        x = x + _mlp(blk, _ln(x, blk.ln_2), model.quick_gelu)
    last = blocks[-1]
    val = _ln(x, last.ln_1) @ last.attn.in_proj_weight[2 * c:].T + last.attn.in_proj_bias[2 * c:]
    x = x + val @ last.attn.out_proj.weight.T + last.attn.out_proj.bias
    x = x + _mlp(last, _ln(x, last.ln_2), model.quick_gelu)
    x = _ln(x[:, 1:], v.ln_post) @ v.proj
    x = F.normalize(x, dim=-1)
    return x.permute(0, 2, 1).reshape(b, -1, h, w)


@pytest.mark.parametrize('size', [(64, 64), (64, 96), (96, 48)])
def test_v2_dense_matches_reference(tiny_model: CLIPModel, size: tuple[int, int]) -> None:
    images = torch.randn(2, 3, *size)
    with torch.no_grad():
        got = tiny_model.dense_features(images)
        ref = reference_v2_dense(tiny_model, images)
    assert got.shape == (2, 32, size[0] // 16, size[1] // 16)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    ones = torch.ones(2, size[0] // 16, size[1] // 16)
    torch.testing.assert_close(got.norm(dim=1), ones, atol=1e-5, rtol=0)


def test_v2_differs_from_plain_last_block(tiny_model: CLIPModel) -> None:
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        v2 = tiny_model.dense_features(images)
        plain = tiny_model.dense_features(images, mode='plain')
    assert (v2 - plain).abs().max() > 1e-3


def test_vit_tokens_blocks_and_final(tiny_model: CLIPModel) -> None:
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        maps, final = tiny_model.vit_tokens(images, [0, 1, 2])
        plain = tiny_model.clip.visual.forward_intermediates(torch.randn(1, 3, 64, 64), indices=[0, 1])
    assert [tuple(m.shape) for m in maps] == [(2, 64, 4, 6)] * 3
    assert torch.equal(maps[-1], final)
    assert final.is_contiguous() and all(m.is_contiguous() for m in maps)  # mmcv ops need NCHW-contiguous
    with torch.no_grad():
        dense = tiny_model.project_dense(final)
        torch.testing.assert_close(dense, tiny_model.dense_features(images), atol=1e-6, rtol=0)
        # At the native size, intermediate maps equal open_clip's own forward_intermediates.
        x = torch.randn(1, 3, 64, 64)
        maps, _ = tiny_model.vit_tokens(x, [0, 1])
        ref = tiny_model.clip.visual.forward_intermediates(x, indices=[0, 1], intermediates_only=True)
    assert len(plain['image_intermediates']) == 2
    for m, r in zip(maps, ref['image_intermediates']):
        torch.testing.assert_close(m, r, atol=1e-5, rtol=0)


def test_encode_image_native_and_other_sizes(tiny_model: CLIPModel) -> None:
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = tiny_model.encode_image(x)
        ref = F.normalize(tiny_model.clip.encode_image(x), dim=-1)
        other = tiny_model.encode_image(torch.randn(2, 3, 96, 64))
    torch.testing.assert_close(ours, ref)
    assert other.shape == (2, 32)


def test_whole_map_box_is_mean_of_dense(tiny_model: CLIPModel) -> None:
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        dense = tiny_model.dense_features(images)
        boxes = [torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, 1.0, 1.0]])]
        got = tiny_model.pool_boxes(dense, boxes)
        region = tiny_model.region_features(images, boxes)
    ref = F.normalize(dense.mean(dim=(2, 3)), dim=-1)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(region, ref, atol=1e-5, rtol=0)


def test_pixel_and_normalized_boxes_agree_and_ragged_lists(tiny_model: CLIPModel) -> None:
    h, w = 64, 96
    images = torch.randn(3, 3, h, w)
    norm = [torch.tensor([[0.1, 0.2, 0.6, 0.9], [0.0, 0.0, 0.5, 0.5], [0.3, 0.1, 1.0, 0.4]]),
            torch.zeros(0, 4),
            torch.tensor([[0.25, 0.25, 0.75, 0.75], [0.0, 0.5, 1.0, 1.0]])]
    pix = [b * torch.tensor([w, h, w, h]) for b in norm]
    with torch.no_grad():
        dense = tiny_model.dense_features(images)
        a = tiny_model.pool_boxes(dense, norm)
        b = tiny_model.pool_boxes(dense, pix, normalized=False)
        per_image = [tiny_model.pool_boxes(dense[i:i + 1], [norm[i]]) for i in range(3)]
    assert a.shape == (5, 32)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(a, torch.cat(per_image), atol=1e-6, rtol=0)
    assert per_image[1].shape == (0, 32)
    empty = tiny_model.pool_boxes(dense, [torch.zeros(0, 4)] * 3)
    assert empty.shape == (0, 32)


def test_pool_masks(tiny_model: CLIPModel) -> None:
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        dense = tiny_model.dense_features(images)
    full = torch.ones(1, 4, 6, dtype=torch.bool)
    part = torch.zeros(2, 4, 6, dtype=torch.bool)
    part[0, 1:3, 2:5] = True
    part[1, 0, 0] = True
    got = tiny_model.pool_masks(dense, [full, part])
    assert got.shape == (3, 32)
    torch.testing.assert_close(got[0], F.normalize(dense[0].mean(dim=(1, 2)), dim=0), atol=1e-5, rtol=0)
    torch.testing.assert_close(got[1], F.normalize(dense[1, :, 1:3, 2:5].mean(dim=(1, 2)), dim=0),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(got[2], dense[1, :, 0, 0], atol=1e-5, rtol=0)
    # A mask at 4x the map resolution covering the same cells gives the same feature.
    up = part.repeat_interleave(4, 1).repeat_interleave(4, 2)
    torch.testing.assert_close(tiny_model.pool_masks(dense[1:], [up]), got[1:], atol=1e-5, rtol=0)


def test_v1_mask_attention_pool_matches_reference(tiny_model: CLIPModel) -> None:
    images = torch.randn(2, 3, 64, 96)
    boxes = [torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.25, 0.0, 0.75, 0.5]]),
             torch.tensor([[0.5, 0.5, 1.0, 1.0]])]
    with torch.no_grad():
        got = tiny_model.region_features(images, boxes, mode='v1')
        v = tiny_model.clip.visual
        x = torch.cat([v.class_embedding.expand(2, 1, -1), v.conv1(images).flatten(2).transpose(1, 2)], 1)
        h, w = 4, 6
        x = v.ln_pre(x + interpolate_pos_embed(v.positional_embedding, v.grid_size, (h, w)))
        for blk in v.transformer.resblocks[:-1]:
            x = blk(x)
        last = v.transformer.resblocks[-1]
        refs = []
        # (image, cells inside the box): cell centres inside each box above.
        cells = [(0, (slice(0, 4), slice(0, 6))), (0, (slice(0, 2), slice(1, 5))),
                 (1, (slice(2, 4), slice(3, 6)))]
        for i, (ys, xs) in cells:
            tokens = x[i, 1:].reshape(h, w, -1)[ys, xs].reshape(1, -1, x.shape[-1])
            y = last.ln_1(torch.cat([x[i:i + 1, :1], tokens], 1))
            out = last.attn(y[:, :1], y[:, 1:], y[:, 1:], need_weights=False)[0]
            t = x[i:i + 1, :1] + out
            t = t + last.mlp(last.ln_2(t))
            refs.append(F.normalize(v.ln_post(t[:, 0]) @ v.proj, dim=-1))
    assert got.shape == (3, 32)
    torch.testing.assert_close(got, torch.cat(refs), atol=1e-5, rtol=0)


def test_grad_checkpointing_same_gradients(tiny_model: CLIPModel) -> None:
    images = torch.randn(1, 3, 64, 64)
    tiny_model.train()
    grads = []
    for enable in (False, True):
        tiny_model.zero_grad()
        tiny_model.set_grad_checkpointing(enable)
        tiny_model.dense_features(images).sum().backward()
        grads.append(tiny_model.clip.visual.transformer.resblocks[0].attn.in_proj_weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_autocast_bf16_cpu(tiny_model: CLIPModel) -> None:
    images = torch.randn(2, 3, 64, 96)
    boxes = [torch.tensor([[0.1, 0.1, 0.9, 0.9]]), torch.tensor([[0.0, 0.0, 0.5, 1.0]])]
    with torch.no_grad():
        ref = tiny_model.region_features(images, boxes)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            dense = tiny_model.dense_features(images)
            got = tiny_model.pool_boxes(dense, boxes)
            img = tiny_model.encode_image(images)
            txt = tiny_model.encode_text(tiny_model.tokenize(['a dog']))
            maps, final = tiny_model.vit_tokens(images, [1])
    assert got.dtype == torch.float32
    assert torch.isfinite(img).all() and torch.isfinite(txt).all() and torch.isfinite(final).all()
    assert (got * ref).sum(-1).min() > 0.98


def test_resnet_dense_and_regions(tiny_rn_model: CLIPModel) -> None:
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        dense = tiny_rn_model.dense_features(images)
        pool = tiny_rn_model.clip.visual.attnpool
        feat = tiny_rn_model.clip.visual.stem(images)
        for layer in ('layer1', 'layer2', 'layer3', 'layer4'):
            feat = getattr(tiny_rn_model.clip.visual, layer)(feat)
        pos = pool.positional_embedding[1:].reshape(1, 2, 2, -1).permute(0, 3, 1, 2)
        pos = F.interpolate(pos, size=(2, 3), mode='bicubic', align_corners=False)
        ref = pool.c_proj(pool.v_proj(feat.flatten(2).transpose(1, 2) + pos.flatten(2).transpose(1, 2)))
        ref = F.normalize(ref, dim=-1).transpose(1, 2).reshape(2, -1, 2, 3)
        boxes = [torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.zeros(0, 4)]
        region = tiny_rn_model.region_features(images, boxes)
    assert dense.shape == (2, 32, 2, 3)
    torch.testing.assert_close(dense, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(region[0], F.normalize(dense[0].mean(dim=(1, 2)), dim=0), atol=1e-5, rtol=0)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(tiny_rn_model.image_tower.pool(x), tiny_rn_model.clip.visual(x),
                                   atol=1e-5, rtol=1e-5)
        assert tiny_rn_model.encode_image(torch.randn(1, 3, 96, 64)).shape == (1, 32)


def test_torchvision_and_mmcv_roi_align_agree(tiny_model: CLIPModel) -> None:
    mmcv_ops = pytest.importorskip('mmcv.ops')
    images = torch.randn(2, 3, 64, 96)
    boxes = [torch.tensor([[3.0, 5.0, 70.0, 40.0], [0.0, 0.0, 96.0, 64.0]]),
             torch.tensor([[10.0, 20.0, 30.0, 60.0]])]
    with torch.no_grad():
        dense = tiny_model.dense_features(images)
        ours = tiny_model.pool_boxes(dense, boxes, normalized=False)
        rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b / 16], 1)
                          for i, b in enumerate(boxes)])
        # mmcv spells "adaptive sampling" as sampling_ratio=0 (torchvision: -1).
        ref = mmcv_ops.roi_align(dense, rois, (1, 1), 1.0, 0, 'avg', True).flatten(1)
    torch.testing.assert_close(ours, F.normalize(ref, dim=-1), atol=1e-6, rtol=0)
    assert dense.is_contiguous()
