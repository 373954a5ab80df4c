"""High-level inference: :func:`load_detector` and :func:`detect` with a free-text vocabulary."""
from .inference import ImageReadError, detect, load_detector, parse_vocabulary, read_image
from .visualization import draw_detections

__all__ = ['ImageReadError', 'detect', 'draw_detections', 'load_detector', 'parse_vocabulary', 'read_image']
