"""Region-recognition evaluation: the model that scores ground-truth regions and the mAcc metric."""
from .clipseg_region import CLIPSegRegionRecognition, pool_logits
from .region_metric import RegionRecognitionMetric, mean_class_accuracy
from .region_model import RegionClassifier, RegionRecognition

__all__ = ['CLIPSegRegionRecognition', 'pool_logits', 'RegionClassifier',
           'RegionRecognition', 'RegionRecognitionMetric', 'mean_class_accuracy']
