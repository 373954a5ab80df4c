"""BARON-KD (Aligning Bag of Regions, Wu et al., CVPR 2023) as the reference trains it: a Faster R-CNN
with a pseudo-word classifier, a detection branch and a knowledge-distillation branch over separate
image batches (deviations from the reference: docs/reference_parity.md, section "BARON-KD")."""
from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from torch import Tensor

from .boxes_cache import BoxesCache
from .checkpoint import load_soco_checkpoint
from .losses import QueuedInfoNCE
from .positional import BoxPositionalEmbedding
from .sampling import BagGroup, BagRows, NeighbourhoodSampler, select_kd_proposals
from .teacher import crop_boxes, crop_embeddings_and_tokens, pool_member_tokens
from .text_encoder import bag_features, pack_word_sequences

__all__ = ['BaronKD', 'single_region_box_ids', 'group_digit_id', 'bag_sequence_ids']

# CLIP's image normalization in pixel units (RGB).
CLIP_MEAN = (122.771, 116.746, 104.094)
CLIP_STD = (68.501, 66.632, 70.323)


def single_region_box_ids(proposal_of_row: Tensor, cell_of_row: Tensor, mode: str = 'reference') -> Tensor:
    """Ids that say which single-region rows are the same box (same proposal, same cell).

    ``'exact'``: ``proposal * 9 + cell`` (int64). ``'reference'`` (spec S12), the reference's arithmetic:
    per proposal in batch order ``ids = float32(cell) + start`` (a float32 tensor plus a Python float)
    and then ``start += ids.max() + 1`` (in Python floats), so ``start`` doubles per proposal and, after
    about 24 proposals, ids of different proposals collide (extra pairs get masked).

    Args:
        proposal_of_row: (R,) batch-global proposal index of each row (non-decreasing).
        cell_of_row: (R,) cell id in [0, 9).
    """
    if mode == 'exact':
        return proposal_of_row.long() * 9 + cell_of_row.long()
    if mode != 'reference':
        raise ValueError(f"single_mask must be 'reference' or 'exact', got {mode!r}")
    props = proposal_of_row.cpu()
    cells = cell_of_row.cpu().float()
    out = torch.zeros(len(props), dtype=torch.float32)
    start = 0.0
    for p in torch.unique(props).tolist():
        rows = props == p
        ids = cells[rows] + start
        out[rows] = ids
        start += ids.max().item() + 1
    return out.to(proposal_of_row.device)


def group_digit_id(cells: Sequence[int]) -> int:
    """The reference's id of a group of cells: the cell ids sorted in decreasing order, written as one
    decimal number (cells {0, 4, 5} -> 540). Distinct subsets get distinct ids."""
    return int(''.join(str(int(c)) for c in sorted(cells, reverse=True)))


def bag_sequence_ids(groups: list[list[BagGroup]], mode: str = 'reference') -> Tensor:
    """(S,) ids of the bag sequences of a KD batch (:class:`BagRows` order); sequences with equal ids
    are not each other's negatives.

    ``'exact'``: the group index (int64): other orderings of the same group. ``'reference'`` (spec S2):
    per image, per proposal, each ordering gets :func:`group_digit_id` of its group plus a running
    offset (``+= max(ids) + 1`` per proposal, then per image, in Python ints), and the result is cast
    to float32: once offsets pass 2**24 nearby ids of different groups round to the same float and
    are masked too.
    """
    if mode == 'exact':
        counts = [len(g.orders) for img in groups for g in img]
        return torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts, dtype=torch.long))
    if mode != 'reference':
        raise ValueError(f"bag_mask must be 'reference' or 'exact', got {mode!r}")
    ids: list[int] = []
    batch_start = 0
    for img_groups in groups:
        per_proposal: dict[int, list[int]] = {}
        for g in img_groups:
            per_proposal.setdefault(g.proposal, []).extend([group_digit_id(g.cells.tolist())] * len(g.orders))
        image_ids: list[int] = []
        start = 0
        for raw in per_proposal.values():  # insertion order = proposal order
            image_ids += [i + start for i in raw]
            start += max(raw) + 1
        ids += [i + batch_start for i in image_ids]
        if image_ids:
            batch_start += max(image_ids) + 1
    return torch.tensor(ids, dtype=torch.float32)


@MODELS.register_module()
class BaronKD(TwoStageDetector):
    """Faster R-CNN R50-FPN + bag-of-regions distillation from a frozen CLIP.

    Training takes two batches (:class:`BranchDataPreprocessor`): ``inputs = dict(det=..., kd=...)``.

    - det: the usual RPN + R-CNN losses (box head :class:`BaronBBoxHead`, whose pseudo-word classifier
      runs the teacher CLIP's text transformer).
    - kd, per image: RPN proposals (no grad, train proposal config) -> :func:`select_kd_proposals`
      (GT prepended) -> optional :class:`BoxesCache` -> :class:`NeighbourhoodSampler` groups and
      orderings. Student: every box of every ordering -> RoI features -> head -> pseudo words +
      :class:`BoxPositionalEmbedding` -> word dropout -> bag sequence -> the full text encoder
      (t) and EOT-residual word tokens (s = mean of a box's kept tokens). Teacher (no grad): the spanned
      box's 224 crop -> v, and 1x1 RoIAlign of each member on the crop's tokens -> r.
      ``loss_bag`` = InfoNCE(t, v) (T 30, weight 1), ``loss_single`` = InfoNCE(s, r) (T 50, weight 0.1),
      with per-process queues (:class:`QueuedInfoNCE`).

    A plain tensor ``inputs`` (one batch) serves both branches (an alternative, not the reference).

    Args:
        teacher: ``CLIPModel`` config: the image teacher *and* the text encoder (frozen).
        kd_proposal_cfg: kwargs of :func:`select_kd_proposals`.
        sampler_cfg: kwargs of :class:`NeighbourhoodSampler`.
        bag_loss / single_loss: ``dict(temperature, loss_weight, queue_size)``.
        boxes_cache: kwargs of :class:`BoxesCache`, or None (no cache).
        single_mask: ``'reference'`` (float32 id quirk, spec S12) or ``'exact'`` (the intended mask).
        bag_mask: ``'reference'`` (float32 digit-string group ids, spec S2: some bags of different
            groups are masked as "same group") or ``'exact'`` (only other orderings of the same group).
        push_queues_without_single: also update the queues when ``single_loss.loss_weight`` is 0 (the
            reference does not, spec S3).
        fp16_autocast: run the teacher and text encoder under fp16 autocast on CUDA (as the reference).
        soco_checkpoint: a SoCo R50-FPN + 4conv1fc checkpoint loaded by :meth:`init_weights`
            (:func:`load_soco_checkpoint`, strict key checks).
        Other arguments as :class:`TwoStageDetector`.
    """

    def __init__(self, *args, teacher: dict, kd_proposal_cfg: dict | None = None, sampler_cfg: dict | None = None,
                 bag_loss: dict | None = None, single_loss: dict | None = None, boxes_cache: dict | None = None,
                 single_mask: str = 'reference', bag_mask: str = 'reference',
                 push_queues_without_single: bool = False,
                 fp16_autocast: bool = True, teacher_chunk: int = 64, soco_checkpoint: str | None = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.with_rpn:
            raise ValueError('BaronKD needs an rpn_head (the bags are sampled around RPN proposals)')
        self.teacher = MODELS.build(teacher)
        for p in self.teacher.parameters():
            p.requires_grad = False
        self.teacher.eval()
        head = self.roi_head.bbox_head
        if not hasattr(head, 'shared_features') or not hasattr(head.fc_cls, 'bind_text_encoder'):
            raise ValueError('BaronKD needs a BaronBBoxHead (pseudo-word classifier)')
        head.fc_cls.bind_text_encoder(self.teacher)
        head.fc_cls.fp16_autocast = bool(fp16_autocast)
        self.positional = BoxPositionalEmbedding(head.fc_cls.word_dim, head.fc_cls.words_per_region)
        self.kd_proposal_cfg = dict(kd_proposal_cfg or {})
        self.sampler = NeighbourhoodSampler(**(sampler_cfg or {}))
        dim = self.teacher.embed_dim
        bag = {**dict(temperature=30.0, loss_weight=1.0, queue_size=1024), **(bag_loss or {})}
        single = {**dict(temperature=50.0, loss_weight=0.1, queue_size=1024), **(single_loss or {})}
        self.bag_loss = QueuedInfoNCE(dim, bag['queue_size'], bag['temperature'], bag['loss_weight'])
        self.single_loss = QueuedInfoNCE(dim, single['queue_size'], single['temperature'], single['loss_weight'])
        self.boxes_cache = BoxesCache(**boxes_cache) if boxes_cache is not None else None
        single_region_box_ids(torch.zeros(0), torch.zeros(0), single_mask)  # validates the mode
        self.single_mask = single_mask
        bag_sequence_ids([], bag_mask)  # validates the mode
        self.bag_mask = bag_mask
        self.push_queues_without_single = bool(push_queues_without_single)
        self.fp16_autocast = bool(fp16_autocast)
        self.teacher_chunk = int(teacher_chunk)
        self.soco_checkpoint = soco_checkpoint
        self.baron_enabled = True  # benchmarks switch the KD branch off to time a plain step
        self.generator: torch.Generator | None = None  # Bernoulli draws; None = torch's global RNG
        self.rng = None  # orderings: a random.Random, None = Python's global random
        self.last_bag_stats: dict[str, int] = {}

    def init_weights(self) -> None:
        super().init_weights()
        if self.soco_checkpoint:
            load_soco_checkpoint(self, self.soco_checkpoint)

    def train(self, mode: bool = True) -> BaronKD:
        super().train(mode)
        self.teacher.eval()
        return self

    def _autocast(self, x: Tensor):
        if self.fp16_autocast and x.is_cuda:
            return torch.autocast('cuda', dtype=torch.float16)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------------------------------
    def loss(self, batch_inputs: Tensor | dict, batch_data_samples: SampleList | dict) -> dict:
        """Detection losses on the det batch plus ``loss_bag`` / ``loss_single`` on the KD batch."""
        if isinstance(batch_inputs, dict):
            det_inputs, kd_inputs = batch_inputs['det'], batch_inputs['kd']
            det_samples, kd_samples = batch_data_samples['det'], batch_data_samples['kd']
        else:
            det_inputs = kd_inputs = batch_inputs
            det_samples = kd_samples = batch_data_samples
        losses = super().loss(det_inputs, det_samples)
        if self.baron_enabled:
            losses.update(self.kd_loss(kd_inputs, kd_samples))
        return losses

    def kd_proposals(self, x: tuple[Tensor], samples: SampleList) -> list[Tensor]:
        """Per KD image the (k, 4) boxes to sample bags around (steps 1-2 of the KD branch)."""
        metas = [s.metainfo for s in samples]
        with torch.no_grad():
            outs = self.rpn_head(x)
            cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
            results = self.rpn_head.predict_by_feat(*outs, batch_img_metas=metas, cfg=cfg, rescale=False)
        out = []
        for res, sample in zip(results, samples):
            gt = sample.gt_instances.bboxes if 'gt_instances' in sample else None
            gt = gt.tensor if hasattr(gt, 'tensor') else gt
            boxes, scores = select_kd_proposals(res.bboxes, res.scores, sample.metainfo['img_shape'], gt,
                                                **self.kd_proposal_cfg)
            if self.boxes_cache is not None:
                boxes, scores = self.boxes_cache.merge(sample.metainfo['img_id'], boxes, scores, sample.metainfo)
            out.append(boxes)
        if self.boxes_cache is not None:
            self.boxes_cache.sync()
        return out

    def kd_loss(self, batch_inputs: Tensor, samples: SampleList) -> dict[str, Tensor]:
        """``loss_bag`` and ``loss_single`` of one KD batch."""
        x = self.extract_feat(batch_inputs)
        proposals = self.kd_proposals(x, samples)
        groups: list[list[BagGroup]] = [self.sampler(p, s.metainfo['img_shape'], self.generator, self.rng)
                                        for p, s in zip(proposals, samples)]
        rows = BagRows.build(groups, [len(p) for p in proposals],
                             [s.metainfo.get('img_id', b) for b, s in enumerate(samples)], batch_inputs.device)
        n_seq = rows.num_sequences
        self.last_bag_stats = dict(proposals=sum(len(p) for p in proposals), groups=int(rows.spanned_rois.shape[0]),
                                   sequences=n_seq, regions=int(rows.seq.shape[0]))
        if n_seq == 0:
            zero = sum(p.sum() for p in self.positional.parameters()) * 0.0
            return dict(loss_bag=zero, loss_single=zero.clone())
        # Student: rows were built image by image, so the bbox2roi order is the row order.
        rois = bbox2roi(rows.boxes)
        feats = self.roi_head.bbox_roi_extractor(x[:self.roi_head.bbox_roi_extractor.num_inputs], rois)
        head = self.roi_head.bbox_head
        feats = head.shared_features(feats)
        cls = head.fc_cls
        words = cls.pseudo_words(feats) + self.positional(rows.norm_boxes).to(feats.dtype)
        keep = cls.keep_mask(words.shape[0], words.device)
        w_per = cls.words_per_region
        max_slots = int(rows.slot.max()) + 1
        index = (rows.seq, rows.slot)
        seq_words = words.new_zeros(n_seq, max_slots, w_per, words.shape[-1]).index_put(index, words)
        seq_keep = keep.new_zeros(n_seq, max_slots, w_per).index_put(index, keep)
        seq_words, seq_keep = seq_words.flatten(1, 2), seq_keep.flatten(1)
        with self._autocast(batch_inputs):
            embeds, positions = pack_word_sequences(self.teacher, seq_words, seq_keep)
            t, tokens = bag_features(self.teacher, embeds, seq_keep.sum(1) + 1)
        pos_rows = positions.view(n_seq, max_slots, w_per)[index]  # (R, W)
        tok = tokens[rows.seq[:, None], pos_rows]  # (R, W, D)
        kf = keep.to(tok.dtype)[..., None]
        s = (tok * kf).sum(1) / kf.sum(1)
        v, r = self.teacher_targets(batch_inputs, rows.spanned_rois, rows.group, rows.norm_boxes)
        push = self.single_loss.loss_weight > 0 or self.push_queues_without_single
        # other orderings of the same group are not negatives (nor, in the reference, groups whose
        # float32 ids collide); nor are other rows of the same box
        seq_ids = bag_sequence_ids(groups, self.bag_mask).to(t.device)
        bag_mask = seq_ids[:, None] == seq_ids[None]
        loss_bag = self.bag_loss(t, v[rows.seq_group], rows.seq_image_id, bag_mask, push=push)
        ids = single_region_box_ids(rows.proposal, rows.cell, self.single_mask)
        single_mask = ids[:, None] == ids[None]
        loss_single = self.single_loss(s, r, rows.seq_image_id[rows.seq], single_mask, push=push)
        return dict(loss_bag=loss_bag, loss_single=loss_single)

    # ------------------------------------------------------------------------------------------
    # teacher
    # ------------------------------------------------------------------------------------------
    def _to_clip_pixels(self, batch_inputs: Tensor) -> Tensor:
        """Detector inputs (normalized by the data preprocessor) re-normalized with CLIP's mean / std."""
        pre = self.data_preprocessor
        mean, std = getattr(pre, 'mean', None), getattr(pre, 'std', None)
        pixels = batch_inputs if mean is None or std is None else \
            batch_inputs * std.view(1, 3, 1, 1).to(batch_inputs) + mean.view(1, 3, 1, 1).to(batch_inputs)
        clip_mean = batch_inputs.new_tensor(CLIP_MEAN).view(1, 3, 1, 1)
        clip_std = batch_inputs.new_tensor(CLIP_STD).view(1, 3, 1, 1)
        return (pixels - clip_mean) / clip_std

    @torch.no_grad()
    def teacher_targets(self, batch_inputs: Tensor, spanned_rois: Tensor, group_of_row: Tensor,
                        norm_boxes: Tensor) -> tuple[Tensor, Tensor]:
        """``(v (G, D), r (R, D))``: crop embeddings of the spanned boxes (G, 5 rois) and the member
        embedding of each row (its group, its box in the spanned frame). The reference crops one copy
        per ordering; the copies are identical, so each group is cropped once."""
        images = self._to_clip_pixels(batch_inputs.float())
        size = self.teacher.image_size
        vs, toks = [], []
        with self._autocast(batch_inputs):
            for i in range(0, spanned_rois.shape[0], self.teacher_chunk):
                crops = crop_boxes(images, spanned_rois[i:i + self.teacher_chunk].float(), size)
                v, tok = crop_embeddings_and_tokens(self.teacher, crops)
                vs.append(v)
                toks.append(tok)
        tokens = torch.cat(toks)
        r = pool_member_tokens(tokens, group_of_row, norm_boxes.float())
        return torch.cat(vs), r
