"""BARON-KD: a Faster R-CNN whose region embeddings are distilled from a frozen CLIP through bags of
regions (Wu et al., CVPR 2023), written on MMDetection's public classes."""
from __future__ import annotations

import copy

import torch
from mmdet.models.detectors import TwoStageDetector
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from torch import Tensor, nn
from torchvision.ops import roi_align

from .bag_encoder import PseudoWordProjector, encode_word_sequences
from .losses import QueuedInfoNCE
from .sampling import NeighbourhoodSampler, normalize_to_spanned, select_proposals

__all__ = ['BaronRoIHead', 'BaronKD']

# CLIP's image normalization in pixel units (RGB).
CLIP_MEAN = (122.7709383, 116.7460125, 104.09373615)
CLIP_STD = (68.5005327, 66.6321579, 70.32316305)


@MODELS.register_module()
class BaronRoIHead(StandardRoIHead):
    """:class:`StandardRoIHead` (boxes only) that also gives the region features and region embeddings
    of arbitrary boxes, for the bag-of-regions distillation.

    The box head must be a ``ConvFCBBoxHead`` whose classifier has ``region_embeddings`` (e.g.
    :class:`TextEmbeddingBBoxHead`).
    """

    def region_features(self, x: tuple[Tensor], boxes: list[Tensor]) -> Tensor:
        """(sum n_i, F) classification-branch features of per-image boxes (batch-input pixels)."""
        rois = bbox2roi(boxes)
        feats = self.bbox_roi_extractor(x[:self.bbox_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            feats = self.shared_head(feats)
        return _cls_branch(self.bbox_head, feats)

    def region_embeddings(self, feats: Tensor) -> Tensor:
        """(N, F) features -> (N, D) normalized embeddings in the classifier's (CLIP) space."""
        return self.bbox_head.fc_cls.region_embeddings(feats)


def _cls_branch(head: nn.Module, x: Tensor) -> Tensor:
    # ConvFCBBoxHead.forward up to the classifier input.
    for conv in head.shared_convs:
        x = conv(x)
    if head.num_shared_fcs > 0:
        if head.with_avg_pool:
            x = head.avg_pool(x)
        x = x.flatten(1)
        for fc in head.shared_fcs:
            x = head.relu(fc(x))
    for conv in head.cls_convs:
        x = conv(x)
    if x.dim() > 2:
        if head.with_avg_pool:
            x = head.avg_pool(x)
        x = x.flatten(1)
    for fc in head.cls_fcs:
        x = head.relu(fc(x))
    return x


@MODELS.register_module()
class BaronKD(TwoStageDetector):
    """Faster R-CNN + bag-of-regions knowledge distillation from a frozen CLIP teacher.

    Training adds to the usual RPN / RoI losses (base classes, text-embedding classifier):

    1. per image, proposals from the RPN filtered by :func:`select_proposals` (``proposal_cfg``),
       ground-truth boxes added;
    2. bags: groups of neighbourhood boxes on the 3x3 grid of each proposal
       (:class:`NeighbourhoodSampler`, ``sampler_cfg``), each in several random orders;
    3. student bag embedding: RoI features of the bag's boxes -> pseudo words
       (:class:`PseudoWordProjector`, ``word_cfg``) + box positional embedding (relative to the
       spanned box) -> the teacher CLIP's **text encoder**;
    4. teacher bag embedding: the teacher CLIP's image encoder on the crop (RoIAlign to the CLIP
       input size) of the spanned box, normalized, under no_grad;
    5. ``loss_bag``: :class:`QueuedInfoNCE` (temperature 30, weight 1.0, queues of 1024);
       ``loss_single``: the same between the classifier's region embedding of each selected box and
       the teacher embedding of its crop (temperature 50, weight 0.1).

    Test time is plain Faster R-CNN with the text-embedding classifier. The teacher CLIP is frozen
    (``requires_grad=False``, always in eval mode); its text encoder is in the student's graph (the
    gradient reaches the pseudo words) but its weights never change.

    Args:
        teacher: ``CLIPModel`` config (any CLIP the wrapper loads, CLIM exports included).
        proposal_cfg: kwargs of :func:`select_proposals`.
        sampler_cfg: kwargs of :class:`NeighbourhoodSampler`.
        word_cfg: kwargs of :class:`PseudoWordProjector` (``in_features`` = the box head's
            classification-feature size, required; ``word_dim`` defaults to the text width).
        bag_loss / single_loss: ``dict(temperature, loss_weight, queue_size)``.
        teacher_chunk: crops per teacher forward.
        seed: when set, the bag sampling and word dropout use a generator seeded with it (reproducible
            runs); else a generator seeded from torch's global RNG each step.
        Other arguments as :class:`TwoStageDetector`.
    """

    def __init__(self, *args, teacher: dict, proposal_cfg: dict | None = None, sampler_cfg: dict | None = None,
                 word_cfg: dict | None = None, bag_loss: dict | None = None, single_loss: dict | None = None,
                 teacher_chunk: int = 64, seed: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.with_rpn:
            raise ValueError('BaronKD needs an rpn_head (the bags are sampled around RPN proposals)')
        self.teacher = MODELS.build(teacher)
        for p in self.teacher.parameters():
            p.requires_grad = False
        self.teacher.eval()
        self.proposal_cfg = dict(proposal_cfg or {})
        self.sampler = NeighbourhoodSampler(**(sampler_cfg or {}))
        word_cfg = dict(word_cfg or {})
        if 'in_features' not in word_cfg:
            raise ValueError('word_cfg.in_features (the box head\'s classification-feature size) is required')
        word_cfg.setdefault('word_dim', self.teacher.text_width)
        word_cfg.setdefault('max_words', self.teacher.context_length - 2)
        if word_cfg['word_dim'] != self.teacher.text_width:
            raise ValueError(f'word_dim {word_cfg["word_dim"]} != teacher text width {self.teacher.text_width}')
        self.word_projector = PseudoWordProjector(**word_cfg)
        dim = self.teacher.embed_dim
        bag = {**dict(temperature=30.0, loss_weight=1.0, queue_size=1024), **(bag_loss or {})}
        single = {**dict(temperature=50.0, loss_weight=0.1, queue_size=1024), **(single_loss or {})}
        self.bag_loss = QueuedInfoNCE(dim, bag['queue_size'], bag['temperature'], bag['loss_weight'])
        self.single_loss = QueuedInfoNCE(dim, single['queue_size'], single['temperature'],
                                         single['loss_weight'])
        self.teacher_chunk = int(teacher_chunk)
        self.seed = seed
        self._steps = 0
        self.baron_enabled = True  # benchmarks switch the extra work off to time a plain step
        self.last_bag_stats: dict[str, int] = {}  # sizes of the last step's bag work (benchmarks, debugging)

    def train(self, mode: bool = True) -> BaronKD:
        super().train(mode)
        self.teacher.eval()  # frozen teacher: never in training mode
        return self

    # ------------------------------------------------------------------------------------------
    # teacher
    # ------------------------------------------------------------------------------------------
    def _to_clip_pixels(self, batch_inputs: Tensor) -> Tensor:
        """Re-normalize detector inputs (normalized by the data preprocessor) with CLIP's mean / std."""
        pre = self.data_preprocessor
        mean = getattr(pre, 'mean', None)
        std = getattr(pre, 'std', None)
        clip_mean = batch_inputs.new_tensor(CLIP_MEAN).view(1, 3, 1, 1)
        clip_std = batch_inputs.new_tensor(CLIP_STD).view(1, 3, 1, 1)
        if mean is None or std is None:
            pixels = batch_inputs
        else:
            pixels = batch_inputs * std.view(1, 3, 1, 1).to(batch_inputs) + mean.view(1, 3, 1, 1).to(batch_inputs)
        return (pixels - clip_mean) / clip_std

    @torch.no_grad()
    def teacher_embeddings(self, batch_inputs: Tensor, boxes: list[Tensor]) -> Tensor:
        """(sum n_i, D) normalized CLIP image embeddings of the crops of per-image boxes (batch-input
        pixels), each RoIAligned to the teacher's input size."""
        rois = bbox2roi([b.float() for b in boxes])
        if rois.shape[0] == 0:
            return batch_inputs.new_zeros(0, self.teacher.embed_dim)
        images = self._to_clip_pixels(batch_inputs.float())
        out = []
        for i in range(0, rois.shape[0], self.teacher_chunk):
            crops = roi_align(images, rois[i:i + self.teacher_chunk], self.teacher.image_size, spatial_scale=1.0,
                              sampling_ratio=-1, aligned=True)
            out.append(self.teacher.encode_image(crops, normalize=True).float())
        return torch.cat(out)

    # ------------------------------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------------------------------
    def _generator(self) -> torch.Generator:
        g = torch.Generator()
        if self.seed is None:
            g.manual_seed(int(torch.randint(0, 2 ** 62, (1,)).item()))
        else:
            g.manual_seed(self.seed + self._steps)
        return g

    def baron_loss(self, x: tuple[Tensor], batch_inputs: Tensor, proposals: list[Tensor],
                   batch_data_samples: SampleList) -> dict[str, Tensor]:
        """``loss_bag`` and ``loss_single`` for one batch.

        Args:
            x: FPN levels. batch_inputs: (B, 3, H, W) normalized images.
            proposals: per image (k_i, 4) selected boxes (see :func:`select_proposals`).
        """
        g = self._generator()
        self._steps += 1
        bags = [self.sampler(p, s.metainfo['img_shape'], generator=g) for p, s in zip(proposals, batch_data_samples)]
        # One RoI pass for bag members and single regions.
        member_boxes = [b.boxes for b in bags]
        n_members = sum(len(b) for b in member_boxes)
        feats = self.roi_head.region_features(x, [torch.cat([m, p]) for m, p in zip(member_boxes, proposals)])
        counts = [len(m) + len(p) for m, p in zip(member_boxes, proposals)]
        per_img = feats.split(counts)
        member_feats = torch.cat([f[:len(m)] for f, m in zip(per_img, member_boxes)])
        single_feats = torch.cat([f[len(m):] for f, m in zip(per_img, member_boxes)])
        assert member_feats.shape[0] == n_members

        # Student bag embeddings.
        norm_boxes = torch.cat([normalize_to_spanned(b.boxes, b.spanned[b.group_index]) for b in bags])
        words = self.word_projector.words(member_feats, norm_boxes)
        seq_words, seq_groups, r_off, g_off = [], [], 0, 0
        for b in bags:
            seqs = torch.where(b.sequences >= 0, b.sequences + r_off, b.sequences)
            seq_words += self.word_projector.sequences(words, seqs, b.lengths, generator=g)
            seq_groups.append(b.seq_group + g_off)
            r_off += len(b.boxes)
            g_off += b.num_groups
        self.last_bag_stats = dict(proposals=sum(len(p) for p in proposals), groups=g_off, regions=r_off,
                                   sequences=len(seq_words), words=sum(len(w) for w in seq_words))
        bag_student = encode_word_sequences(self.teacher, seq_words)
        seq_group = torch.cat(seq_groups) if seq_groups else bag_student.new_zeros(0, dtype=torch.long)

        # Teachers: spanned boxes and single regions, one batched pass.
        spanned = [b.spanned for b in bags]
        teach = self.teacher_embeddings(batch_inputs, [torch.cat([s, p]) for s, p in zip(spanned, proposals)])
        per_img = teach.split([len(s) + len(p) for s, p in zip(spanned, proposals)])
        bag_teacher = torch.cat([t[:len(s)] for t, s in zip(per_img, spanned)])
        single_teacher = torch.cat([t[len(s):] for t, s in zip(per_img, spanned)])

        single_student = self.roi_head.region_embeddings(single_feats)
        loss_bag = self.bag_loss(bag_student, bag_teacher, seq_group)
        loss_single = self.single_loss(single_student, single_teacher,
                                       torch.arange(single_student.shape[0], device=single_student.device))
        if not seq_words:
            # No bag in the batch: a zero loss that still touches every BARON parameter, so DDP
            # (find_unused_parameters=False) sees the same parameters used on every rank.
            loss_bag = loss_bag + 0.0 * sum(p.sum() for p in self.word_projector.parameters())
            loss_single = loss_single + 0.0 * sum(p.sum() for p in self.roi_head.bbox_head.parameters())
        return dict(loss_bag=loss_bag, loss_single=loss_single)

    def select_bag_proposals(self, rpn_results_list, batch_data_samples: SampleList) -> list[Tensor]:
        """Per image (k_i, 4) proposals for the bags (filtered RPN proposals + ground truth)."""
        out = []
        for res, sample in zip(rpn_results_list, batch_data_samples):
            gt = sample.gt_instances.bboxes
            gt = gt.tensor if hasattr(gt, 'tensor') else gt
            out.append(select_proposals(res.bboxes, res.scores, sample.metainfo['img_shape'], gt,
                                        **self.proposal_cfg))
        return out

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        """RPN + RoI losses (as :meth:`TwoStageDetector.loss`) plus ``loss_bag`` and ``loss_single``."""
        x = self.extract_feat(batch_inputs)
        losses = dict()
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        rpn_data_samples = copy.deepcopy(batch_data_samples)
        for data_sample in rpn_data_samples:
            data_sample.gt_instances.labels = torch.zeros_like(data_sample.gt_instances.labels)
        rpn_losses, rpn_results_list = self.rpn_head.loss_and_predict(x, rpn_data_samples,
                                                                      proposal_cfg=proposal_cfg)
        for key in list(rpn_losses.keys()):
            if 'loss' in key and 'rpn' not in key:
                rpn_losses[f'rpn_{key}'] = rpn_losses.pop(key)
        losses.update(rpn_losses)
        # Select before roi_head.loss, which renames the proposals' fields in place.
        bag_proposals = self.select_bag_proposals(rpn_results_list, batch_data_samples) \
            if self.baron_enabled else None
        losses.update(self.roi_head.loss(x, rpn_results_list, batch_data_samples))
        if self.baron_enabled:
            losses.update(self.baron_loss(x, batch_inputs, bag_proposals, batch_data_samples))
        return losses
