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

import torch
from mmcv.ops import nms
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
    """The boxes whose neighbourhoods become bags (reference order of operations).

    1. the ``topk`` proposals by objectness, with the GT boxes **prepended** at score 1;
    2. keep a box if ``min_ratio < w / h < max_ratio``, (box & image) / image area > ``min_area_ratio``
       and score > ``score_thr``;
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
    order = scores.argsort(descending=True)[:topk]
    bboxes, scores = bboxes[order], scores[order]
    if gt_bboxes is not None and gt_bboxes.numel():
        gt = gt_bboxes.detach().float().to(bboxes.device)
        bboxes = torch.cat([gt, bboxes])
        scores = torch.cat([scores.new_ones(gt.shape[0]), scores])
    if bboxes.shape[0] == 0:
        return bboxes.new_zeros(0, 4), scores.new_zeros(0)
    bw, bh = bboxes[:, 2] - bboxes[:, 0], bboxes[:, 3] - bboxes[:, 1]
    ratio = bw / bh
    iw = (bboxes[:, 2].clamp(max=w) - bboxes[:, 0].clamp(min=0)).clamp(min=0)
    ih = (bboxes[:, 3].clamp(max=h) - bboxes[:, 1].clamp(min=0)).clamp(min=0)
    keep = (ratio > min_ratio) & (ratio < max_ratio) & (iw * ih / (h * w) > min_area_ratio) & (scores > score_thr)
    if not keep.any():
        best = scores.argmax()
        return bboxes[best:best + 1], scores[best:best + 1]
    bboxes, scores = bboxes[keep], scores[keep]
    kept = nms_keep(bboxes, scores, nms_thr)
    return bboxes[kept], scores[kept]


def neighbour_probabilities(box: Tensor, img_shape: tuple[int, int], max_prob: float = 0.3, exponent: float = 3.0,
                            cut_off: float = 0.3, interval: float = -0.1) -> Tensor:
    """(3, 3) inclusion probability of each grid cell around ``box`` (row-major, centre = box).

    ``p_lr = min(max_prob * (h/w)^exponent, max_prob)``, ``p_ud = min(max_prob * (w/h)^exponent, max_prob)``;
    a direction is zeroed when (gap to the image border) / (box size along it) <= ``cut_off + interval``
    (0.2 in effect in the reference); edge cells take their direction's p, corners the geometric mean of
    their two directions, the centre 1.
    """
    h, w = float(img_shape[0]), float(img_shape[1])
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
    p_lr = min(max_prob * (bh / bw) ** exponent, max_prob)
    p_ud = min(max_prob * (bw / bh) ** exponent, max_prob)
    thr = cut_off + interval
    left = p_lr if x1 / bw > thr else 0.0
    right = p_lr if (w - x2) / bw > thr else 0.0
    up = p_ud if y1 / bh > thr else 0.0
    down = p_ud if (h - y2) / bh > thr else 0.0
    return torch.tensor([[math.sqrt(up * left), up, math.sqrt(up * right)],
                         [left, 1.0, right],
                         [math.sqrt(down * left), down, math.sqrt(down * right)]])


def grid_cells(box: Tensor, shift: float = 0.9) -> Tensor:
    """(9, 4) the 3x3 grid (row-major): cell (r, c) is ``box`` shifted by ((c-1)*shift*w, (r-1)*shift*h)."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    offs = torch.tensor([-1.0, 0.0, 1.0], device=box.device) * shift
    dy, dx = torch.meshgrid(offs * bh, offs * bw, indexing='ij')
    d = torch.stack([dx.flatten(), dy.flatten(), dx.flatten(), dy.flatten()], 1)
    return box[None].float() + d


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

    For a proposal with n cells of probability > 0 (:func:`neighbour_probabilities`), ``min(max_groups,
    n!)`` groups are drawn (the reference counts n!, spec S5); each draw is one Bernoulli per cell,
    redrawn until the subset is new (the centre is always in). A group's cells are clamped to the
    unpadded image; it gets ``min(k!, max_orders)`` distinct random orderings.

    Args:
        max_groups: 3. max_orders: 2. shift: 0.9 (cells overlap the centre by 0.1).
        max_prob, exponent, cut_off, interval: see :func:`neighbour_probabilities`.
    """

    def __init__(self, max_groups: int = 3, max_orders: int = 2, shift: float = 0.9, max_prob: float = 0.3,
                 exponent: float = 3.0, cut_off: float = 0.3, interval: float = -0.1) -> None:
        if max_groups < 1 or max_orders < 1:
            raise ValueError('max_groups and max_orders must be >= 1')
        self.max_groups, self.max_orders, self.shift = int(max_groups), int(max_orders), float(shift)
        self.prob_cfg = dict(max_prob=max_prob, exponent=exponent, cut_off=cut_off, interval=interval)

    def groups_of(self, box: Tensor, img_shape: tuple[int, int], proposal: int = 0,
                  generator: torch.Generator | None = None, rng: random.Random | None = None) -> list[BagGroup]:
        """The groups of one proposal (4,)."""
        shuffle = rng.shuffle if rng is not None else random.shuffle
        probs = neighbour_probabilities(box, img_shape, **self.prob_cfg).flatten()
        n = int((probs > 0).sum())
        wanted = min(self.max_groups, math.factorial(n))
        cells_all = grid_cells(box.detach().cpu().float(), self.shift)
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
                perm = list(range(k))
                shuffle(perm)
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
