"""F-ViT: a two-stage open-vocabulary detector on a frozen CLIP ViT (F-VLM recipe, CLIPSelf / CLIM)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from torch import Tensor

from .fvit_checkpoint import upgrade_fvit_state_dict

__all__ = ['FViT']


@MODELS.register_module()
class FViT(TwoStageDetector):
    """Faster R-CNN on :class:`CLIPViTBackbone` whose RoI head also sees the CLIP dense map at test.

    Training is :class:`TwoStageDetector`'s: backbone tokens -> neck (``SimplePyramid`` then the FPN)
    -> RPN / RoI head. At test time one ViT pass gives both the tokens and the CLIP dense map; the
    dense map goes to :class:`FViTRoIHead` for the detector / CLIP score ensemble. Checkpoints written
    with the adapters inside the backbone load as they are (:func:`upgrade_fvit_state_dict`).

    Inputs: ``batch_inputs`` (B, 3, H, W) normalized and padded images (H, W multiples of 32).
    """

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        # Runs before the children load (they see the renamed keys): load_checkpoint, --resume and
        # tools/test.py all read old-layout checkpoints.
        upgrade_fvit_state_dict(state_dict, self, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def clip(self):
        """The frozen :class:`clim.models.CLIPModel` inside the backbone."""
        return self.backbone.clip

    def _needs_clip_dense(self) -> bool:
        bbox_head = getattr(self.roi_head, 'bbox_head', None)
        return bool(getattr(bbox_head, 'uses_clip_scores', False)) and \
            hasattr(self.backbone, 'forward_with_dense')

    def extract_feat_and_dense(self, batch_inputs: Tensor) -> tuple[tuple[Tensor, ...], Tensor | None]:
        """FPN levels and (when the head ensembles with CLIP) the CLIP dense map (B, D, H / 16, W / 16)."""
        if not self._needs_clip_dense():
            return self.extract_feat(batch_inputs), None
        feats, dense = self.backbone.forward_with_dense(batch_inputs)
        if self.with_neck:
            feats = self.neck(feats)
        return feats, dense

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Detections with the detector / CLIP ensemble; see :meth:`TwoStageDetector.predict`.

        Returns:
            the data samples with ``pred_instances`` (bboxes (k, 4), scores (k,), labels (k,)).
        """
        x, clip_dense = self.extract_feat_and_dense(batch_inputs)
        if batch_data_samples[0].get('proposals', None) is None:
            rpn_results_list = self.rpn_head.predict(x, batch_data_samples, rescale=False)
        else:
            rpn_results_list = [s.proposals for s in batch_data_samples]
        results_list = self.roi_head.predict(x, rpn_results_list, batch_data_samples, rescale=rescale,
                                             clip_dense=clip_dense)
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    # ------------------------------------------------------------------------------------------
    # vocabulary
    # ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_vocabulary(self, class_names: Sequence[str],
                          templates: str | Sequence[str] | None = None) -> Tensor:
        """(C, D) prompt-ensemble text embeddings of ``class_names`` from the detector's own CLIP."""
        return self.clip.encode_class_names(list(class_names), templates=templates)

    def set_vocabulary(self, class_names: Sequence[str], class_embeddings: Tensor | None = None,
                       base_classes: Sequence[str] = (),
                       templates: str | Sequence[str] | None = None) -> None:
        """Detect ``class_names`` from now on (test time only).

        Args:
            class_names: the new classes (labels index this list).
            class_embeddings: their (C, D) text embeddings; computed with the CLIP text tower if None.
            base_classes: names among ``class_names`` the detector was trained on with boxes (ensemble
                weight alpha); all others, by default every class, count as novel (beta): a custom
                vocabulary's boxes were never seen in training, so CLIP's judgement weighs most.
            templates: prompt templates for computing the embeddings (default: the full ensemble).
        """
        names = list(class_names)
        if not names:
            raise ValueError('empty vocabulary')
        if class_embeddings is None:
            class_embeddings = self.encode_vocabulary(names, templates)
        unknown = set(base_classes) - set(names)
        if unknown:
            raise ValueError(f'base_classes not in the vocabulary: {sorted(unknown)}')
        base = set(base_classes)
        self.roi_head.bbox_head.set_vocabulary(class_embeddings, [n in base for n in names])
        meta = dict(getattr(self, 'dataset_meta', None) or {})
        meta['classes'] = tuple(names)
        meta.pop('palette', None)
        self.dataset_meta = meta
