"""High-level inference: :func:`load_detector` and :func:`detect` with a free-text vocabulary."""
from .inference import detect, load_detector, parse_vocabulary
from .visualization import draw_detections

__all__ = ['detect', 'draw_detections', 'load_detector', 'parse_vocabulary']
