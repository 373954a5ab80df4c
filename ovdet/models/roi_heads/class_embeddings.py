"""Reading class text-embedding files (the open-vocabulary classifier's "weights").

A class-embedding file is a ``.npy`` array of shape (C, D), one L2-normalized CLIP text embedding
per class name, in the order of the dataset's classes, optionally followed by one background row
(``tools/gen_text_embeddings.py --background``). The vocabulary of a detector is this file: a
different class list means a different file, never a retraining.
"""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ['ClassEmbeddingError', 'load_class_embeddings']


class ClassEmbeddingError(ValueError):
    """A class-embedding file is missing, malformed, or does not match the detector's classes."""


def load_class_embeddings(source: str | os.PathLike | np.ndarray | torch.Tensor,
                          num_classes: int | None = None,
                          background_row: bool = False) -> torch.Tensor:
    """Load class embeddings and check them against the number of classes.

    Args:
        source: path of a ``.npy`` file (C, D) or (C + 1, D), or the array itself.
        num_classes: the detector's (= the dataset's) number of classes; ``None`` skips the check.
        background_row: the file ends with a background row, which is dropped (F-ViT learns its own
            background embedding).

    Returns:
        (C, D) float32 tensor, L2-normalized per row.

    Raises:
        ClassEmbeddingError: file not found, not 2-D, non-finite, or a row count that does not match
            ``num_classes`` (the message names the file and both counts).
    """
    what = osp.abspath(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else '<array>'
    if isinstance(source, (str, os.PathLike)):
        if not osp.isfile(source):
            raise ClassEmbeddingError(
                f'class-embedding file not found: {what}. Generate it with tools/gen_text_embeddings.py '
                f'from the dataset\'s class names and the detector\'s CLIP.')
        array = np.load(source, allow_pickle=False)
    else:
        array = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else np.asarray(source)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ClassEmbeddingError(f'class embeddings {what}: expected a (classes, dim) array, '
                                  f'got shape {tuple(array.shape)}')
    emb = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if not torch.isfinite(emb).all():
        raise ClassEmbeddingError(f'class embeddings {what}: non-finite values')
    rows = emb.shape[0]
    if background_row:
        emb = emb[:-1]
    if num_classes is not None and emb.shape[0] != num_classes:
        hint = ''
        if not background_row and rows == num_classes + 1:
            hint = ' (if its last row is a background embedding, set background_row=True)'
        elif background_row:
            hint = f' ({rows} rows minus the background row)'
        raise ClassEmbeddingError(
            f'class embeddings {what} hold {emb.shape[0]} classes{hint}, but the detector / dataset has '
            f'{num_classes} classes. Regenerate the file from the dataset\'s class names '
            f'(tools/gen_text_embeddings.py) or fix num_classes.')
    # Files are written normalized; renormalizing guards against hand-made or averaged files.
    return F.normalize(emb, dim=-1)
