"""RoI heads and the open-vocabulary classification pieces they share."""
from .category_info_bbox_head import CategoryInfoBBoxHead
from .class_embeddings import ClassEmbeddingError, load_class_embeddings
from .fvit_roi_head import FViTRoIHead
from .score_fusion import clip_class_probs, fuse_scores
from .text_bbox_head import TextEmbeddingBBoxHead
from .text_classifier import TextEmbeddingClassifier

__all__ = [
    'CategoryInfoBBoxHead',
    'ClassEmbeddingError', 'load_class_embeddings', 'FViTRoIHead', 'clip_class_probs', 'fuse_scores',
    'TextEmbeddingBBoxHead', 'TextEmbeddingClassifier',
]
