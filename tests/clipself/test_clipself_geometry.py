"""CLIPSelf's box geometry against the spec (clipself.md) and hand computations: the 24 grid choices, the
cells, the proposal choice (slice, then filter), the 1.5x teacher crops, the fallback box, the student
image and its normalized boxes, the letterboxed crops."""
from __future__ import annotations

import numpy as np
from PIL import Image

from clim.datasets.clipself_transforms import (PrepareCLIPSelfInputs, SampleGridBoxes, SampleProposalBoxes,
                                               grid_cells, grid_choices, select_proposals)

# clipself.md: m = 1..6, (m + 1) // 2 <= n <= min(2m, 6), written out by hand.
SPEC_GRIDS = [(1, 1), (1, 2),
              (2, 1), (2, 2), (2, 3), (2, 4),
              (3, 2), (3, 3), (3, 4), (3, 5), (3, 6),
              (4, 2), (4, 3), (4, 4), (4, 5), (4, 6),
              (5, 3), (5, 4), (5, 5), (5, 6),
              (6, 3), (6, 4), (6, 5), (6, 6)]


def test_grid_choices_are_the_spec_enumeration():
    assert grid_choices(6) == SPEC_GRIDS
    assert len(grid_choices(6)) == 24


def test_grid_cells_row_major():
    # 2 rows x 3 cols: cell (i, j) = (j/3, i/2, (j+1)/3, (i+1)/2), row-major.
    expected = [[0, 0, 1 / 3, 0.5], [1 / 3, 0, 2 / 3, 0.5], [2 / 3, 0, 1, 0.5],
                [0, 0.5, 1 / 3, 1], [1 / 3, 0.5, 2 / 3, 1], [2 / 3, 0.5, 1, 1]]
    np.testing.assert_allclose(grid_cells(2, 3), expected, atol=1e-12)


def test_sampled_grids_cover_the_choices_and_keep_at_most_20_distinct_cells():
    img = Image.new('RGB', (300, 200))
    t = SampleGridBoxes()
    seen = set()
    for seed in range(400):
        out = t(dict(img=img, rng=np.random.default_rng(seed)))
        m, n = out['grid']
        seen.add((m, n))
        boxes = out['distill_boxes']
        assert len(boxes) == min(m * n, 20)
        # each box is one cell of the drawn grid in pixels, no cell twice
        cells = grid_cells(m, n) * [300, 200, 300, 200]
        idx = [int(np.argmin(np.abs(cells - b).sum(1))) for b in boxes]
        np.testing.assert_allclose(boxes, cells[idx], atol=1e-9)
        assert len(set(idx)) == len(idx)
        np.testing.assert_array_equal(out['crop_boxes'], boxes)  # crop_scale 1: the cell itself
    assert seen == set(SPEC_GRIDS)


def test_large_grids_are_shuffled_before_the_cut():
    img = Image.new('RGB', (60, 60))
    kept = set()
    for seed in range(200):
        out = SampleGridBoxes()(dict(img=img, rng=np.random.default_rng(seed)))
        if out['grid'] == (6, 6):
            kept |= {tuple(b) for b in out['distill_boxes'].round(6)}
    # with the first 20 of the row-major order only, the last 16 cells (rows 4-5, ...) would never appear
    assert len(kept) == 36


def test_proposals_are_filtered_after_the_slice_of_20():
    # 20 valid proposals and one of area 7 * 9 = 63 < 8^2.
    props = np.array([[i, i, 10, 10] for i in range(20)] + [[0, 0, 7, 9]], dtype=np.float64)
    counts = {len(select_proposals(props, 100, 100, np.random.default_rng(s))[0]) for s in range(60)}
    # filtering first would always leave 20; slicing first leaves 19 whenever the small one is drawn
    assert counts == {19, 20}


def test_proposal_area_bounds_are_inclusive():
    props = np.array([[0, 0, 8, 8],       # area 64 = 8^2: kept
                      [0, 0, 7, 9],       # 63: dropped
                      [0, 0, 1024, 1024],  # 1024^2: kept
                      [0, 0, 1025, 1024]], dtype=np.float64)  # > 1024^2: dropped
    boxes, _ = select_proposals(props, 2000, 2000, np.random.default_rng(0))
    assert sorted(map(tuple, boxes)) == [(0, 0, 8, 8), (0, 0, 1024, 1024)]


def test_teacher_crops_are_1_5x_about_the_centre_clipped():
    # (x, y, w, h) = (10, 20, 40, 20) in 100 x 60: centre (30, 30), half sizes 30 x 15 -> (0, 15, 60, 45)
    # (80, 40, 20, 20): centre (90, 50), half 15 -> (75, 35, 105, 65), clipped to (75, 35, 100, 60)
    props = np.array([[10, 20, 40, 20], [80, 40, 20, 20]], dtype=np.float64)
    boxes, crops = select_proposals(props, 100, 60, np.random.default_rng(0))
    order = np.argsort(boxes[:, 0])
    np.testing.assert_allclose(boxes[order], [[10, 20, 50, 40], [80, 40, 100, 60]])
    np.testing.assert_allclose(crops[order], [[0, 15, 60, 45], [75, 35, 100, 60]])


def test_no_valid_proposal_falls_back_to_the_top_left_quarter():
    boxes, crops = select_proposals(np.array([[0, 0, 2, 2]]), 201, 101, np.random.default_rng(0))
    np.testing.assert_allclose(boxes, [[0, 0, 50.25, 25.25]])
    np.testing.assert_allclose(crops, [[0, 0, 50, 25]])
    out = SampleProposalBoxes()(dict(img=Image.new('RGB', (201, 101)), proposals=np.zeros((0, 4)),
                                     rng=np.random.default_rng(0)))
    np.testing.assert_allclose(out['distill_boxes'], [[0, 0, 50.25, 25.25]])


def test_student_image_and_boxes_and_letterboxed_crops():
    # 200 x 100 image, left half red, right half blue; student size 128 -> scale 0.64, resized 128 x 64.
    arr = np.zeros((100, 200, 3), np.uint8)
    arr[:, :100, 0] = 255
    arr[:, 100:, 2] = 255
    img = Image.fromarray(arr)
    res = dict(img=img, distill_boxes=np.array([[0, 0, 100, 50], [100, 0, 200, 100]], dtype=np.float64),
               crop_boxes=np.array([[0, 0, 100, 50], [100, 0, 200, 100]], dtype=np.float64))
    out = PrepareCLIPSelfInputs(image_size=128, crop_size=64)(res)
    np.testing.assert_allclose(out['boxes'], [[0, 0, 0.5, 0.25], [0.5, 0, 1.0, 0.5]], atol=1e-7)
    student = np.asarray(out['img'])
    assert student.shape == (128, 128, 3) and out['img_shape'] == (64, 128)
    assert (student[64:] == 0).all()                               # padded black below, before normalization
    assert student[10, 10, 0] == 255 and student[10, 120, 2] == 255
    crops = out['crops']
    assert crops.shape == (2, 3, 64, 64) and crops.dtype == np.uint8
    # crop 1: 100 x 50 red -> 64 x 32, centred: rows 16..47 red, rows 0..15 and 48..63 black
    assert (crops[0, 0, 16:48] == 255).all() and (crops[0, :, :16] == 0).all() and (crops[0, :, 48:] == 0).all()
    # crop 2: the 100 x 100 blue half fills the square
    assert (crops[1, 2] == 255).all() and (crops[1, :2] == 0).all()


def test_grid_crop_scale_enlarges_about_the_centre():
    out = SampleGridBoxes(crop_scale=1.5)(dict(img=Image.new('RGB', (120, 120)), rng=np.random.default_rng(3)))
    b, c = out['distill_boxes'], out['crop_boxes']
    quarter = (b[:, 2:] - b[:, :2]) * 0.25  # 1.5x about the centre: a quarter of the size on each side
    np.testing.assert_allclose(c[:, :2], np.maximum(b[:, :2] - quarter, 0))
    np.testing.assert_allclose(c[:, 2:], np.minimum(b[:, 2:] + quarter, 120))
