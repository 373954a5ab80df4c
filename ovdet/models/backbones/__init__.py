"""Detection backbones."""
from .clip_vit import CLIPViTBackbone

__all__ = ['CLIPViTBackbone']
from .dinov2 import DINOv2Backbone  # noqa: E402,F401
from .torchvision_resnet import TorchvisionResNet  # noqa: E402,F401
