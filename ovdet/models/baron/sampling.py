"""Bag-of-regions sampling (BARON-style): proposal selection and neighbourhood box groups.

Everything here is plain tensor code on boxes in input-image pixels (x1, y1, x2, y2), no gradients.
Randomness comes only from the ``torch.Generator`` passed in, so a seeded generator reproduces the
same bags.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from mmcv.ops import batched_nms
from torch import Tensor

__all__ = ['select_proposals', 'NeighbourhoodSampler', 'BagSamples', 'spanned_boxes',
           'normalize_to_spanned', 'GRID_RECTANGLES']

# The 3x3 grid around a proposal: cell (r, c) is the proposal shifted by ((c - 1) * w, (r - 1) * h);
# cell (1, 1) is the proposal itself. A group is every cell of an axis-aligned sub-rectangle of the
# grid that contains the centre cell: rows [r0, r1] and columns [c0, c1] with r0 <= 1 <= r1, etc.
_RANGES = ((0, 1), (0, 2), (1, 1), (1, 2))
GRID_RECTANGLES: tuple[tuple[tuple[int, int], ...], ...] = tuple(
    tuple((r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1))
    for (r0, r1), (c0, c1) in itertools.product(_RANGES, _RANGES))


def select_proposals(bboxes: Tensor, scores: Tensor, img_shape: tuple[int, int],
                     gt_bboxes: Tensor | None = None, topk: int = 300, objectness_thr: float = 0.85,
                     nms_thr: float = 0.1, min_area_ratio: float = 0.01, max_area_ratio: float = 0.8,
                     max_aspect_ratio: float = 4.0, min_size: float = 4.0,
                     max_per_img: int | None = None) -> Tensor:
    """The proposals whose neighbourhoods become bags.

    Steps: keep the ``topk`` highest-scoring proposals; drop those below ``objectness_thr``, whose
    area / image area is outside [min_area_ratio, max_area_ratio], whose long / short side ratio
    exceeds ``max_aspect_ratio`` or whose short side is below ``min_size`` pixels; NMS at ``nms_thr``;
    prepend the ground-truth boxes (not filtered); keep at most ``max_per_img``.

    Args:
        bboxes: (n, 4) proposals, input-image pixels. scores: (n,) objectness in [0, 1].
        img_shape: (h, w) of the (unpadded) image; boxes are clipped to it.
        gt_bboxes: (m, 4) ground-truth boxes or None.

    Returns:
        (k, 4) float boxes (ground truth first, then proposals by decreasing score).
    """
    h, w = float(img_shape[0]), float(img_shape[1])
    bboxes = bboxes.detach().float()
    scores = scores.detach().float()
    if bboxes.numel():
        order = scores.argsort(descending=True)[:topk]
        bboxes, scores = bboxes[order], scores[order]
        bboxes = _clip(bboxes, h, w)
        bw, bh = bboxes[:, 2] - bboxes[:, 0], bboxes[:, 3] - bboxes[:, 1]
        area = bw * bh / (h * w)
        short, long_ = torch.minimum(bw, bh), torch.maximum(bw, bh)
        keep = (scores >= objectness_thr) & (area >= min_area_ratio) & (area <= max_area_ratio) & \
            (short >= min_size) & (long_ <= max_aspect_ratio * short)
        bboxes, scores = bboxes[keep], scores[keep]
        if bboxes.numel():
            _, kept = batched_nms(bboxes, scores, torch.zeros_like(scores, dtype=torch.long),
                                  dict(type='nms', iou_threshold=nms_thr))
            bboxes = bboxes[kept]
    else:
        bboxes = bboxes.new_zeros(0, 4)
    if gt_bboxes is not None and gt_bboxes.numel():
        gt = _clip(gt_bboxes.detach().float().to(bboxes.device), h, w)
        gt = gt[((gt[:, 2] - gt[:, 0]) >= 1) & ((gt[:, 3] - gt[:, 1]) >= 1)]
        bboxes = torch.cat([gt, bboxes])
    if max_per_img is not None:
        bboxes = bboxes[:max_per_img]
    return bboxes


def _clip(boxes: Tensor, h: float, w: float) -> Tensor:
    out = boxes.clone()
    out[:, 0::2] = out[:, 0::2].clamp(0, w)
    out[:, 1::2] = out[:, 1::2].clamp(0, h)
    return out


def spanned_boxes(boxes: Tensor, group_index: Tensor, num_groups: int) -> Tensor:
    """(G, 4) union box of each group of ``boxes`` (R, 4) with ``group_index`` (R,) in [0, G)."""
    out = boxes.new_empty(num_groups, 4)
    idx = group_index.long()
    out[:, :2] = boxes.new_full((num_groups, 2), float('inf')).scatter_reduce(
        0, idx[:, None].expand(-1, 2), boxes[:, :2], 'amin')
    out[:, 2:] = boxes.new_full((num_groups, 2), float('-inf')).scatter_reduce(
        0, idx[:, None].expand(-1, 2), boxes[:, 2:], 'amax')
    return out


def normalize_to_spanned(boxes: Tensor, spanned: Tensor) -> Tensor:
    """Boxes (R, 4) expressed in the frame of their spanned boxes (R, 4): values in [0, 1]."""
    wh = (spanned[:, 2:] - spanned[:, :2]).clamp(min=1e-6).repeat(1, 2)
    return (boxes - spanned[:, :2].repeat(1, 2)) / wh


@dataclass
class BagSamples:
    """The bags of one image.

    Attributes:
        boxes: (R, 4) member boxes of every group (a box appears once per group holding it).
        group_index: (R,) group of each box, in [0, G).
        spanned: (G, 4) union box of each group.
        sequences: (S, L) indices into ``boxes`` giving each bag's box order, padded with -1.
        lengths: (S,) boxes per sequence.
        seq_group: (S,) group of each sequence (every group has ``num_orders`` sequences).
        proposal_index: (G,) the proposal each group was sampled around.
    """
    boxes: Tensor
    group_index: Tensor
    spanned: Tensor
    sequences: Tensor
    lengths: Tensor
    seq_group: Tensor
    proposal_index: Tensor

    @property
    def num_groups(self) -> int:
        return int(self.spanned.shape[0])


class NeighbourhoodSampler:
    """Sample box groups on the 3x3 grid of each proposal's size around it.

    For each proposal, up to ``num_groups`` distinct grid rectangles containing the centre cell are
    drawn; neighbour cells are clipped to the image and dropped when less than ``min_inside`` of
    their area lies inside it (the proposal itself is always kept). Groups whose kept cells repeat
    an earlier group's are skipped. Each group gets ``num_orders`` random orderings of its boxes.

    Args:
        num_groups: groups per proposal (3 in the reference).
        num_orders: random orderings per group (2).
        min_inside: minimal fraction of a neighbour cell inside the image.
        max_boxes: cap on boxes per group (<= 9).
    """

    def __init__(self, num_groups: int = 3, num_orders: int = 2, min_inside: float = 0.5,
                 max_boxes: int = 9) -> None:
        if num_groups < 1 or num_orders < 1 or not 1 <= max_boxes <= 9:
            raise ValueError('num_groups, num_orders >= 1 and 1 <= max_boxes <= 9 required')
        self.num_groups = num_groups
        self.num_orders = num_orders
        self.min_inside = min_inside
        self.max_boxes = max_boxes

    def grid_cells(self, proposals: Tensor, img_shape: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """(P, 9, 4) clipped cells (row-major, centre = index 4) and (P, 9) bool: cell usable."""
        h, w = float(img_shape[0]), float(img_shape[1])
        pw = (proposals[:, 2] - proposals[:, 0])[:, None]
        ph = (proposals[:, 3] - proposals[:, 1])[:, None]
        offs = torch.tensor([-1.0, 0.0, 1.0], device=proposals.device)
        dy, dx = torch.meshgrid(offs, offs, indexing='ij')
        dx, dy = dx.reshape(1, 9) * pw, dy.reshape(1, 9) * ph
        cells = torch.stack([proposals[:, None, 0] + dx, proposals[:, None, 1] + dy,
                             proposals[:, None, 2] + dx, proposals[:, None, 3] + dy], dim=-1)
        clipped = _clip(cells.reshape(-1, 4), h, w).reshape(-1, 9, 4)
        full = (pw * ph).clamp(min=1e-6)
        inside = (clipped[..., 2] - clipped[..., 0]).clamp(min=0) * (clipped[..., 3] - clipped[..., 1]).clamp(min=0)
        usable = inside >= self.min_inside * full
        usable[:, 4] = True
        return clipped, usable

    def __call__(self, proposals: Tensor, img_shape: tuple[int, int],
                 generator: torch.Generator | None = None) -> BagSamples:
        """Sample the bags of one image.

        Args:
            proposals: (P, 4) boxes inside the image (see :func:`select_proposals`).
            img_shape: (h, w).
            generator: CPU generator for the random choices (reproducible bags).
        """
        device = proposals.device
        proposals = proposals.detach().float()
        cells, usable = self.grid_cells(proposals, img_shape)
        cells_cpu, usable_cpu = cells.cpu(), usable.cpu()
        boxes, group_index, proposal_index, sequences = [], [], [], []
        num_groups = 0
        rects = len(GRID_RECTANGLES)
        for p in range(proposals.shape[0]):
            seen: set[tuple[int, ...]] = set()
            for r in torch.randperm(rects, generator=generator).tolist():
                if len(seen) >= self.num_groups:
                    break
                ids = [row * 3 + col for row, col in GRID_RECTANGLES[r] if usable_cpu[p, row * 3 + col]]
                if len(ids) > self.max_boxes:
                    # keep the centre, drop random others
                    others = [i for i in ids if i != 4]
                    pick = torch.randperm(len(others), generator=generator)[:self.max_boxes - 1].tolist()
                    ids = sorted([4] + [others[i] for i in pick])
                key = tuple(ids)
                if key in seen:
                    continue
                seen.add(key)
                start = sum(len(b) for b in boxes)
                boxes.append(cells_cpu[p, ids])
                group_index += [num_groups] * len(ids)
                for _ in range(self.num_orders):
                    order = torch.randperm(len(ids), generator=generator) + start
                    sequences.append(order)
                proposal_index.append(p)
                num_groups += 1
        if boxes:
            all_boxes = torch.cat(boxes).to(device)
        else:
            all_boxes = proposals.new_zeros(0, 4)
        gidx = torch.tensor(group_index, dtype=torch.long, device=device)
        lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long, device=device)
        max_len = int(lengths.max()) if len(sequences) else 0
        seqs = torch.full((len(sequences), max_len), -1, dtype=torch.long)
        for i, s in enumerate(sequences):
            seqs[i, :len(s)] = s
        seq_group = torch.arange(num_groups, device=device).repeat_interleave(self.num_orders)
        return BagSamples(boxes=all_boxes, group_index=gidx,
                          spanned=spanned_boxes(all_boxes, gidx, num_groups),
                          sequences=seqs.to(device), lengths=lengths, seq_group=seq_group,
                          proposal_index=torch.tensor(proposal_index, dtype=torch.long, device=device))
