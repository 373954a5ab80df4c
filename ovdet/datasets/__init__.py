"""OV-COCO and OV-LVIS datasets and their class splits."""
from __future__ import annotations

from .ov_coco import (  # noqa: F401
    COCO_CATEGORIES,
    OV_COCO_BASE_CLASSES,
    OV_COCO_CLASSES,
    OV_COCO_NOVEL_CLASSES,
    OV_COCO_UNEVALUATED_CLASSES,
    OVCocoDataset,
    read_class_names,
)
from .ov_lvis import OVLVISDataset  # noqa: F401
