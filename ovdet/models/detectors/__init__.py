"""Detectors."""
from .fvit import FViT

__all__ = ['FViT']
