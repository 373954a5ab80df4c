"""The reference region-evaluation protocol against hand computations, and the protocol switch."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from clim.datasets import REGION_PROTOCOLS, get_region_protocol
from clim.datasets.region_transforms import bicubic_mask_cells, letterbox, mask_extent_box, thing_crop_box
from region_test_utils import region_dataset

REPO_ROOT = Path(__file__).resolve().parents[2]
SCALE1 = 128 / 53  # image 1 is 37 x 53 (h x w), input 128
EARLIER_PIPELINE = [dict(type='LoadRegionAnnotations'), dict(type='ResizeLongestSide', size=128),
                    dict(type='PackRegionInputs', mask_stride=16)]


# ------------------------------------------------------------------------------------------------
# geometry
# ------------------------------------------------------------------------------------------------
def test_thing_crop_box_is_one_and_a_half_times_about_the_centre_clipped() -> None:
    # box x 10..40, y 20..60 in a 50 x 60 image: centre (25, 40), half-sizes 22.5 and 30
    assert thing_crop_box((10, 20, 30, 40), img_w=50, img_h=60) == (2.5, 10.0, 47.5, 60)
    assert thing_crop_box((0, 0, 4, 4), img_w=50, img_h=60) == (0, 0, 5.0, 5.0)  # clipped at 0


def test_mask_extent_box_is_inclusive() -> None:
    m = np.zeros((10, 12), bool)
    m[3:8, 2:10] = True
    assert mask_extent_box(m) == (2, 3, 9, 7)
    one = np.zeros((4, 4), bool)
    one[1, 2] = True
    assert mask_extent_box(one) == (2, 1, 2, 1) and mask_extent_box(np.zeros((3, 3), bool)) is None


@pytest.mark.parametrize('w, h, resized, offset', [
    (30, 10, (64, 21), (0, 21)),   # wide: 64 x round(21.33); pad 21 above, 22 below
    (10, 30, (21, 64), (21, 0)),   # tall
    (9, 9, (64, 64), (0, 0)),
])
def test_letterbox_geometry_and_black_pad(w: int, h: int, resized: tuple, offset: tuple) -> None:
    img = Image.fromarray(np.full((h, w, 3), 200, np.uint8))
    out = np.asarray(letterbox(img, 64))
    assert out.shape == (64, 64, 3)
    inside = np.zeros((64, 64), bool)
    inside[offset[1]:offset[1] + resized[1], offset[0]:offset[0] + resized[0]] = True
    assert (out[inside] == 200).all() and (out[~inside] == 0).all()


def test_bicubic_mask_cells_by_hand() -> None:
    full = np.ones((37, 53), bool)
    cells = bicubic_mask_cells(full, 8, antialias=False)
    expect = np.zeros((8, 8), bool)
    expect[:6] = True  # longer side 53 -> 8, 37 -> round(5.58) = 6 rows, zero padding below
    np.testing.assert_array_equal(cells, expect)
    rng = np.random.default_rng(0)
    for _ in range(5):
        m = np.zeros((37, 53), bool)
        r, c = rng.integers(0, 30), rng.integers(0, 45)
        m[r:r + rng.integers(1, 8), c:c + rng.integers(1, 9)] = True
        for aa in (False, True):
            ref = F.interpolate(torch.from_numpy(m).float()[None, None], size=(6, 8), mode='bicubic',
                                align_corners=False, antialias=aa)[0, 0]
            expect = np.zeros((8, 8), bool)
            expect[:6] = (ref > 0).numpy()
            np.testing.assert_array_equal(bicubic_mask_cells(m, 8, antialias=aa), expect)


def test_mask_antialias_choice_matters() -> None:
    m = np.zeros((64, 64), bool)
    m[20:22, 5:60] = True  # a thin stripe: the antialiased kernel spreads it over more cells
    off, on = bicubic_mask_cells(m, 8, False), bicubic_mask_cells(m, 8, True)
    assert off.sum() != on.sum()
    assert REGION_PROTOCOLS['reference'].mask_antialias is False
    assert REGION_PROTOCOLS['reference-antialias'].mask_antialias is True


# ------------------------------------------------------------------------------------------------
# regions, crops, image and masks of the generated split
# ------------------------------------------------------------------------------------------------
def test_reference_regions_by_hand(panoptic_split: dict) -> None:
    ds = region_dataset(panoptic_split, 'reference')
    # categories sorted by id: person 1, car 3, tree 184, sky 187
    assert ds.metainfo['category_names'] == ('person', 'car', 'tree-merged', 'sky-other-merged')
    assert ds.metainfo['isthing'] == (True, True, False, False)
    s = ds[0]['data_samples']
    # tiny car (20 px^2) and tree (mask extent 7 x 8 = 56 < 64, though its json box is 72) dropped;
    # the crowd car kept; file order
    assert s.gt_labels.tolist() == [0, 1, 3]
    boxes = torch.tensor([[3, 5, 15, 25], [30, 2, 50, 14], [15, 0, 52, 36]], dtype=torch.float32) * SCALE1
    assert torch.equal(s.gt_bboxes, boxes)  # the sky box ends at its last pixel index (52, 36)
    assert s.metainfo['scale_factor'] == (SCALE1, SCALE1) and s.metainfo['img_shape'] == (89, 128)


def test_clim_ovd_regions_by_hand(panoptic_split: dict) -> None:
    ds = region_dataset(panoptic_split, 'clim-ovd')
    assert ds.metainfo['category_names'] == ('tree-merged', 'person', 'car', 'sky-other-merged')  # json order
    s = ds[0]['data_samples']
    assert s.gt_labels.tolist() == [1, 2, 0, 3]  # crowd dropped, tiny car and tree kept
    fx, fy = np.float32(128 / 53), np.float32(89 / 37)
    boxes = np.array([[3, 5, 15, 25], [40, 30, 45, 34], [2, 26, 10, 35], [15, 0, 53, 37]], np.float32)
    np.testing.assert_array_equal(s.gt_bboxes.numpy(), boxes * np.array([fx, fy, fx, fy], np.float32))
    assert 'gt_crops' not in s


def test_segment_cap_is_the_first_100_in_file_order(panoptic_split: dict) -> None:
    ref = region_dataset(panoptic_split, 'reference')[1]['data_samples']
    assert len(ref.gt_bboxes) == 100
    # segment k covers rows 10*(k // 11) .., cols 10*(k % 11) ..: the first 100 of the row-major grid
    first = torch.tensor([[10 * (k % 11), 10 * (k // 11), 10 * (k % 11) + 10, 10 * (k // 11) + 10]
                          for k in range(100)], dtype=torch.float32) * (128 / 110)
    assert torch.equal(ref.gt_bboxes, first)
    assert len(region_dataset(panoptic_split, 'clim-ovd')[1]['data_samples'].gt_bboxes) == 110
    three = region_dataset(panoptic_split, dict(name='reference', max_segments=3))
    assert three.metainfo['region_protocol'] == 'reference+max_segments=3'
    assert len(three[1]['data_samples'].gt_bboxes) == 3


def test_reference_crops_by_hand(panoptic_split: dict) -> None:
    s = region_dataset(panoptic_split, 'reference')[0]['data_samples']
    img = Image.fromarray(panoptic_split['images'][0])
    assert s.gt_crops.shape == (3, 3, 64, 64) and s.gt_crops.dtype == torch.uint8
    # person box (3, 5, 12 x 20): centre (9, 15) -> 1.5x = (0, 0, 18, 30), 18 x 30 -> 38 x 64, 13 px each side
    # crowd car (30, 2, 20 x 12): centre (40, 8) -> (25, 0, 53 clipped, 17), 28 x 17 -> 64 x 39, 12 above
    # sky: its extent (15, 0, 52, 36), cut as PIL cuts it (the last column / row left out): 37 x 36
    for crop, box, size, at in ((s.gt_crops[0], (0, 0, 18, 30), (38, 64), (13, 0)),
                                (s.gt_crops[1], (25, 0, 53, 17), (64, 39), (0, 12)),
                                (s.gt_crops[2], (15, 0, 52, 36), (64, 62), (0, 1))):
        expect = np.zeros((64, 64, 3), np.uint8)
        expect[at[1]:at[1] + size[1], at[0]:at[0] + size[0]] = np.asarray(img.crop(box).resize(size, Image.BICUBIC))
        np.testing.assert_array_equal(crop.permute(1, 2, 0).numpy(), expect)


def test_image_padded_black_before_normalization(panoptic_split: dict) -> None:
    from clim.method.data_preprocessor import CLIMDataPreprocessor

    pre = CLIMDataPreprocessor(pad_size=128, pad_size_divisor=16)
    ref, ours = region_dataset(panoptic_split, 'reference')[0], region_dataset(panoptic_split, 'clim-ovd')[0]
    assert ref['inputs'].shape == (3, 128, 128) and ours['inputs'].shape == (3, 89, 128)
    assert (ref['inputs'][:, 89:] == 0).all()
    expect = np.asarray(Image.fromarray(panoptic_split['images'][0]).resize((128, 89), Image.BICUBIC))
    np.testing.assert_array_equal(ref['inputs'][:, :89].permute(1, 2, 0).numpy(), expect)
    x_ref = pre(dict(inputs=[ref['inputs']]))['inputs'][0]
    x_ours = pre(dict(inputs=[ours['inputs']]))['inputs'][0]
    black = -pre.mean.view(3) / pre.std.view(3)  # about (-1.79, -1.75, -1.48)
    torch.testing.assert_close(x_ref[:, 100, 7], black)
    assert (x_ours[:, 89:] == 0).all()
    torch.testing.assert_close(x_ref[:, :89], x_ours[:, :89], atol=0, rtol=0)


def test_reference_mask_cells_by_hand(panoptic_split: dict) -> None:
    s = region_dataset(panoptic_split, 'reference')[0]['data_samples']
    ids = panoptic_split['ids'][0]
    assert s.gt_masks.shape == (3, 8, 8) and s.gt_masks.dtype == torch.bool
    for cells, seg in zip(s.gt_masks, (11, 13, 15 + 512)):
        ref = F.interpolate(torch.from_numpy(ids == seg).float()[None, None], size=(6, 8), mode='bicubic',
                            align_corners=False)[0, 0] > 0
        assert not cells[6:].any()
        assert torch.equal(cells[:6], ref)
    on = region_dataset(panoptic_split, 'reference-antialias')[0]['data_samples']
    assert not torch.equal(on.gt_masks, s.gt_masks)
    assert torch.equal(on.gt_bboxes, s.gt_bboxes) and torch.equal(on.gt_crops, s.gt_crops)


def test_clim_ovd_transform_equals_the_earlier_pipeline(panoptic_split: dict) -> None:
    """Protocol 'clim-ovd' through RegionEvalTransform is what ResizeLongestSide + PackRegionInputs gave."""
    new = region_dataset(panoptic_split, 'clim-ovd')
    old = region_dataset(panoptic_split, 'clim-ovd', pipeline=EARLIER_PIPELINE)
    for i in range(len(old)):
        a, b = old[i], new[i]
        assert torch.equal(a['inputs'], b['inputs'])
        for key in ('gt_bboxes', 'gt_labels', 'gt_masks'):
            assert torch.equal(getattr(a['data_samples'], key), getattr(b['data_samples'], key)), key


def test_dataset_and_pipeline_protocols_must_agree(panoptic_split: dict) -> None:
    mixed = [dict(type='LoadRegionAnnotations'), dict(type='RegionEvalTransform', image_size=128),
             dict(type='PackRegionInputs')]  # the transform's default protocol: 'reference'
    with pytest.raises(ValueError, match="protocol 'reference'"):
        region_dataset(panoptic_split, 'clim-ovd', pipeline=mixed)[0]
    with pytest.raises(ValueError, match='needs a RegionEvalTransform'):
        region_dataset(panoptic_split, 'reference', pipeline=EARLIER_PIPELINE)[0]


# ------------------------------------------------------------------------------------------------
# metric
# ------------------------------------------------------------------------------------------------
def test_metric_rounds_class_accuracies_to_fp16_and_names_the_protocol() -> None:
    from clim.evaluation import RegionRecognitionMetric

    labels = torch.tensor([0, 0, 0, 1, 2])
    topk = torch.tensor([[0, 1, 2, 3, 4], [1, 0, 2, 3, 4], [1, 2, 3, 4, 5], [1, 0, 2, 3, 4], [0, 1, 3, 4, 5]])
    out = {}
    for name in ('reference', 'clim-ovd'):
        metric = RegionRecognitionMetric()
        protocol = get_region_protocol(name)
        metric.dataset_meta = dict(isthing=(True, True, False), region_protocol=name,
                                   region_protocol_fields=dataclasses.asdict(protocol))
        metric.process({}, [dict(gt_labels=labels, pred_box_topk=topk)])
        out[name] = metric.evaluate(1)
    # things: class 0 one of three right, class 1 right; 1/3 in fp16 is 0.333251953125
    assert out['reference']['region_reference/box_top1_things'] == pytest.approx((0.333251953125 + 1) / 2 * 100,
                                                                                 abs=1e-9)
    assert out['clim-ovd']['region/box_top1_things'] == pytest.approx((1 / 3 + 1) / 2 * 100, abs=1e-9)
    assert out['reference']['region_reference/box_top5_stuff'] == 0.0
    metric = RegionRecognitionMetric(protocol='reference')
    metric.dataset_meta = dict(isthing=(True,), region_protocol='clim-ovd')
    metric.process({}, [dict(gt_labels=labels[:1], pred_box_topk=topk[:1])])
    with pytest.raises(ValueError, match='same protocol'):
        metric.evaluate(1)


# ------------------------------------------------------------------------------------------------
# the protocol switch is what docs/reference_parity.md says
# ------------------------------------------------------------------------------------------------
def _documented_fields() -> set[str]:
    text = (REPO_ROOT / 'docs' / 'reference_parity.md').read_text()
    section = text.split('## Region-recognition evaluation', 1)[1].split('\n## ', 1)[0]
    rows = [ln for ln in section.splitlines() if re.match(r'\|\s*R\d+\s*\|', ln)]
    return {f for ln in rows for f in re.findall(r'`RegionProtocol\.(\w+)', ln)}


def test_protocol_switch_changes_exactly_the_documented_fields() -> None:
    ref, ours = REGION_PROTOCOLS['reference'], REGION_PROTOCOLS['clim-ovd']
    differ = {f.name for f in dataclasses.fields(ref) if getattr(ref, f.name) != getattr(ours, f.name)} - {'name'}
    # mask_antialias only acts on bicubic masks: its row is the reference / reference-antialias pair
    assert differ | {'mask_antialias'} == _documented_fields()
    assert 'mask_antialias' not in differ
