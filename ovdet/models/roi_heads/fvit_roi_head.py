"""F-ViT's RoI head: a standard box RoI head whose test-time scores also use the frozen CLIP."""
from __future__ import annotations

from clim.models.dense import pool_boxes
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.utils import empty_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList
from torch import Tensor

__all__ = ['FViTRoIHead']


@MODELS.register_module()
class FViTRoIHead(StandardRoIHead):
    """:class:`StandardRoIHead` whose box prediction takes the CLIP dense map.

    At test time each proposal is also pooled from the frozen CLIP's dense map (RoIAlign 1x1,
    aligned, adaptive sampling, then L2-normalized) and the box head ensembles those CLIP scores
    with its own (see :class:`TextEmbeddingBBoxHead`). The CLIP feature is pooled over the same
    proposal the detector scored (not over the regressed box), so both scores describe one region.

    With a ``mask_head`` (OV-LVIS: a class-agnostic FCN head), masks are predicted for the final
    boxes as :meth:`StandardRoIHead.predict_mask` does. Training is :class:`StandardRoIHead`'s.
    """

    def predict(self, x: tuple[Tensor], rpn_results_list: InstanceList, batch_data_samples: SampleList,
                rescale: bool = False, clip_dense: Tensor | None = None) -> InstanceList:
        """Detections per image.

        Args:
            x: FPN levels, each (B, C, H_l, W_l).
            rpn_results_list: per image proposals (InstanceData with ``bboxes`` (n_i, 4), input pixels).
            batch_data_samples: data samples (their metainfo is used).
            rescale: return boxes in original-image pixels.
            clip_dense: (B, D, h, w) normalized CLIP dense map at a fixed stride of the batch input,
                or None (detector scores only).

        Returns:
            per image InstanceData: bboxes (k, 4), scores (k,), labels (k,) and, with a mask head,
            masks (k, H, W) bool (original size with ``rescale``).
        """
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        # As StandardRoIHead.predict: with a mask head the boxes stay in input pixels until the mask head
        # has pooled them, which then rescales boxes and pastes masks at the original size.
        results_list = self.predict_bbox(x, batch_img_metas, rpn_results_list, rcnn_test_cfg=self.test_cfg,
                                         rescale=rescale and not self.with_mask, clip_dense=clip_dense)
        if self.with_mask:
            results_list = self.predict_mask(x, batch_img_metas, results_list, rescale=rescale)
        return results_list

    def predict_bbox(self, x: tuple[Tensor], batch_img_metas: list[dict], rpn_results_list: InstanceList,
                     rcnn_test_cfg: ConfigType, rescale: bool = False,
                     clip_dense: Tensor | None = None) -> InstanceList:
        """As :meth:`StandardRoIHead.predict_bbox`, plus CLIP region features for the ensemble."""
        proposals = [res.bboxes for res in rpn_results_list]
        rois = bbox2roi(proposals)
        if rois.shape[0] == 0:
            return empty_instances(batch_img_metas, rois.device, task_type='bbox',
                                   box_type=self.bbox_head.predict_box_type,
                                   num_classes=self.bbox_head.num_classes,
                                   score_per_cls=rcnn_test_cfg is None)
        bbox_results = self._bbox_forward(x, rois)
        counts = tuple(len(p) for p in proposals)
        clip_feats = None
        if clip_dense is not None and getattr(self.bbox_head, 'uses_clip_scores', False):
            clip_feats = self.clip_region_features(clip_dense, proposals, batch_img_metas).split(counts, 0)
        bbox_preds = bbox_results['bbox_pred']
        return self.bbox_head.predict_by_feat(
            rois=rois.split(counts, 0),
            cls_scores=bbox_results['cls_score'].split(counts, 0),
            bbox_preds=bbox_preds.split(counts, 0) if bbox_preds is not None else (None,) * len(counts),
            batch_img_metas=batch_img_metas,
            rcnn_test_cfg=rcnn_test_cfg,
            rescale=rescale,
            clip_feats=clip_feats)

    @staticmethod
    def clip_region_features(clip_dense: Tensor, boxes: list[Tensor], batch_img_metas: list[dict]) -> Tensor:
        """Pool the CLIP dense map over boxes given in batch-input pixels.

        Args:
            clip_dense: (B, D, h, w), covering the padded batch input (H, W) at stride H / h.
            boxes: per image (n_i, 4) x1y1x2y2 in batch-input pixels.

        Returns:
            (sum n_i, D) float32, L2-normalized.
        """
        pad_h, pad_w = batch_img_metas[0]['batch_input_shape']
        stride_h, stride_w = pad_h / clip_dense.shape[-2], pad_w / clip_dense.shape[-1]
        if abs(stride_h - stride_w) > 1e-6:
            raise ValueError(f'CLIP dense map {tuple(clip_dense.shape[-2:])} does not cover the batch input '
                             f'{(pad_h, pad_w)} at one stride')
        return pool_boxes(clip_dense, boxes, normalized=False, stride=stride_h)
