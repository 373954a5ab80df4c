"""KD proposal selection and the per-cell Bernoulli neighbourhood sampler against hand computations."""
from __future__ import annotations

import math
import random

import pytest
import torch

from ovdet.models.baron import (NeighbourhoodSampler, grid_cells, neighbour_probabilities, normalize_to_spanned,
                                select_kd_proposals)


def test_probabilities_of_a_wide_box_away_from_borders() -> None:
    # w = 40, h = 20 in a 200 x 200 image: p_lr = 0.3 * (20/40)^3 = 0.0375, p_ud = min(0.3 * 8, 0.3) = 0.3
    p = neighbour_probabilities(torch.tensor([80.0, 90.0, 120.0, 110.0]), (200, 200))
    lr, ud = 0.0375, 0.3
    c = math.sqrt(lr * ud)
    expected = torch.tensor([[c, ud, c], [lr, 1.0, lr], [c, ud, c]])
    torch.testing.assert_close(p, expected)


def test_directions_near_borders_are_zeroed_at_gap_over_size_0_2() -> None:
    # square 50 x 50 (p = 0.3 both ways) in a 300 (h) x 200 (w) image
    # left gap 9 / 50 = 0.18 -> zeroed (<= 0.2); right gap 200 - 59 = 141 -> kept;
    # top gap 11 / 50 = 0.22 -> kept; bottom gap 300 - 61 = 239 -> kept
    p = neighbour_probabilities(torch.tensor([9.0, 11.0, 59.0, 61.0]), (300, 200))
    q = 0.3
    expected = torch.tensor([[0.0, q, q], [0.0, 1.0, q], [0.0, q, q]])
    torch.testing.assert_close(p, expected)
    # the configured cut-off 0.3 with interval -0.1 is 0.2 in effect: a gap of 0.25 sizes is kept
    p = neighbour_probabilities(torch.tensor([12.5, 100.0, 62.5, 150.0]), (300, 200))
    assert p[1, 0] == pytest.approx(0.3)
    # ... but the test runs in float32, as in the reference: a gap of exactly 0.2 sizes (10 / 50) is
    # not > float32(0.3 - 0.1) = 0.20000000298, so that direction is zeroed
    p = neighbour_probabilities(torch.tensor([10.0, 100.0, 60.0, 150.0]), (300, 200))
    assert p[1, 0] == 0.0 and p[0, 0] == 0.0 and p[1, 2] == pytest.approx(0.3)
    # a gap of 0.2000000095 sizes: > 0.3 - 0.1 in float64, but float32(0.2000000095) == float32(0.2): zeroed
    box = torch.tensor([1.0000001192092896, 100.0, 6.000000476837158, 105.0])
    assert box[0].item() / (box[2].item() - box[0].item()) > 0.3 - 0.1
    p = neighbour_probabilities(box, (300, 200))
    assert p[1, 0] == 0.0 and p[1, 2] == pytest.approx(0.3)


def test_grid_cells_overlap_the_centre_by_a_tenth() -> None:
    cells = grid_cells(torch.tensor([100.0, 50.0, 140.0, 70.0]))  # w 40, h 20: shifts 36 and 18
    assert cells.dtype == torch.float32
    assert torch.equal(cells[4], torch.tensor([100.0, 50.0, 140.0, 70.0]))
    torch.testing.assert_close(cells[0], torch.tensor([64.0, 32.0, 104.0, 52.0]))  # (r0, c0): (-36, -18)
    torch.testing.assert_close(cells[5], torch.tensor([136.0, 50.0, 176.0, 70.0]))  # right
    torch.testing.assert_close(cells[7], torch.tensor([100.0, 68.0, 140.0, 88.0]))  # down


def test_groups_follow_bernoulli_draws_and_orderings_follow_python_random() -> None:
    box = torch.tensor([80.0, 90.0, 120.0, 110.0])
    img = (200, 200)
    sampler = NeighbourhoodSampler()
    groups = sampler.groups_of(box, img, generator=torch.Generator().manual_seed(5), rng=random.Random(3))
    # hand replay of the same draws
    probs = neighbour_probabilities(box, img).flatten()
    g = torch.Generator().manual_seed(5)
    rng = random.Random(3)
    seen, expected = set(), []
    while len(expected) < 3:  # n = 8 neighbours with p > 0 -> min(3, 8!) groups
        draw = torch.bernoulli(probs, generator=g)
        key = tuple(draw.tolist())
        if key in seen:
            continue
        seen.add(key)
        cells = draw.nonzero().flatten()
        orders = []
        while len(orders) < min(math.factorial(len(cells)), 2):
            perm = rng.sample(list(range(len(cells))), len(cells))  # the reference's draw
            if perm not in orders:
                orders.append(perm)
        expected.append((cells.tolist(), orders))
    assert [(gr.cells.tolist(), gr.orders) for gr in groups] == expected
    all_cells = grid_cells(box)
    for gr in groups:
        assert 4 in gr.cells.tolist()
        torch.testing.assert_close(gr.boxes, all_cells[gr.cells])  # all inside the image: no clamping
        span = torch.cat([gr.boxes[:, :2].min(0).values, gr.boxes[:, 2:].max(0).values])
        torch.testing.assert_close(gr.spanned, span)
        torch.testing.assert_close(gr.norm_boxes, normalize_to_spanned(gr.boxes, span))


def test_group_count_is_n_factorial_capped_and_cells_are_clamped() -> None:
    # a box filling the image corner: only right / down (and their corner) have p > 0 -> n = 3 neighbours
    # -> min(3, 3!) = 3 groups
    box = torch.tensor([0.0, 0.0, 50.0, 50.0])
    groups = NeighbourhoodSampler().groups_of(box, (100, 100), generator=torch.Generator().manual_seed(0),
                                              rng=random.Random(0))
    assert len(groups) == 3
    assert all(set(gr.cells.tolist()) <= {4, 5, 7, 8} for gr in groups)
    # a box with a single usable neighbour: n = 1 neighbour (the centre is not counted) -> 1! = 1 group,
    # the first Bernoulli draw: {centre} or {centre, right}
    box = torch.tensor([0.0, 0.0, 50.0, 100.0])  # tall (p_lr = 0.3), touches top / bottom / left
    for seed in range(6):
        groups = NeighbourhoodSampler().groups_of(box, (100, 200), generator=torch.Generator().manual_seed(seed),
                                                  rng=random.Random(0))
        first = torch.bernoulli(neighbour_probabilities(box, (100, 200)).flatten(),
                                generator=torch.Generator().manual_seed(seed)).nonzero().flatten().tolist()
        assert [gr.cells.tolist() for gr in groups] == [first]
        # min(k!, 2) orderings
        assert sorted(groups[0].orders) == ([[0]] if first == [4] else [[0, 1], [1, 0]])
    # no usable neighbour: 0! = 1 group, the proposal alone
    groups = NeighbourhoodSampler().groups_of(torch.tensor([0.0, 0.0, 100.0, 100.0]), (100, 100),
                                              generator=torch.Generator().manual_seed(0), rng=random.Random(0))
    assert [gr.cells.tolist() for gr in groups] == [[4]]
    # clamping: the right cell of a box near the right border is cut at the image edge
    box = torch.tensor([130.0, 40.0, 180.0, 90.0])  # right gap 20 / 50 = 0.4 -> right kept
    groups = NeighbourhoodSampler().groups_of(box, (200, 200), generator=torch.Generator().manual_seed(1),
                                              rng=random.Random(1))
    for gr in groups:
        assert (gr.boxes[:, 2] <= 200).all()
        if 5 in gr.cells.tolist():
            right = gr.boxes[gr.cells.tolist().index(5)]
            torch.testing.assert_close(right, torch.tensor([175.0, 40.0, 200.0, 90.0]))


def test_gt_joins_before_filter_and_nms() -> None:
    img = (100, 100)
    boxes = torch.tensor([
        [11.0, 11.0, 41.0, 41.0],  # 0.99, overlaps the GT (IoU 0.77) -> suppressed by the GT (score 1)
        [60.0, 60.0, 90.0, 90.0],  # 0.80 <= 0.85 -> out
        [50.0, 5.0, 98.0, 15.0],   # 0.97, w/h = 4.8 -> out
        [45.0, 45.0, 75.0, 70.0],  # 0.90 -> kept
        [70.0, 10.0, 78.0, 18.0],  # 0.95, area 64 / 10000 < 0.01 -> out
    ])
    scores = torch.tensor([0.99, 0.80, 0.97, 0.90, 0.95])
    gt = torch.tensor([[10.0, 10.0, 40.0, 40.0]])
    out, s = select_kd_proposals(boxes, scores, img, gt)
    assert torch.equal(out, torch.tensor([[10.0, 10.0, 40.0, 40.0], [45.0, 45.0, 75.0, 70.0]]))
    assert s.tolist() == pytest.approx([1.0, 0.90])
    # without the GT the first proposal survives
    out, _ = select_kd_proposals(boxes, scores, img, None)
    assert torch.equal(out[0], boxes[0])
    # top-k happens before the GT joins: topk=1 keeps the 0.99 box only, the GT still suppresses it
    out, _ = select_kd_proposals(boxes, scores, img, gt, topk=1)
    assert torch.equal(out, gt)
    # nothing passes: only the argmax box (the GT at score 1 even when its shape fails)
    thin_gt = torch.tensor([[0.0, 0.0, 90.0, 5.0]])
    out, s = select_kd_proposals(boxes, scores * 0.5, img, thin_gt)
    assert torch.equal(out, thin_gt) and s.tolist() == [1.0]
    out, _ = select_kd_proposals(boxes, scores * 0.5, img, None)
    assert torch.equal(out, boxes[:1])
    # the GT is appended (reference order): a proposal at score 1 that fails the shape wins the argmax tie
    thin = torch.tensor([[0.0, 50.0, 95.0, 55.0]])
    out, _ = select_kd_proposals(thin, torch.ones(1), img, thin_gt)
    assert torch.equal(out, thin)
    # the area test is mmdet's iof against the image box [0, 0, w - 1, h - 1]: 10 x 9.95 = 99.5 px is
    # 99.5 / 99^2 = 0.01015 > 0.01 of it (but 0.00995 of w * h)
    small = torch.tensor([[20.0, 20.0, 30.0, 29.95]])
    out, _ = select_kd_proposals(small, torch.tensor([0.9]), img, None, nms_thr=0.5)
    assert torch.equal(out, small)
    out, _ = select_kd_proposals(torch.cat([small, boxes[3:4]]), torch.tensor([0.9, 0.95]), img, None)
    assert len(out) == 2


def test_bag_rows_flatten_every_box_of_every_ordering() -> None:
    from ovdet.models.baron import BagGroup, BagRows

    def group(cells, orders, proposal, x0):
        boxes = torch.tensor([[x0 + c, 0.0, x0 + c + 1, 1.0] for c in cells])
        span = torch.cat([boxes[:, :2].min(0).values, boxes[:, 2:].max(0).values])
        return BagGroup(boxes=boxes, cells=torch.tensor(cells), spanned=span,
                        norm_boxes=normalize_to_spanned(boxes, span), orders=orders, proposal=proposal)

    img0 = [group([4, 5], [[1, 0], [0, 1]], 0, 0.0), group([4], [[0]], 1, 10.0)]
    img1 = [group([3, 4, 7], [[2, 0, 1]], 0, 20.0)]
    rows = BagRows.build([img0, img1], [2, 1], [11, 12])
    assert rows.num_sequences == 4
    assert rows.seq.tolist() == [0, 0, 1, 1, 2, 3, 3, 3]
    assert rows.slot.tolist() == [0, 1, 0, 1, 0, 0, 1, 2]
    assert rows.group.tolist() == [0, 0, 0, 0, 1, 2, 2, 2]
    assert rows.proposal.tolist() == [0, 0, 0, 0, 1, 2, 2, 2]  # image 1's proposal 0 is batch proposal 2
    assert rows.cell.tolist() == [5, 4, 4, 5, 4, 7, 3, 4]  # ordering order
    assert rows.seq_group.tolist() == [0, 0, 1, 2] and rows.seq_image_id.tolist() == [11.0, 11.0, 11.0, 12.0]
    assert [len(b) for b in rows.boxes] == [5, 3]
    assert torch.equal(rows.boxes[1][0], torch.tensor([27.0, 0.0, 28.0, 1.0]))
    assert rows.spanned_rois[:, 0].tolist() == [0.0, 0.0, 1.0]
    torch.testing.assert_close(rows.norm_boxes[0], torch.tensor([0.5, 0.0, 1.0, 1.0]))
