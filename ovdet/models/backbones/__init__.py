"""Detection backbones."""
from .clip_vit import CLIPViTBackbone
from .dinov2 import DINOv2Backbone
from .frozen_trunk import FrozenTrunkBackbone
from .torchvision_resnet import TorchvisionResNet

__all__ = ['CLIPViTBackbone', 'DINOv2Backbone', 'FrozenTrunkBackbone', 'TorchvisionResNet']
