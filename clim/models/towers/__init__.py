"""Tower adapters: the image-tower interface (:mod:`.base`), one adapter module per family
(:mod:`.open_clip_vit`, :mod:`.resnet`, :mod:`.timm_vit`, :mod:`.eva`) and the text towers (:mod:`.text`).

:func:`build_image_tower` picks the adapter for an upstream image-tower module once, when a CLIP is built
(as open_clip's ``_build_vision_tower`` picks the module); nothing after it branches on the family.
"""
from open_clip.modified_resnet import ModifiedResNet
from open_clip.timm_model import TimmModel
from open_clip.transformer import VisionTransformer
from torch import nn

from .base import ImageTower, ViTImageTower, interpolate_pos_embed, tokens_to_map
from .open_clip_vit import OpenCLIPViTTower
from .resnet import ModifiedResNetTower
from .timm_vit import TimmViTTower

__all__ = ['ImageTower', 'ViTImageTower', 'OpenCLIPViTTower', 'ModifiedResNetTower', 'TimmViTTower',
           'build_image_tower', 'interpolate_pos_embed', 'tokens_to_map']


def build_image_tower(visual: nn.Module) -> ImageTower:
    """The adapter of an open_clip image tower: ``VisionTransformer`` (class-token pooling),
    ``ModifiedResNet`` or a ``TimmModel`` over a class-token timm ViT. (EVA-02's ``Eva`` trunk is adapted
    by :class:`~clim.models.towers.eva.EvaImageTower`, built by the EVA model with its native size.)

    Raises:
        NotImplementedError: any other tower, naming it.
    """
    if isinstance(visual, VisionTransformer):
        return OpenCLIPViTTower(visual)
    if isinstance(visual, ModifiedResNet):
        return ModifiedResNetTower(visual)
    if isinstance(visual, TimmModel):
        return TimmViTTower(visual)
    raise NotImplementedError(f'no image-tower adapter for {type(visual).__name__} (supported: open_clip '
                              f'VisionTransformer with class-token pooling, ModifiedResNet, timm ViT in TimmModel)')
