"""Detection backbones."""
from .clip_vit import CLIPViTBackbone

__all__ = ['CLIPViTBackbone']
