"""Caption datasets (json and webdataset shards), their transforms, CLIPSelf's image / proposal data, and
region-recognition data."""
from .caption_dataset import CaptionDataset, load_caption_json, sample_rng
from .caption_features import (CAPTION_FEATURES_FORMAT, AddCaptionFeatures, CaptionFeatureStore,
                               save_caption_features)
from .clipself_dataset import CLIPSelfDataset
from .clipself_transforms import (PackCLIPSelfInputs, PrepareCLIPSelfInputs, SampleGridBoxes,
                                  SampleProposalBoxes)
from .epoch import CaptionEpochSampler, DatasetEpochHook
from .errors import DataPreparationError, UnreadableImageError
from .region_dataset import (LoadRegionAnnotations, PackRegionInputs, RegionRecognitionDataset,
                             ResizeLongestSide)
from .region_protocol import REGION_PROTOCOLS, RegionProtocol, get_region_protocol
from .region_transforms import RegionEvalTransform
from .transforms import (CaptionRandomResizedCrop, CaptionResize, LoadCaptionImage, PackCaptionInputs,
                         TokenizeCaption)
from .web_caption_dataset import WebCaptionDataset, expand_shards, iter_shard_captions, iter_tar_samples

__all__ = [
    'CLIPSelfDataset', 'PackCLIPSelfInputs', 'PrepareCLIPSelfInputs', 'SampleGridBoxes', 'SampleProposalBoxes',
    'AddCaptionFeatures', 'CAPTION_FEATURES_FORMAT', 'CaptionFeatureStore', 'save_caption_features',
    'CaptionDataset', 'CaptionEpochSampler', 'CaptionRandomResizedCrop', 'CaptionResize',
    'DataPreparationError',
    'DatasetEpochHook', 'LoadCaptionImage', 'LoadRegionAnnotations', 'PackCaptionInputs', 'PackRegionInputs',
    'RegionRecognitionDataset', 'ResizeLongestSide', 'TokenizeCaption',
    'REGION_PROTOCOLS', 'RegionProtocol', 'get_region_protocol', 'RegionEvalTransform', 'UnreadableImageError',
    'WebCaptionDataset', 'expand_shards', 'iter_shard_captions', 'iter_tar_samples', 'load_caption_json', 'sample_rng',
]
