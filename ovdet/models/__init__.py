"""F-ViT and friends: the frozen-CLIP backbone, the simple-pyramid neck, detectors, RoI heads, the
optimizer constructor and the class-count check hook.

Importing registers everything in mmdet's registries.
"""
from . import backbones, detectors, necks, roi_heads  # noqa: F401
from .backbones import CLIPViTBackbone
from .detectors import FViT
from .necks import SimplePyramid
from .optim_constructor import TrainableParamsOptimWrapperConstructor
from .roi_heads import (ClassEmbeddingError, FViTRoIHead, TextEmbeddingBBoxHead, TextEmbeddingClassifier,
                        clip_class_probs, fuse_scores, load_class_embeddings)
from .vocabulary_check_hook import ClassVocabularyCheckHook

__all__ = [
    'CLIPViTBackbone', 'SimplePyramid', 'FViT', 'FViTRoIHead', 'TextEmbeddingBBoxHead', 'TextEmbeddingClassifier',
    'TrainableParamsOptimWrapperConstructor', 'ClassEmbeddingError', 'load_class_embeddings',
    'clip_class_probs', 'fuse_scores', 'ClassVocabularyCheckHook',
]
from . import baron  # noqa: F401
