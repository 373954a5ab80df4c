"""Necks: the simple pyramid that turns single-stride ViT tokens into a multi-stride pyramid."""
from .simple_pyramid import SimplePyramid

__all__ = ['SimplePyramid']
