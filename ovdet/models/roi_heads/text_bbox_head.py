"""F-ViT's box head: shared convs + fcs, class-agnostic regression, text-embedding classifier."""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.models.layers import multiclass_nms
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmdet.models.utils import empty_instances
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor, scale_boxes
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from .score_fusion import clip_class_probs, fuse_scores
from .text_classifier import TextEmbeddingClassifier

__all__ = ['TextEmbeddingBBoxHead']

_DEFAULT_ENSEMBLE = dict(alpha=0.1, beta=0.8, clip_temperature=75.0)


@MODELS.register_module()
class TextEmbeddingBBoxHead(ConvFCBBoxHead):
    """Open-vocabulary RoI box head trained on base classes only (F-VLM / CLIPSelf / CLIM's F-ViT).

    Structure: ``num_shared_convs`` 3x3 convs (with ``norm_cfg``) then ``num_shared_fcs`` fcs on the
    RoI features, then ``num_cls_fcs`` more fcs on the classification branch and ``num_reg_fcs`` on the
    regression branch (F-ViT's reference: 4 + 2, then 1 and 1); a :class:`TextEmbeddingClassifier`
    (region embedding vs. class text embeddings + background embedding, learnable temperature) and a
    class-agnostic box regressor on top.

    Training: cross entropy over the classes whose weight is > 0 plus background. The logits of
    zero-weight classes (novel / unevaluated) are set to ``-inf`` before the softmax, so they are not
    even negatives and get exactly zero gradient; the remaining classes keep their weights and the
    background gets ``bg_weight``.

    Test: with CLIP region features (see :class:`FViTRoIHead`), scores are the geometric ensemble
    ``det^(1-a) * clip^a`` (:func:`fuse_scores`) over the classes **and the background column**: the
    CLIP softmax runs over the class embeddings plus the classifier's background embedding. Columns
    with a training weight > 0 (base classes and the background) take ``alpha``, all others (novel,
    unevaluated) ``beta``. Without CLIP features, the detector's softmax alone.

    Args:
        class_embeddings: ``.npy`` (C, D) (or array) of class text embeddings, dataset class order.
        num_classes: C, the dataset's number of classes; must match the file (checked at build).
        class_weights: C per-class loss weights, 0 for classes never trained with boxes (default: all 1).
        bg_weight: background loss weight (0.6 in the reference).
        background_row: the embedding file ends with a background row.
        background: the background embedding, ``'learned'`` (reference), ``'zero'`` or ``'text'`` (the
            file's background row); see :class:`TextEmbeddingClassifier`.
        temperature / learn_temperature: classifier temperature (init 50, learnable).
        projection: a linear map of the cls-branch features to the embedding size (default); False uses
            them as the region embedding (``fc_out_channels`` = D; CLIPSelf's EVA F-ViT).
        ensemble: ``dict(alpha, beta, clip_temperature)`` for the test-time ensemble, ``None`` to disable.
        Remaining arguments as :class:`ConvFCBBoxHead` (defaults: 4 shared convs + 2 shared fcs,
        class-agnostic regression; the F-ViT config adds ``num_cls_fcs=1, num_reg_fcs=1``).

    Shapes:
        forward: RoI features (N, in_channels, roi, roi) -> (cls_score (N, C + 1) logits, bbox_pred (N, 4)).
        class_scores: logits (N, C + 1) and CLIP features (N, D) -> scores (N, C + 1), background last.
    """

    def __init__(self,
                 class_embeddings: str | os.PathLike | np.ndarray | Tensor,
                 num_classes: int,
                 class_weights: Sequence[float] | None = None,
                 bg_weight: float = 0.6,
                 background_row: bool = False,
                 background: str = 'learned',
                 temperature: float = 50.0,
                 learn_temperature: bool = True,
                 projection: bool = True,
                 ensemble: dict | None = _DEFAULT_ENSEMBLE,
                 num_shared_convs: int = 4,
                 num_shared_fcs: int = 2,
                 reg_class_agnostic: bool = True,
                 loss_cls: dict | None = None,
                 **kwargs) -> None:
        if class_weights is None:
            class_weights = [1.0] * num_classes
        class_weights = [float(w) for w in class_weights]
        if len(class_weights) != num_classes:
            raise ValueError(f'class_weights has {len(class_weights)} entries, num_classes is {num_classes}')
        if not any(w > 0 for w in class_weights):
            raise ValueError('every class weight is 0: nothing would be trained')
        if bg_weight <= 0:
            raise ValueError('bg_weight must be > 0 (the background is always a training target)')
        loss_cls = dict(loss_cls or dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))
        if loss_cls.get('use_sigmoid', False):
            raise ValueError('TextEmbeddingBBoxHead needs a softmax classification loss (use_sigmoid=False)')
        if loss_cls.get('type') in ('CrossEntropyLoss', 'mmdet.CrossEntropyLoss'):
            loss_cls.setdefault('class_weight', [*class_weights, float(bg_weight)])
        kwargs.pop('cls_predictor_cfg', None)
        super().__init__(
            num_shared_convs=num_shared_convs,
            num_shared_fcs=num_shared_fcs,
            num_classes=num_classes,
            reg_class_agnostic=reg_class_agnostic,
            loss_cls=loss_cls,
            cls_predictor_cfg=dict(type='TextEmbeddingClassifier', class_embeddings=class_embeddings,
                                   background_row=background_row, background=background,
                                   temperature=temperature,
                                   learn_temperature=learn_temperature, projection=projection),
            **kwargs)
        self.bg_weight = float(bg_weight)
        self.ensemble = None if ensemble is None else {**_DEFAULT_ENSEMBLE, **dict(ensemble)}
        self.register_buffer('class_weights', torch.tensor(class_weights), persistent=False)
        self._warned_untrained_target = False

    # ------------------------------------------------------------------------------------------
    # vocabulary
    # ------------------------------------------------------------------------------------------
    @property
    def classifier(self) -> TextEmbeddingClassifier:
        return self.fc_cls

    @property
    def base_mask(self) -> Tensor:
        """(C,) bool: classes trained with boxes (ensemble weight alpha); the others get beta."""
        return self.class_weights > 0

    @property
    def base_columns(self) -> Tensor:
        """(C + 1,) bool: score columns with a training weight > 0, the background (``bg_weight``) included."""
        return torch.cat([self.base_mask, self.base_mask.new_ones(1)])

    @property
    def uses_clip_scores(self) -> bool:
        """Whether test-time scores need CLIP region features."""
        return self.ensemble is not None

    def set_vocabulary(self, class_embeddings: Tensor,
                       base_mask: Sequence[bool] | Tensor | None = None) -> None:
        """Swap in another class list at test time.

        Args:
            class_embeddings: (C', D) text embeddings of the new classes.
            base_mask: (C',) which new classes count as base in the ensemble (alpha); default none:
                the detector was not trained on a custom vocabulary's boxes, so every class is novel
                (beta) and CLIP carries most of the recognition.
        """
        if not self.reg_class_agnostic:
            raise RuntimeError('a new vocabulary needs class-agnostic box regression '
                               '(reg_class_agnostic=True)')
        n = int(class_embeddings.shape[0])
        mask = torch.zeros(n, dtype=torch.bool) if base_mask is None else torch.as_tensor(base_mask).bool()
        if mask.numel() != n:
            raise ValueError(f'base_mask has {mask.numel()} entries for {n} classes')
        self.classifier.set_class_embeddings(class_embeddings)
        self.num_classes = n
        self.class_weights = mask.float().to(self.class_weights.device)
        if getattr(self.loss_cls, 'class_weight', None) is not None:
            self.loss_cls.class_weight = [*self.class_weights.tolist(), self.bg_weight]

    # ------------------------------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------------------------------
    def mask_untrained_logits(self, cls_score: Tensor) -> Tensor:
        """(N, C + 1) logits with every zero-weight class set to -inf (background kept)."""
        return cls_score.masked_fill(~self.base_columns, float('-inf'))

    def loss(self, cls_score: Tensor, bbox_pred: Tensor, rois: Tensor, labels: Tensor, label_weights: Tensor,
             bbox_targets: Tensor, bbox_weights: Tensor, reduction_override: str | None = None) -> dict:
        """BBoxHead's losses with zero-weight classes masked out of the softmax (see class doc)."""
        if cls_score is not None and cls_score.numel() > 0:
            cls_score = self.mask_untrained_logits(cls_score)
            # A box of a masked class would have an infinite loss; such labels mean the train set holds
            # boxes it should not (novel annotations): skip them rather than poison training.
            untrained = (labels < self.num_classes) & ~self.base_mask[labels.clamp(max=self.num_classes - 1)]
            if untrained.any():
                if not self._warned_untrained_target:
                    warnings.warn('training targets include classes with weight 0 (novel / unevaluated); '
                                  'those RoIs are ignored. Train on a base-only annotation file.',
                                  stacklevel=2)
                    self._warned_untrained_target = True
                label_weights = label_weights.masked_fill(untrained, 0)
                labels = labels.masked_fill(untrained, self.num_classes)
        return super().loss(cls_score, bbox_pred, rois, labels, label_weights, bbox_targets, bbox_weights,
                            reduction_override=reduction_override)

    # ------------------------------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------------------------------
    def class_scores(self, cls_score: Tensor, clip_feats: Tensor | None = None) -> Tensor:
        """Final per-class probabilities of N RoIs.

        Args:
            cls_score: (N, C + 1) detector logits.
            clip_feats: (N, D) CLIP region features, or None (detector scores only).

        Returns:
            (N, C + 1) scores, background last (fused like the classes when CLIP features are given).
        """
        det = F.softmax(cls_score.float(), dim=-1)
        if clip_feats is None or self.ensemble is None:
            return det
        clip = clip_class_probs(clip_feats, self.classifier.class_embeddings,
                                self.classifier.background_embedding().detach(), self.ensemble['clip_temperature'])
        return fuse_scores(det, clip, self.base_columns, self.ensemble['alpha'], self.ensemble['beta'])

    def predict_by_feat(self, rois: tuple[Tensor], cls_scores: tuple[Tensor], bbox_preds: tuple[Tensor],
                        batch_img_metas: list[dict], rcnn_test_cfg: ConfigDict | None = None,
                        rescale: bool = False, clip_feats: tuple[Tensor] | None = None) -> list[InstanceData]:
        """Per image: ensemble scores, decode boxes, NMS.

        Args:
            rois: per image (n_i, 5); cls_scores: per image (n_i, C + 1) logits;
            bbox_preds: per image (n_i, 4).
            clip_feats: per image (n_i, D) CLIP region features of the same RoIs, or None.

        Returns:
            per image an InstanceData with bboxes (k, 4), scores (k,), labels (k,).
        """
        if clip_feats is None:
            clip_feats = (None,) * len(batch_img_metas)
        return [self._predict_single(rois[i], self.class_scores(cls_scores[i], clip_feats[i]), bbox_preds[i],
                                     batch_img_metas[i], rescale, rcnn_test_cfg)
                for i in range(len(batch_img_metas))]

    def _predict_single(self, roi: Tensor, scores: Tensor, bbox_pred: Tensor | None, img_meta: dict,
                        rescale: bool, rcnn_test_cfg: ConfigDict | None) -> InstanceData:
        # BBoxHead._predict_by_feat_single applies its own softmax to logits; here the scores are
        # already the ensembled probabilities, so decoding and NMS are done directly.
        results = InstanceData()
        if roi.shape[0] == 0:
            return empty_instances([img_meta], roi.device, task_type='bbox', instance_results=[results],
                                   box_type=self.predict_box_type, use_box_type=False,
                                   num_classes=self.num_classes, score_per_cls=rcnn_test_cfg is None)[0]
        img_shape = img_meta['img_shape']
        num_rois = roi.size(0)
        if bbox_pred is not None:
            reps = 1 if self.reg_class_agnostic else self.num_classes
            bboxes = self.bbox_coder.decode(roi[:, 1:].repeat_interleave(reps, dim=0),
                                            bbox_pred.view(-1, self.bbox_coder.encode_size),
                                            max_shape=img_shape)
        else:
            bboxes = roi[:, 1:].clone()
            bboxes[:, [0, 2]] = bboxes[:, [0, 2]].clamp(min=0, max=img_shape[1])
            bboxes[:, [1, 3]] = bboxes[:, [1, 3]].clamp(min=0, max=img_shape[0])
        if rescale and bboxes.size(0) > 0:
            bboxes = scale_boxes(bboxes, [1 / s for s in img_meta['scale_factor']])
        bboxes = get_box_tensor(bboxes)
        box_dim = bboxes.size(-1)
        bboxes = bboxes.view(num_rois, -1)
        if rcnn_test_cfg is None:
            results.bboxes = bboxes
            results.scores = scores
            return results
        det_bboxes, det_labels = multiclass_nms(bboxes, scores, rcnn_test_cfg.score_thr, rcnn_test_cfg.nms,
                                                rcnn_test_cfg.max_per_img, box_dim=box_dim)
        results.bboxes = det_bboxes[:, :-1]
        results.scores = det_bboxes[:, -1]
        results.labels = det_labels
        return results
