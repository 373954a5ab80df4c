"""Mosaic split, tile layout and pseudo boxes: every tile lands where its box says."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from clim.method.mosaic import build_mosaics, mosaic_boxes, plan_mosaics
from mmdet.registry import MODELS


def test_plan_reference_batch():
    plan = plan_mosaics(32, (2, 3, 4))
    got = [(g.n, g.count, g.start, g.stop) for g in plan.groups]
    assert got == [(2, 1, 0, 4), (3, 1, 4, 13), (4, 1, 13, 29)]
    assert plan.single_start == 29 and plan.num_singles == 3


def test_plan_two_groups_and_leftovers():
    plan = plan_mosaics(61, [2, 3, 4])
    assert [(g.n, g.count, g.start) for g in plan.groups] == [(2, 2, 0), (3, 2, 8), (4, 2, 26)]
    assert plan.single_start == 58 and plan.num_singles == 3


def test_plan_too_small_batch_is_a_clear_error():
    with pytest.raises(ValueError, match=r'at least .* = 29 .* has 28'):
        plan_mosaics(28, (2, 3, 4))


def _constant_tiles(k: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    colours = torch.rand(k, 3) * 200 + 20
    return colours, colours[:, :, None, None].expand(k, 3, size, size).clone()


@pytest.mark.parametrize('n', [2, 3, 4])
def test_tiles_land_in_their_boxes(n):
    size, count = 8, 2
    colours, tiles = _constant_tiles(count * n * n, size)
    mosaics = build_mosaics(tiles, n)
    boxes = mosaic_boxes(n, count)
    assert mosaics.shape == (count, 3, n * size, n * size)
    side = n * size
    for m in range(count):
        for j, (x1, y1, x2, y2) in enumerate((boxes[m] * side).round().long().tolist()):
            region = mosaics[m, :, y1:y2, x1:x2]
            assert region.shape[1:] == (size, size)
            # row-major: tile j is image m * n * n + j, at row j // n, column j % n
            assert x1 == (j % n) * size and y1 == (j // n) * size
            assert torch.equal(region, colours[m * n * n + j][:, None, None].expand_as(region))


@pytest.mark.parametrize('n', [2, 3, 4])
def test_resized_tiles_keep_their_boxes(n):
    """After the bicubic resize each box's interior (away from tile seams) still holds its tile's colour."""
    size, out = 16, 96
    colours, tiles = _constant_tiles(n * n, size)
    mosaic = build_mosaics(tiles, n, out_size=out)[0]
    assert mosaic.shape == (3, out, out)
    cell = out / n
    for j, (x1, y1, x2, y2) in enumerate((mosaic_boxes(n)[0] * out).tolist()):
        assert (x1, y1) == pytest.approx(((j % n) * cell, (j // n) * cell))
        margin = int(2 * out / (n * size)) + 1  # bicubic support: 2 source pixels on each side
        inner = mosaic[:, int(y1) + margin:int(y2) - margin, int(x1) + margin:int(x2) - margin]
        torch.testing.assert_close(inner, colours[j][:, None, None].expand_as(inner), atol=1e-3, rtol=0)


def test_boxes_are_normalized_row_major():
    b = mosaic_boxes(3)[0]
    assert b.shape == (9, 4)
    torch.testing.assert_close(b[5], torch.tensor([2 / 3, 1 / 3, 1.0, 2 / 3]))


class _ColourCLIP(nn.Module):
    """A stand-in CLIP whose 'dense map' is the image itself (stride 1) and whose image feature is its
    mean colour: region features then say exactly which tile each box pooled."""

    stride = 1
    context_length = 4

    def __init__(self) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(1.0))

    def lock_image_tower(self, n: int) -> None:
        pass

    def lock_text_tower(self) -> None:
        pass

    def region_features(self, images, boxes, normalized=True, mode='v2'):
        h, w = images.shape[-2:]
        rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b * torch.tensor([w, h, w, h])], 1)
                          for i, b in enumerate(boxes)])
        out = roi_align(images, rois, (1, 1), 1.0, -1, True).flatten(1)
        return F.normalize(out, dim=-1)

    def encode_image(self, images, normalize=True):
        return F.normalize(images.mean(dim=(2, 3)), dim=-1)


MODELS.register_module(name='_ColourCLIPForTest', module=_ColourCLIP, force=True)


def test_clim_features_follow_batch_order():
    """CLIM.image_features: mosaics of every size, then singles, give feature i = image i."""
    model = MODELS.build(dict(type='CLIM', clip=dict(type='_ColourCLIPForTest'), train_image_size=None))
    colours, images = _constant_tiles(61, 8)  # 2 groups + 3 singles
    feats = model.image_features(images)
    torch.testing.assert_close(feats, F.normalize(colours, dim=-1), atol=1e-5, rtol=0)
