"""CLIP models: the factory ``build_clip`` (registered in mmdet's MODELS as ``'CLIP'``; aliases ``'ZooModel'``)
and the classes it builds (``CLIPModel``, ``HFTextCLIPModel``, ``EvaCLIPModel``: each builds its modules and
picks its tower adapters from :mod:`clim.models.towers`; the interface they share is ``TowerCLIP``),
checkpoint I/O, region / mask pooling, prompt templates and class-name lists."""
from .checkpoint import CheckpointError, load_clip_state, save_clip_checkpoint
from .class_names import COCO_80, COCO_PANOPTIC_133, OV_COCO_65, get_class_names, prompt_name
from .clip import CLIPModel
from .clipseg import CLIPSegModel
from .eva_clip import EvaCLIPModel
from .factory import build_clip
from .hf_clip import HFTextCLIPModel
from .templates import FULL_TEMPLATES, SHORT_TEMPLATES, get_templates
from .tower_clip import TowerCLIP

__all__ = [
    'build_clip', 'TowerCLIP', 'CLIPModel', 'HFTextCLIPModel', 'EvaCLIPModel', 'CLIPSegModel', 'CheckpointError',
    'load_clip_state', 'save_clip_checkpoint', 'COCO_80', 'OV_COCO_65',
    'COCO_PANOPTIC_133', 'get_class_names', 'prompt_name', 'FULL_TEMPLATES', 'SHORT_TEMPLATES',
    'get_templates',
]
from . import hub, zoo  # noqa: E402,F401
