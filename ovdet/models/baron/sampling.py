"""BARON-KD's bags of regions, as the reference samples them: proposal selection and the per-cell
Bernoulli neighbourhood sampler.

Boxes are (x1, y1, x2, y2) in input-image pixels. The Bernoulli draws use torch's RNG (a
``torch.Generator`` when given), the orderings Python's ``random`` (a ``random.Random`` when given),
as in the reference.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch
from mmcv.ops import nms
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor

__all__ = ['select_kd_proposals', 'neighbour_probabilities', 'grid_cells', 'NeighbourhoodSampler', 'BagGroup',
           'BagRows', 'spanned_box', 'normalize_to_spanned', 'nms_keep']


def nms_keep(boxes: Tensor, scores: Tensor, iou_thr: float) -> Tensor:
    """Indices kept by NMS, by decreasing score."""
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    _, keep = nms(boxes.float(), scores.float(), iou_thr)
    return keep


def select_kd_proposals(bboxes: Tensor, scores: Tensor, img_shape: tuple[int, int], gt_bboxes: Tensor | None = None,
                        topk: int = 300, score_thr: float = 0.85, nms_thr: float = 0.1, min_ratio: float = 0.25,
                        max_ratio: float = 4.0, min_area_ratio: float = 0.01) -> tuple[Tensor, Tensor]:
    """The boxes whose neighbourhoods become bags (the reference's order of operations).

    1. the ``topk`` proposals by objectness (``Tensor.topk`` order), with the GT boxes appended at
       score 1 (the reference code concatenates proposals, then GT);
    2. keep a box if ``min_ratio < w / h < max_ratio``, its intersection with the image box
       ``[0, 0, w - 1, h - 1]`` over that box's area > ``min_area_ratio`` (mmdet's ``iof``) and
       score > ``score_thr``;
    3. NMS at ``nms_thr`` over what is left (a GT box suppresses the proposals that overlap it, and
       may suppress another GT box);
    4. if nothing passes step 2, only the highest-scoring box of step 1 (shape filter not applied).

    Args:
        bboxes: (n, 4) RPN proposals. scores: (n,) objectness. img_shape: (h, w) unpadded.
        gt_bboxes: (m, 4) or None.

    Returns:
        ``(boxes (k, 4), scores (k,))`` float32, k >= 1 unless there is no box at all.
    """
    h, w = float(img_shape[0]), float(img_shape[1])
    bboxes, scores = bboxes.detach().float(), scores.detach().float()
    _, order = scores.topk(min(int(topk), scores.shape[0]))
    bboxes, scores = bboxes[order], scores[order]
    if gt_bboxes is not None and gt_bboxes.numel():
        gt = gt_bboxes.detach().float().to(bboxes.device)
        bboxes = torch.cat([bboxes, gt])
        scores = torch.cat([scores, scores.new_ones(gt.shape[0])])
    if bboxes.shape[0] == 0:
        return bboxes.new_zeros(0, 4), scores.new_zeros(0)
    bw, bh = bboxes[:, 2] - bboxes[:, 0], bboxes[:, 3] - bboxes[:, 1]
    ratio = bw / (bh + 1e-12)
    image_box = bboxes.new_tensor([[0.0, 0.0, w - 1.0, h - 1.0]])
    iof = bbox_overlaps(image_box, bboxes, mode='iof')[0]
    keep = (ratio > min_ratio) & (ratio < max_ratio) & (iof > min_area_ratio) & (scores > score_thr)
    if not keep.any():
        best = scores.argmax()
        return bboxes[best:best + 1], scores[best:best + 1]
    bboxes, scores = bboxes[keep], scores[keep]
    kept = nms_keep(bboxes, scores, nms_thr)
    return bboxes[kept], scores[kept]


def neighbour_probabilities(box: Tensor, img_shape: tuple[int, int], max_prob: float = 0.3, exponent: float = 3.0,
                            cut_off: float = 0.3, interval: float = -0.1) -> Tensor:
    """(3, 3) float32 inclusion probability of each grid cell around ``box`` (row-major, centre = box).

    ``p_lr = min(max_prob * (h/w)^exponent, max_prob)``, ``p_ud = min(max_prob * (w/h)^exponent, max_prob)``;
    a direction is zeroed unless (gap to the image border) / (box size along it) > ``cut_off + interval``;
    edge cells take their direction's p, corners the geometric mean of their two directions, the centre 1.
    As in the reference the ratios are formed in float64 (sizes + 1e-12) and everything after, the
    border test included, in float32: the threshold 0.3 + (-0.1) becomes float32(0.2) = 0.20000000298,
    so a gap of exactly 0.2 box sizes is zeroed.
    """
    h, w = float(img_shape[0]), float(img_shape[1])
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = x2 - x1 + 1e-12, y2 - y1 + 1e-12
    f32 = np.float32
    lrud = (np.array([bh / bw, bh / bw, bw / bh, bw / bh], dtype=f32) ** f32(exponent)) * f32(max_prob)
    inside = np.array([x1 / bw, (w - x2) / bw, y1 / bh, (h - y2) / bh], dtype=f32) > f32(cut_off + interval)
    lrud = np.clip(lrud * inside.astype(f32), f32(0.0), f32(max_prob))
    lrud[np.isnan(lrud)] = 0.0
    left, right, up, down = lrud
    p = np.ones(9, dtype=f32)
    p[[0, 3, 6]] *= left
    p[[2, 5, 8]] *= right
    p[[0, 1, 2]] *= up
    p[[6, 7, 8]] *= down
    p[[0, 2, 6, 8]] **= f32(0.5)
    return torch.from_numpy(np.clip(p, f32(0.0), f32(1.0))).view(3, 3)


def grid_cells(box: Tensor, interval: float = -0.1) -> Tensor:
    """(9, 4) float32 3x3 grid (row-major) around ``box``: cell (r, c) is the box shifted by
    ((c-1) * (1 + interval) * w, (r-1) * (1 + interval) * h), so with -0.1 it overlaps the centre by
    0.1. Computed as the reference does, in float32: unit templates ``[c + (c-1) * interval, ...]``
    scaled by (w, h) (+1e-12) and moved so that the centre template lands on ``box``."""
    f32 = np.float32
    x1, y1, x2, y2 = (float(v) for v in box)
    templates = np.array([[c + (c - 1.0) * interval, r + (r - 1.0) * interval,
                           c + 1.0 + (c - 1.0) * interval, r + 1.0 + (r - 1.0) * interval]
                          for r in (0.0, 1.0, 2.0) for c in (0.0, 1.0, 2.0)], dtype=f32)
    bw, bh = x2 - x1 + 1e-12, y2 - y1 + 1e-12
    templates = templates * np.array([bw, bh, bw, bh], dtype=f32).reshape(1, 4)
    offset = np.array([x1, y1, x2, y2], dtype=f32) - templates[4]
    return torch.from_numpy(templates + offset.reshape(1, 4)).to(box.device if torch.is_tensor(box) else 'cpu')


def spanned_box(boxes: Tensor) -> Tensor:
    """(4,) envelope of (k, 4) boxes."""
    return torch.cat([boxes[:, :2].min(0).values, boxes[:, 2:].max(0).values])


def normalize_to_spanned(boxes: Tensor, spanned: Tensor) -> Tensor:
    """(k, 4) boxes in the frame of their spanned box (4,) or (k, 4): (box - span xy) / span wh."""
    spanned = spanned.expand_as(boxes)
    wh = (spanned[:, 2:] - spanned[:, :2]).clamp(min=1e-6).repeat(1, 2)
    return (boxes - spanned[:, :2].repeat(1, 2)) / wh


@dataclass
class BagGroup:
    """One group of neighbourhood boxes around a proposal.

    Attributes:
        boxes: (k, 4) the chosen cells clamped to the image, row-major cell order.
        cells: (k,) their cell ids in [0, 9) (4 = the proposal).
        spanned: (4,) envelope of ``boxes``.
        norm_boxes: (k, 4) ``boxes`` in the spanned box's frame.
        orders: the orderings (lists of indices into ``boxes``), each one bag sequence.
        proposal: index of the proposal in its image's selection.
    """
    boxes: Tensor
    cells: Tensor
    spanned: Tensor
    norm_boxes: Tensor
    orders: list[list[int]]
    proposal: int


class NeighbourhoodSampler:
    """Groups of grid cells around each proposal, drawn by per-cell Bernoulli trials.

    For a proposal with n *neighbour* cells of probability > 0 (:func:`neighbour_probabilities`; the
    centre is not counted, as in the reference code), ``min(max_groups, n!)`` groups are drawn (n!, not
    2^n: spec S5); each draw is one ``torch.bernoulli`` of the 9 probabilities, redrawn until the subset
    is new (the centre is always in). A group's cells are clamped to the unpadded image; it gets
    ``min(k!, max_orders)`` distinct orderings, each ``random.sample(range(k), k)``, redrawn until new.
    All groups of a proposal are drawn before its orderings (torch and Python streams are separate,
    so the interleaving does not change any draw).

    Args:
        max_groups: 3. max_orders: 2.
        max_prob, exponent, cut_off: see :func:`neighbour_probabilities`.
        interval: -0.1, the cells' overlap with the centre (:func:`grid_cells`) and the border test's
            offset to ``cut_off``.
    """

    def __init__(self, max_groups: int = 3, max_orders: int = 2, max_prob: float = 0.3,
                 exponent: float = 3.0, cut_off: float = 0.3, interval: float = -0.1) -> None:
        if max_groups < 1 or max_orders < 1:
            raise ValueError('max_groups and max_orders must be >= 1')
        self.max_groups, self.max_orders, self.interval = int(max_groups), int(max_orders), float(interval)
        self.prob_cfg = dict(max_prob=max_prob, exponent=exponent, cut_off=cut_off, interval=interval)

    def groups_of(self, box: Tensor, img_shape: tuple[int, int], proposal: int = 0,
                  generator: torch.Generator | None = None, rng: random.Random | None = None) -> list[BagGroup]:
        """The groups of one proposal (4,)."""
        sample = rng.sample if rng is not None else random.sample
        probs = neighbour_probabilities(box, img_shape, **self.prob_cfg).flatten()
        n = int((probs > 0).sum()) - 1
        wanted = min(self.max_groups, math.factorial(n))
        cells_all = grid_cells(box.detach().cpu(), self.interval)
        h, w = float(img_shape[0]), float(img_shape[1])
        seen: set[tuple[int, ...]] = set()
        out = []
        while len(out) < wanted:
            draw = torch.bernoulli(probs, generator=generator)
            key = tuple(int(v) for v in draw.tolist())
            if key in seen:
                continue
            seen.add(key)
            cells = draw.nonzero().flatten()
            boxes = cells_all[cells].clone()
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
            span = spanned_box(boxes)
            k = boxes.shape[0]
            orders: list[list[int]] = []
            while len(orders) < min(math.factorial(k), self.max_orders):
                perm = sample(list(range(k)), k)
                if perm not in orders:
                    orders.append(perm)
            out.append(BagGroup(boxes=boxes, cells=cells, spanned=span, norm_boxes=normalize_to_spanned(boxes, span),
                                orders=orders, proposal=proposal))
        return out

    def __call__(self, proposals: Tensor, img_shape: tuple[int, int], generator: torch.Generator | None = None,
                 rng: random.Random | None = None) -> list[BagGroup]:
        """All groups of one image's proposals (P, 4), proposal by proposal."""
        out: list[BagGroup] = []
        for p in range(proposals.shape[0]):
            out += self.groups_of(proposals[p], img_shape, p, generator, rng)
        return out


@dataclass
class BagRows:
    """A KD batch's groups flattened: one row per box of every ordering (sequence, slot), image-major.

    Attributes:
        boxes: per image (R_b, 4) the rows' boxes (the RoIs, in row order).
        norm_boxes: (R, 4) each row's box in its spanned box's frame.
        seq, slot, group, proposal, cell: (R,) long: sequence, position in it, group, batch-global
            proposal and cell id of each row.
        seq_group: (S,) group of each sequence. seq_image_id: (S,) float image id of each sequence.
        spanned_rois: (G, 5) [image index, spanned box] of each group.
    """
    boxes: list[Tensor]
    norm_boxes: Tensor
    seq: Tensor
    slot: Tensor
    group: Tensor
    proposal: Tensor
    cell: Tensor
    seq_group: Tensor
    seq_image_id: Tensor
    spanned_rois: Tensor

    @property
    def num_sequences(self) -> int:
        return int(self.seq_group.shape[0])

    @classmethod
    def build(cls, groups: list[list[BagGroup]], num_proposals: list[int], image_ids: list[float],
              device: torch.device | str = 'cpu') -> BagRows:
        """From per-image groups (``NeighbourhoodSampler`` output), proposals per image and image ids."""
        boxes: list[list[Tensor]] = [[] for _ in groups]
        norm: list[Tensor] = []
        cols: dict[str, list[int]] = {k: [] for k in ('seq', 'slot', 'group', 'proposal', 'cell')}
        seq_group: list[int] = []
        seq_img: list[float] = []
        spanned: list[Tensor] = []
        n_group = prop_offset = 0
        for b, img_groups in enumerate(groups):
            for g in img_groups:
                spanned.append(torch.cat([g.spanned.new_tensor([b]), g.spanned]))
                for order in g.orders:
                    for slot, j in enumerate(order):
                        boxes[b].append(g.boxes[j])
                        norm.append(g.norm_boxes[j])
                        for key, val in (('seq', len(seq_group)), ('slot', slot), ('group', n_group),
                                         ('proposal', prop_offset + g.proposal), ('cell', int(g.cells[j]))):
                            cols[key].append(val)
                    seq_group.append(n_group)
                    seq_img.append(float(image_ids[b]))
                n_group += 1
            prop_offset += int(num_proposals[b])
        long = dict(dtype=torch.long, device=device)
        return cls(boxes=[torch.stack(r).to(device) if r else torch.zeros(0, 4, device=device) for r in boxes],
                   norm_boxes=torch.stack(norm).to(device) if norm else torch.zeros(0, 4, device=device),
                   **{k: torch.tensor(v, **long) for k, v in cols.items()},
                   seq_group=torch.tensor(seq_group, **long),
                   seq_image_id=torch.tensor(seq_img, dtype=torch.float32, device=device),
                   spanned_rois=torch.stack(spanned).to(device) if spanned else torch.zeros(0, 5, device=device))
