"""Drawing detections onto an image with MMDetection's ``DetLocalVisualizer``."""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

__all__ = ['draw_detections']


def draw_detections(image: str | os.PathLike | np.ndarray, result, classes: Sequence[str],
                    out_file: str | os.PathLike, score_thr: float = 0.3) -> np.ndarray:
    """Draw the boxes, labels and scores of ``result.pred_instances`` and write ``out_file``.

    Args:
        image: image path or an (H, W, 3) uint8 BGR array (as ``mmcv.imread`` gives).
        result: a ``DetDataSample`` with ``pred_instances`` (bboxes in this image's pixels).
        classes: the names ``pred_instances.labels`` index.
        out_file: output image path (format from its extension, e.g. ``.png``).
        score_thr: draw only detections scoring at least this.

    Returns:
        the drawn (H, W, 3) uint8 RGB image.
    """
    import mmcv
    from mmdet.visualization import DetLocalVisualizer

    bgr = mmcv.imread(os.fspath(image)) if not isinstance(image, np.ndarray) else image
    # Visualizers are named singletons in MMEngine: a fresh name per call avoids "already exists".
    visualizer = DetLocalVisualizer(name=f'ovdet_draw_{id(result)}_{os.getpid()}')
    visualizer.dataset_meta = {'classes': tuple(classes), 'palette': 'random'}
    visualizer.add_datasample('detections', mmcv.bgr2rgb(bgr), result, draw_gt=False, show=False,
                              out_file=os.fspath(out_file), pred_score_thr=score_thr)
    return visualizer.get_image()
