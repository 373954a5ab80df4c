"""A text-embedding box head whose class weights come from a category-info json (OV-LVIS)."""
from __future__ import annotations

import json
import os

from mmdet.registry import MODELS

from ...datasets.ov_lvis import LVISFormatError, class_weights_from_category_info
from .text_bbox_head import TextEmbeddingBBoxHead

__all__ = ['CategoryInfoBBoxHead', 'load_category_info_weights']


def load_category_info_weights(path: str | os.PathLike) -> list[float]:
    """Class weights (1 base, 0 otherwise, category id order) from a category-info json: a list of
    ``{id, name, image_count, ...}`` in which never-trained (rare) categories have ``image_count`` 0,
    as ``tools/prepare_ov_lvis.py`` writes it (and the reference's ``*_cat_norare_info.json``)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'category-info file not found: {path} (written by tools/prepare_ov_lvis.py, '
                                'see data/README.md)')
    try:
        with open(path, encoding='utf-8') as f:
            info = json.load(f)
    except json.JSONDecodeError as e:
        raise LVISFormatError(f'{path} is not valid JSON: {e.msg} at line {e.lineno}') from None
    return class_weights_from_category_info(info, what=path)


@MODELS.register_module()
class CategoryInfoBBoxHead(TextEmbeddingBBoxHead):
    """:class:`TextEmbeddingBBoxHead` with ``class_weights`` read from ``category_info`` (a json, see
    :func:`load_category_info_weights`): 1203 weights do not belong in a config. The file must list
    ``num_classes`` categories, in the order of the class embeddings (category id order).

    Shapes: as :class:`TextEmbeddingBBoxHead`.
    """

    def __init__(self, category_info: str | os.PathLike, num_classes: int, **kwargs) -> None:
        if 'class_weights' in kwargs and kwargs.pop('class_weights') is not None:
            raise ValueError('give either category_info or class_weights, not both')
        weights = load_category_info_weights(category_info)
        if len(weights) != num_classes:
            raise ValueError(f'{os.fspath(category_info)} lists {len(weights)} categories, num_classes is '
                             f'{num_classes}')
        super().__init__(num_classes=num_classes, class_weights=weights, **kwargs)
