"""Precomputed caption features of a frozen text tower: the file format and the pipeline step serving them.

``tools/precompute_caption_features.py`` encodes every caption of a caption json / webdataset once and
writes one file (``torch.save``, written atomically)::

    {'format': 'clim-caption-features/1', 'key': 'CLIPModel/ctx77/trimmed/sha256:...',
     'captions': [str, ...] (unique), 'features': (N, D) float32 (or float16 with --fp16), 'meta': {...}}

``key`` names the text tower that computed them (see :class:`clim.method.text_key.TextFeatureKey`);
rows are found by the caption text itself, so a changed caption is never served another's feature,
and the model refuses a file whose key is not its own text tower's (other weights, tokenizer length or
text forward).

In the caption pipeline, :class:`AddCaptionFeatures` goes after ``PackCaptionInputs`` and attaches the
feature of the sample's chosen caption; the model then skips the text forward.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from collections.abc import Sequence
from typing import Any

import torch
from mmengine.structures import BaseDataElement

from mmdet.registry import TRANSFORMS

from ..engine.checkpoint_safety import atomic_torch_save
from .errors import DataPreparationError

__all__ = ['CAPTION_FEATURES_FORMAT', 'AddCaptionFeatures', 'CaptionFeatureStore', 'save_caption_features']

CAPTION_FEATURES_FORMAT = 'clim-caption-features/1'


def save_caption_features(path: str | os.PathLike, captions: Sequence[str], features: torch.Tensor, key: str,
                          meta: dict[str, Any] | None = None) -> None:
    """Write a caption-feature file atomically.

    Args:
        captions: N unique caption strings; row i of ``features`` is caption i's feature.
        features: (N, D) float32 or float16.
        key: the text tower's feature key.
    """
    captions = list(captions)
    if features.ndim != 2 or features.shape[0] != len(captions):
        raise ValueError(f'features must be (N={len(captions)}, D), got {tuple(features.shape)}')
    if len(set(captions)) != len(captions):
        raise ValueError('captions must be unique')
    # Plain JSON types only: the file is read back with torch.load(weights_only=True).
    meta = json.loads(json.dumps(dict(meta or {}), default=str))
    atomic_torch_save(dict(format=CAPTION_FEATURES_FORMAT, key=str(key), captions=captions,
                           features=features.detach().cpu().contiguous(), meta=meta), path)


class CaptionFeatureStore:
    """A loaded caption-feature file: ``store[caption]`` -> (D,) feature (the stored dtype).

    Args:
        path: a file written by :func:`save_caption_features` (memory-mapped, so dataloader workers
            share the pages).

    Attributes:
        key: the text-tower key the features were computed with.
        path / dtype / meta: the file, the stored dtype, its metadata.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        if not osp.isfile(self.path):
            raise FileNotFoundError(f'caption feature file {self.path} not found: write it with '
                                    f'tools/precompute_caption_features.py CONFIG --out {self.path}')
        try:
            data = torch.load(self.path, map_location='cpu', weights_only=True, mmap=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
            raise DataPreparationError(f'caption feature file {self.path} is unreadable '
                                       f'({type(e).__name__}: {e})') from e
        if not isinstance(data, dict) or data.get('format') != CAPTION_FEATURES_FORMAT:
            raise DataPreparationError(f'{self.path} is not a caption feature file (format '
                                       f'{CAPTION_FEATURES_FORMAT!r} expected)')
        self.key: str = data['key']
        self.features: torch.Tensor = data['features']
        self.meta: dict = data.get('meta', {})
        self.dtype = self.features.dtype
        self._rows = {c: i for i, c in enumerate(data['captions'])}

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, caption: str) -> bool:
        return caption in self._rows

    def __getitem__(self, caption: str) -> torch.Tensor:
        row = self._rows.get(caption)
        if row is None:
            raise KeyError(f'caption {caption[:80]!r} is not in {self.path}: the captions changed since it was '
                           f'written; rerun tools/precompute_caption_features.py')
        return self.features[row].clone()


@TRANSFORMS.register_module()
class AddCaptionFeatures:
    """Attach the precomputed feature of the packed sample's caption (after ``PackCaptionInputs``).

    Args:
        path: the caption-feature file.

    Input: ``{'inputs', 'data_samples': BaseDataElement}`` with ``caption`` in its metainfo. Output: the
    same, the sample gaining ``text_features`` (D,) (the file's dtype) and the metainfo
    ``text_features_key`` / ``text_features_file``, which the model checks against its own text tower.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._store: CaptionFeatureStore | None = None  # opened lazily: once per dataloader worker

    @property
    def store(self) -> CaptionFeatureStore:
        if self._store is None:
            self._store = CaptionFeatureStore(self.path)
        return self._store

    def __call__(self, results: dict) -> dict:
        sample = results.get('data_samples')
        if not isinstance(sample, BaseDataElement) or 'caption' not in sample.metainfo:
            raise ValueError('AddCaptionFeatures goes after PackCaptionInputs, with "caption" in its meta_keys')
        sample.text_features = self.store[sample.metainfo['caption']]
        sample.set_metainfo(dict(text_features_key=self.store.key, text_features_file=self.store.path))
        return results

    def __getstate__(self) -> dict:
        # Workers reopen the (memory-mapped) file instead of pickling the loaded table.
        return dict(self.__dict__, _store=None)
