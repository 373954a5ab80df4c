"""Proposal selection and neighbourhood sampling of bags of regions."""
from __future__ import annotations

import pytest
import torch

from ovdet.models.baron import (GRID_RECTANGLES, NeighbourhoodSampler, normalize_to_spanned, select_proposals,
                                spanned_boxes)


def _random_proposals(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x1 = torch.rand(n, generator=g) * (w - 8)
    y1 = torch.rand(n, generator=g) * (h - 8)
    bw = 4 + torch.rand(n, generator=g) * (w - x1 - 4)
    bh = 4 + torch.rand(n, generator=g) * (h - y1 - 4)
    return torch.stack([x1, y1, (x1 + bw).clamp(max=w), (y1 + bh).clamp(max=h)], dim=1)


def test_grid_rectangles_contain_centre() -> None:
    assert len(GRID_RECTANGLES) == 16
    assert all((1, 1) in rect for rect in GRID_RECTANGLES)
    assert len({frozenset(r) for r in GRID_RECTANGLES}) == 16


@pytest.mark.parametrize('img_shape', [(64, 96), (128, 128), (37, 200)])
def test_boxes_inside_image_and_cells_mostly_inside(img_shape) -> None:
    h, w = img_shape
    props = torch.cat([_random_proposals(20, h, w, 1),
                       torch.tensor([[0.0, 0.0, w / 2, h / 2], [w / 2, h / 2, w, h], [0.0, 0.0, w, h]])])
    sampler = NeighbourhoodSampler(num_groups=3, num_orders=2, min_inside=0.5)
    bags = sampler(props, img_shape, generator=torch.Generator().manual_seed(0))
    b = bags.boxes
    assert b.shape[0] > props.shape[0]  # neighbours were sampled
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
    assert ((b[:, 2] - b[:, 0]) > 0).all() and ((b[:, 3] - b[:, 1]) > 0).all()
    s = bags.spanned
    assert (s[:, 0] >= 0).all() and (s[:, 1] >= 0).all() and (s[:, 2] <= w).all() and (s[:, 3] <= h).all()
    # each kept neighbour keeps at least min_inside of its proposal-sized cell
    p = props[bags.proposal_index[bags.group_index]]
    full = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    assert (area >= 0.5 * full - 1e-4).all()


def test_groups_and_spanned_boxes_agree() -> None:
    h, w = 100, 120
    props = _random_proposals(15, h, w, 2)
    bags = NeighbourhoodSampler(num_groups=3, num_orders=2)(props, (h, w), generator=torch.Generator().manual_seed(3))
    G = bags.num_groups
    assert bags.spanned.shape == (G, 4)
    per_prop = torch.bincount(bags.proposal_index, minlength=len(props))
    assert (per_prop >= 1).all() and (per_prop <= 3).all()
    for g in range(G):
        members = bags.boxes[bags.group_index == g]
        assert 1 <= len(members) <= 9
        expected = torch.cat([members[:, :2].min(0).values, members[:, 2:].max(0).values])
        assert torch.equal(bags.spanned[g], expected)
        # the proposal itself is in each of its groups
        prop = props[bags.proposal_index[g]]
        assert (members == prop).all(dim=1).any()
        # members are (clipped) cells of the proposal's 3x3 grid, each at most once
        cells, usable = NeighbourhoodSampler().grid_cells(prop[None], (h, w))
        match = (members[:, None] == cells[0][None]).all(-1)  # (n, 9)
        assert (match.sum(1) >= 1).all() and (match & usable[0][None]).any(1).all()
        assert len({tuple(m) for m in members.tolist()}) == len(members)
        norm = normalize_to_spanned(members, bags.spanned[g].expand_as(members))
        assert (norm >= -1e-6).all() and (norm <= 1 + 1e-6).all()
    # distinct groups per proposal
    for p in range(len(props)):
        gs = (bags.proposal_index == p).nonzero().flatten().tolist()
        keys = {tuple(sorted(map(tuple, bags.boxes[bags.group_index == g].tolist()))) for g in gs}
        assert len(keys) == len(gs)
    # two orderings per group, each a permutation of exactly the group's boxes
    assert torch.equal(bags.seq_group, torch.arange(G).repeat_interleave(2))
    for s in range(bags.sequences.shape[0]):
        n = int(bags.lengths[s])
        idx = bags.sequences[s, :n]
        assert (bags.sequences[s, n:] == -1).all()
        assert sorted(idx.tolist()) == (bags.group_index == bags.seq_group[s]).nonzero().flatten().tolist()
    # spanned_boxes on its own
    assert torch.equal(spanned_boxes(bags.boxes, bags.group_index, G), bags.spanned)


def test_sampling_deterministic_under_a_seed() -> None:
    props = _random_proposals(12, 80, 80, 4)
    sampler = NeighbourhoodSampler()
    a = sampler(props, (80, 80), generator=torch.Generator().manual_seed(7))
    b = sampler(props, (80, 80), generator=torch.Generator().manual_seed(7))
    c = sampler(props, (80, 80), generator=torch.Generator().manual_seed(8))
    for field in ('boxes', 'group_index', 'spanned', 'sequences', 'lengths', 'seq_group', 'proposal_index'):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert not (a.boxes.shape == c.boxes.shape and torch.equal(a.boxes, c.boxes)
                and torch.equal(a.sequences, c.sequences))


def test_empty_proposals_give_no_bags() -> None:
    bags = NeighbourhoodSampler()(torch.zeros(0, 4), (32, 32))
    assert bags.num_groups == 0 and bags.boxes.shape == (0, 4) and bags.sequences.shape[0] == 0


def test_select_proposals_filters_nms_and_gt() -> None:
    img = (100, 100)
    boxes = torch.tensor([
        [10.0, 10.0, 40.0, 40.0],   # kept (0.99)
        [11.0, 11.0, 41.0, 41.0],   # overlaps the first: removed by NMS 0.1
        [60.0, 60.0, 90.0, 90.0],   # score 0.5 < 0.85: removed
        [50.0, 5.0, 98.0, 12.0],    # aspect 48 / 7 > 4: removed
        [0.0, 0.0, 99.0, 99.0],     # area ratio ~0.98 > 0.8: removed
        [70.0, 10.0, 73.0, 13.0],   # area ratio 0.0009 < 0.01: removed
        [45.0, 45.0, 75.0, 70.0],   # kept (0.9), IoU with the first is 0
    ])
    scores = torch.tensor([0.99, 0.98, 0.5, 0.97, 0.96, 0.95, 0.9])
    gt = torch.tensor([[5.0, 5.0, 20.0, 20.0], [-3.0, 80.0, 30.0, 120.0]])
    out = select_proposals(boxes, scores, img, gt)
    expected = torch.tensor([[5.0, 5.0, 20.0, 20.0], [0.0, 80.0, 30.0, 100.0],  # GT first, clipped
                             [10.0, 10.0, 40.0, 40.0], [45.0, 45.0, 75.0, 70.0]])
    assert torch.equal(out, expected)
    assert select_proposals(boxes, scores, img, gt, max_per_img=3).shape == (3, 4)
    assert select_proposals(boxes, scores, img, None, topk=1).shape == (1, 4)
