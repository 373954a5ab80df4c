"""EVA-02 off the native grid against upstream timm: a timm ``Eva`` built for another input size (its own
rotary table for that grid) and given our positional embedding resized as the reference resizes it (bicubic,
no antialias) computes our image embedding and plain dense map, square and non-square; the v2 map's class
token independence and the fp64 hand reference for a larger non-square grid."""
from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F
from conftest import TINY, TINY_CFG
from eva_reference import reference_dense

from clim.models import build_clip
from clim.models.towers import interpolate_pos_embed

REF = dict(depth=TINY['depth'], heads=TINY['heads'], patch=TINY['patch'])


@pytest.fixture(scope='module')
def model(tiny_release_file):
    return build_clip(dict(type='CLIP', model_cfg=TINY_CFG, pretrained=str(tiny_release_file))).eval()


def _timm_at(model, size: tuple[int, int]) -> torch.nn.Module:
    vision = TINY_CFG['vision_cfg']
    trunk = timm.create_model(vision['timm_model_name'], pretrained=False, num_classes=TINY['embed'],
                              global_pool='token', **dict(vision['timm_kwargs'], img_size=size)).eval()
    sd = model.visual.trunk.state_dict()
    grid = (size[0] // TINY['patch'], size[1] // TINY['patch'])
    sd['pos_embed'] = interpolate_pos_embed(sd['pos_embed'][0], (TINY['grid'], TINY['grid']), grid)[None]
    trunk.load_state_dict(sd)
    return trunk


@pytest.mark.parametrize('size', [(96, 96), (128, 80), (48, 112)], ids=['6x6', '8x5', '3x7'])
def test_off_native_grids_equal_timm_built_for_that_grid(model, size):
    trunk = _timm_at(model, size)
    images = torch.randn(2, 3, *size)
    with torch.no_grad():
        ours = model.encode_image(images, normalize=False)
        upstream = trunk(images)
        plain = model.dense_features(images, mode='plain', normalize=False)
        tokens = trunk.forward_features(images)[:, 1:]
        upstream_plain = F.linear(tokens, trunk.head.weight, trunk.head.bias)
    torch.testing.assert_close(ours, upstream, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(plain.flatten(2).transpose(1, 2), upstream_plain, rtol=1e-5, atol=1e-5)


def test_v2_dense_on_a_large_non_square_grid_equals_the_hand_reference(model, tiny_release_state):
    images = torch.randn(1, 3, 160, 96)                                       # 10 x 6 patches
    with torch.no_grad():
        dense = model.dense_features(images)
    expected, _ = reference_dense(tiny_release_state, images, **REF)
    torch.testing.assert_close(dense, expected, rtol=1e-4, atol=1e-5)
    # v2 tokens do not see each other: changing one image region leaves far-away cells unchanged only
    # through the earlier (attention) blocks, so the map must change somewhere else too: a real dependency.
    edited = images.clone()
    edited[..., :16, :16] += 1.0
    with torch.no_grad():
        moved = model.dense_features(edited)
    assert (moved - dense)[..., 5:, 3:].abs().max() > 1e-4
