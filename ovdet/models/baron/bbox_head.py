"""BARON-KD's R50-FPN box head: 4 frozen-BN convs + 1 fc, MLP regressor, pseudo-word classifier."""
from __future__ import annotations

from mmdet.registry import MODELS
from torch import Tensor, nn

from ..roi_heads.text_bbox_head import TextEmbeddingBBoxHead
from .classifier import PseudoWordClassifier

__all__ = ['BaronBBoxHead']


@MODELS.register_module()
class BaronBBoxHead(TextEmbeddingBBoxHead):
    """:class:`TextEmbeddingBBoxHead` (weight-0 classes masked to -inf in the loss, class weights +
    background weight in the CE, softmax at test, no CLIP ensemble) with BARON's parts:

    - shared convs built with ``norm_cfg`` (the reference: BN with ``requires_grad=False``) and, when
      ``freeze_conv_norms``, their BN kept in eval mode (running statistics never update);
    - ``fc_cls`` = :class:`PseudoWordClassifier` (``words_per_region`` pseudo words through the CLIP
      text transformer; bind the text encoder with ``fc_cls.bind_text_encoder``);
    - ``fc_reg`` = Linear(F, F) + ReLU + Linear(F, 4) when ``mlp_regressor`` (class-agnostic).

    Shapes:
        forward: (N, in_channels, 7, 7) -> (cls_score (N, C + 1), bbox_pred (N, 4)).
    """

    def __init__(self, *args, words_per_region: int = 6, word_dim: int = 512, word_dropout: float = 0.5,
                 temperature: float = 50.0, mlp_regressor: bool = True, freeze_conv_norms: bool = True,
                 **kwargs) -> None:
        kwargs.setdefault('ensemble', None)
        kwargs.setdefault('learn_temperature', False)
        super().__init__(*args, temperature=temperature, **kwargs)
        in_features = self.cls_last_dim
        self.fc_cls = PseudoWordClassifier(in_features, self.num_classes + 1, self.fc_cls.class_embeddings,
                                           words_per_region=words_per_region, word_dim=word_dim,
                                           word_dropout=word_dropout, temperature=temperature)
        if mlp_regressor:
            if not self.reg_class_agnostic:
                raise ValueError('the MLP regressor is class-agnostic (reg_class_agnostic=True)')
            dim = self.reg_last_dim
            self.fc_reg = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True),
                                        nn.Linear(dim, self.bbox_coder.encode_size))
        self.freeze_conv_norms = bool(freeze_conv_norms)

    def train(self, mode: bool = True) -> BaronBBoxHead:
        super().train(mode)
        if mode and self.freeze_conv_norms:
            for m in self.shared_convs.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def shared_features(self, x: Tensor) -> Tensor:
        """(N, C, 7, 7) RoI features -> (N, F) input of ``fc_cls`` (shared convs + fcs; the reference
        head has no separate classification convs / fcs)."""
        if self.num_cls_convs or self.num_cls_fcs:
            raise NotImplementedError('shared_features assumes no separate classification branch')
        for conv in self.shared_convs:
            x = conv(x)
        if self.num_shared_fcs > 0:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
            for fc in self.shared_fcs:
                x = self.relu(fc(x))
        return x
