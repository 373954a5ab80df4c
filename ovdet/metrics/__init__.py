"""Open-vocabulary detection metrics (OV-COCO novel / base / all AP50; OV-LVIS federated AP)."""
from . import lvis_api  # noqa: F401  (first: imports lvis before mmdet.evaluation does, see its doc)
from .ap50 import available_backends, per_category_ap50, resolve_backend  # noqa: F401
from .ov_coco_metric import OVCocoMetric, summarize_ov_ap50  # noqa: F401
from .chance_baseline import OVCocoChanceMetric  # noqa: E402,F401
from .ov_lvis_metric import OVLVISMetric  # noqa: E402,F401
