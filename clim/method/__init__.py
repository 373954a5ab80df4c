"""CLIM: mosaics, pseudo boxes, the cross-rank contrastive loss, the models, hooks and export; CLIPSelf."""
from .base import ContrastiveCLIPBase
from .clim import CLIM
from .clip_contrastive import CLIPContrastive
from .clipself import CLIPSelf, CLIPSelfDataPreprocessor, cosine_distill_loss
from .data_preprocessor import CLIP_MEAN, CLIP_STD, CLIMDataPreprocessor
from .export import CLIPExportHook, ensemble_state_dict
from .hooks import LogitScaleClampHook
from .loss import ContrastiveLoss, gather_features, infonce_loss
from .mosaic import MosaicGroup, MosaicPlan, build_mosaics, mosaic_boxes, plan_mosaics
from .text_key import TEXT_FORWARDS, TextFeatureKey, text_tower_tensors, text_tower_trains

__all__ = [
    'CLIPSelf', 'CLIPSelfDataPreprocessor', 'cosine_distill_loss',
    'CLIM', 'CLIMDataPreprocessor', 'CLIPContrastive', 'CLIPExportHook', 'CLIP_MEAN', 'CLIP_STD',
    'ContrastiveCLIPBase', 'ContrastiveLoss', 'LogitScaleClampHook', 'MosaicGroup', 'MosaicPlan',
    'build_mosaics',
    'ensemble_state_dict', 'gather_features', 'infonce_loss', 'mosaic_boxes', 'plan_mosaics',
    'TEXT_FORWARDS', 'TextFeatureKey', 'text_tower_tensors', 'text_tower_trains',
]
