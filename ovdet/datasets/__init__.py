"""OV-COCO dataset helpers and the synthetic shapes benchmark generator."""
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

_SYNTHETIC_NAMES = ("SHAPE_CLASSES", "SHAPE_BASE_CLASSES", "SHAPE_NOVEL_CLASSES", "SHAPE_CATEGORIES",
                    "COLOR_PALETTE", "generate_shapes_dataset")


def __getattr__(name: str):
    # Lazy, so that `python -m ovdet.datasets.synthetic` does not find its module already imported.
    if name == "synthetic" or name in _SYNTHETIC_NAMES:
        import importlib

        mod = importlib.import_module(".synthetic", __name__)
        return mod if name == "synthetic" else getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
