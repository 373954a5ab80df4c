"""Caption datasets (json and webdataset shards), their transforms, and region-recognition data."""
from .caption_dataset import CaptionDataset, load_caption_json, sample_rng
from .epoch import CaptionEpochSampler, DatasetEpochHook
from .errors import DataPreparationError, UnreadableImageError
from .region_dataset import (LoadRegionAnnotations, PackRegionInputs, RegionRecognitionDataset,
                             ResizeLongestSide)
from .transforms import (CaptionRandomResizedCrop, CaptionResize, LoadCaptionImage, PackCaptionInputs,
                         TokenizeCaption)
from .web_caption_dataset import WebCaptionDataset, expand_shards, iter_tar_samples

__all__ = [
    'CaptionDataset', 'CaptionEpochSampler', 'CaptionRandomResizedCrop', 'CaptionResize',
    'DataPreparationError',
    'DatasetEpochHook', 'LoadCaptionImage', 'LoadRegionAnnotations', 'PackCaptionInputs', 'PackRegionInputs',
    'RegionRecognitionDataset', 'ResizeLongestSide', 'TokenizeCaption', 'UnreadableImageError',
    'WebCaptionDataset', 'expand_shards', 'iter_tar_samples', 'load_caption_json', 'sample_rng',
]
