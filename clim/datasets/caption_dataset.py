"""Image-caption datasets in the CLIM json form (COCO captions, CC3M) for contrastive training.

Annotation format (what ``tools/prepare_coco_captions.py`` writes; CC3M uses the same form)::

    {"images": [{"id": 1, "file_name": "train2017/000000000009.jpg", "captions": ["...", ...]}, ...]}

COCO's own ``captions_*.json`` (``images`` + ``annotations`` with ``image_id`` / ``caption``) is
accepted as well and grouped per image at load time.

Rules, so that runs are reproducible and nothing fails silently:

* **Caption choice**: one caption per image per epoch, drawn from a generator keyed by
  ``(seed, epoch, index)``; the crop of the training pipeline draws from the same generator.
  A sample is thus a pure function of (seed, epoch, index), independent of worker count, of
  ``persistent_workers`` and of resuming. The epoch reaches the workers through the index:
  use :class:`~clim.datasets.CaptionEpochSampler` (it yields ``(epoch, index)``); a plain integer
  index uses the epoch last given to :meth:`CaptionDataset.set_epoch`.
* **Empty captions**: blank caption strings are removed; images left with no caption are
  dropped at load time and their number is logged.
* **Unreadable images** (missing, truncated, undecodable): the sample is skipped: a warning
  names the file, and the next readable image in dataset order takes its place so the batch
  size (which the mosaic split and the cross-rank gather rely on) stays fixed. The skipped paths
  travel in the sample's ``skipped_images`` metainfo; the data preprocessor logs them and keeps
  the count in the ``train/skipped_images`` log scalar. More than ``max_consecutive_failures``
  unreadable images in a row raise an error (a broken image root, not a few bad files).
* **Missing annotation file or image folder**: ``FileNotFoundError`` at construction (before
  training starts) naming the path and pointing at ``data/README.md``.
* **Malformed json**: :class:`DataPreparationError` naming the file and what is wrong.
"""
from __future__ import annotations

import logging
import os.path as osp
from collections.abc import Sequence
from typing import Any

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from mmdet.registry import DATASETS

from .errors import DataPreparationError, UnreadableImageError, check_paths, read_images_json
from .transforms import build_pipeline

__all__ = ['CaptionDataset', 'load_caption_json', 'sample_rng']


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of one sample in one epoch (caption choice first, then augmentation)."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def _fail(path: str, problem: str) -> DataPreparationError:
    return DataPreparationError(f'malformed caption annotation file {path}: {problem}. Expected '
                                f'{{"images": [{{"id", "file_name", "captions": [str, ...]}}, ...]}} '
                                f'(see data/README.md).')


def load_caption_json(path: str) -> tuple[list[dict[str, Any]], int]:
    """Read a caption json into ``[{'img_id', 'file_name', 'captions'}]``.

    Returns:
        ``(entries, num_dropped)``: images with at least one non-blank caption, and how many images
        had none (dropped).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataPreparationError: not JSON, or not one of the two accepted layouts.
    """
    data = read_images_json(path, _fail)
    images = data['images']
    per_image: dict[Any, list[str]] | None = None
    anns = data.get('annotations')
    if isinstance(anns, list) and not any(isinstance(im, dict) and 'captions' in im for im in images):
        # COCO's captions_*.json: captions live in "annotations", one per (image_id, caption).
        per_image = {}
        for k, a in enumerate(anns):
            if not isinstance(a, dict) or 'image_id' not in a or not isinstance(a.get('caption'), str):
                raise _fail(path, f'annotations[{k}] needs "image_id" and a string "caption"')
            per_image.setdefault(a['image_id'], []).append(a['caption'])
    entries, dropped = [], 0
    for k, im in enumerate(images):
        if not isinstance(im, dict) or not isinstance(im.get('file_name'), str):
            raise _fail(path, f'images[{k}] needs a string "file_name"')
        caps = per_image.get(im.get('id'), []) if per_image is not None else im.get('captions')
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            raise _fail(path, f'images[{k}] ({im["file_name"]}): "captions" must be a list of strings')
        caps = [c.strip() for c in caps if c.strip()]
        if not caps:
            dropped += 1
            continue
        entries.append(dict(img_id=im.get('id', k), file_name=im['file_name'], captions=caps))
    return entries, dropped


@DATASETS.register_module()
class CaptionDataset(BaseDataset):
    """Images with one randomly chosen caption each, for CLIP-style contrastive training.

    Args:
        ann_file: caption json (CLIM form or COCO captions), relative to ``data_root``.
        data_root: dataset root.
        img_prefix: image folder relative to ``data_root``; ``file_name`` is relative to it.
        pipeline: transforms; the default training one is ``LoadCaptionImage`` ->
            ``CaptionRandomResizedCrop`` -> ``TokenizeCaption`` -> ``PackCaptionInputs``.
        seed: seeds the per-sample generator (caption choice and crop).
        max_consecutive_failures: unreadable images tolerated in a row before raising.
        test_mode: pick the first caption and keep the default epoch.

    Each item, after ``PackCaptionInputs``: ``{'inputs': uint8 (3, S, S), 'data_samples':
    BaseDataElement(text=LongTensor (L,), metainfo: img_id, img_path, caption, skipped_images)}``.
    """

    def __init__(self, ann_file: str, data_root: str = '', img_prefix: str = '',
                 pipeline: Sequence[dict | Any] = (), seed: int = 0, max_consecutive_failures: int = 64,
                 test_mode: bool = False, lazy_init: bool = False, serialize_data: bool = True,
                 indices: int | Sequence[int] | None = None) -> None:
        self.seed = int(seed)
        self.max_consecutive_failures = int(max_consecutive_failures)
        self.num_dropped_empty = 0
        self._epoch = 0
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=dict(img_path=img_prefix),
                         pipeline=build_pipeline(pipeline), test_mode=test_mode, lazy_init=lazy_init,
                         serialize_data=serialize_data, indices=indices)

    # ------------------------------------------------------------------------------------------
    def load_data_list(self) -> list[dict]:
        img_root = self.data_prefix.get('img_path', '')
        check_paths(type(self).__name__, [('caption annotation file', self.ann_file, 'ann_file', False)]
                    + ([('image folder', img_root, 'img_prefix', True)] if img_root else []))
        entries, dropped = load_caption_json(self.ann_file)
        self.num_dropped_empty = dropped
        if dropped:
            print_log(f'{self.ann_file}: dropped {dropped} of {dropped + len(entries)} images that have no '
                      f'non-empty caption', logger='current', level=logging.WARNING)
        if not entries:
            raise DataPreparationError(f'{self.ann_file} holds no image with a caption')
        return [dict(img_id=e['img_id'], img_path=osp.join(img_root, e['file_name']), captions=e['captions'])
                for e in entries]

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for plain integer indices (the sampler passes it explicitly otherwise)."""
        self._epoch = int(epoch)

    # ------------------------------------------------------------------------------------------
    def _prepare(self, index: int, epoch: int) -> Any:
        info = self.get_data_info(index)
        rng = sample_rng(self.seed, epoch, index)
        caps = info['captions']
        info['caption'] = caps[0] if self.test_mode else caps[int(rng.integers(len(caps)))]
        info['rng'] = rng
        info['sample_idx'] = index
        return self.pipeline(info)

    def __getitem__(self, idx: int | tuple[int, int]) -> Any:
        """Return sample ``idx`` (an int, or ``(epoch, index)`` from :class:`CaptionEpochSampler`)."""
        if not self._fully_initialized:
            self.full_init()
        if isinstance(idx, (tuple, list)):
            epoch, index = int(idx[0]), int(idx[1])
        else:
            epoch, index = self._epoch, int(idx)
        n = len(self)
        skipped: list[str] = []
        for attempt in range(min(self.max_consecutive_failures + 1, n)):
            j = (index + attempt) % n
            try:
                data = self._prepare(j, epoch)
            except UnreadableImageError as e:
                # Skipping (not a silent random refetch): the file is named, the substitute is the
                # next image in order, and the count reaches the training log via the sample.
                print_log(f'skipping unreadable image {e.path} ({e.reason})', logger='current',
                          level=logging.WARNING)
                skipped.append(e.path)
                continue
            _attach_skipped(data, skipped)
            return data
        raise RuntimeError(f'{len(skipped)} consecutive unreadable images starting at index {index} '
                           f'(first: {skipped[:3]}); check the image folder '
                           f'{self.data_prefix.get("img_path")} '
                           f'(see data/README.md)')


def _attach_skipped(data: Any, skipped: list[str]) -> None:
    if isinstance(data, dict):
        sample = data.get('data_samples')
        if isinstance(sample, BaseDataElement):
            sample.set_metainfo(dict(skipped_images=list(skipped)))
        else:
            data['skipped_images'] = list(skipped)
