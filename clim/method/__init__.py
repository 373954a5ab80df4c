"""CLIM: mosaics, pseudo boxes, the cross-rank contrastive loss, the models, hooks and export."""
from .base import ContrastiveCLIPBase
from .clim import CLIM
from .clip_contrastive import CLIPContrastive
from .data_preprocessor import CLIP_MEAN, CLIP_STD, CLIMDataPreprocessor
from .export import CLIPExportHook, ensemble_state_dict
from .hooks import LogitScaleClampHook
from .loss import ContrastiveLoss, gather_features, infonce_loss
from .mosaic import MosaicGroup, MosaicPlan, build_mosaics, mosaic_boxes, plan_mosaics

__all__ = [
    'CLIM', 'CLIMDataPreprocessor', 'CLIPContrastive', 'CLIPExportHook', 'CLIP_MEAN', 'CLIP_STD',
    'ContrastiveCLIPBase', 'ContrastiveLoss', 'LogitScaleClampHook', 'MosaicGroup', 'MosaicPlan',
    'build_mosaics',
    'ensemble_state_dict', 'gather_features', 'infonce_loss', 'mosaic_boxes', 'plan_mosaics',
]
