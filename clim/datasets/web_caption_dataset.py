"""Streaming image-caption data from webdataset tar shards (CC3M / CC12M scale).

Shard layout (webdataset convention): consecutive tar members sharing a key, e.g.
``000123.jpg`` + ``000123.json`` (``{"caption": str}`` or ``{"captions": [str, ...]}``) or
``000123.txt`` (the caption). Shards are read with the standard library's ``tarfile``, so any
tool that writes webdataset shards (``img2dataset``, ``webdataset.TarWriter``) works.

Epochs have a fixed size (``num_samples``, split evenly over ranks and workers) so every rank
takes the same number of steps, as DDP requires. The shard order is a function of (seed, epoch)
and each sample's caption choice / crop of (seed, epoch, pass, shard, position): set the epoch
with :class:`~clim.datasets.DatasetEpochHook` and ``persistent_workers=False``.

Unreadable images and samples without a caption are skipped (not yielded) with a warning naming
``shard:key``; the next yielded sample reports them (``skipped_images`` / ``dropped_no_caption``
metainfo) so the data preprocessor can count them in the training log.
"""
from __future__ import annotations

import glob
import io
import json
import logging
import os.path as osp
import tarfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from mmengine.dataset import Compose
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement
from torch.utils.data import IterableDataset, get_worker_info

from mmdet.registry import DATASETS

from .errors import UnreadableImageError, check_paths, missing_path_error
from .transforms import build_pipeline, open_rgb

__all__ = ['WebCaptionDataset', 'expand_shards', 'iter_shard_captions', 'iter_tar_samples']

IMAGE_EXTS = ('jpg', 'jpeg', 'png', 'webp', 'bmp')


def _braceexpand(pattern: str) -> list[str]:
    try:
        from braceexpand import braceexpand
    except ImportError:  # webdataset depends on braceexpand; plain names work without it
        return [pattern]
    return list(braceexpand(pattern))


def expand_shards(shards: str | Sequence[str], data_root: str = '') -> list[str]:
    """Expand brace patterns (``cc3m-{00000..00331}.tar``) and globs into a list of paths."""
    patterns = [shards] if isinstance(shards, str) else list(shards)
    out: list[str] = []
    for pattern in patterns:
        for p in _braceexpand(pattern):
            p = osp.join(data_root, p) if data_root and not osp.isabs(p) else p
            out.extend(sorted(glob.glob(p)) if any(c in p for c in '*?[') else [p])
    return out


def iter_tar_samples(path: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield ``(key, {extension: bytes})`` for each group of consecutive members sharing a key.

    Raises ``tarfile.TarError`` / ``OSError`` on a corrupt shard (after yielding what was readable).
    """
    key, files = None, {}
    with tarfile.open(path, mode='r|*') as tf:
        for member in tf:
            if not member.isfile():
                continue
            dirname, base = osp.split(member.name)
            if '.' not in base or base.startswith('.'):
                continue
            stem, ext = base.split('.', 1)
            k = osp.join(dirname, stem)
            f = tf.extractfile(member)
            data = f.read() if f is not None else b''
            if k != key:
                if key is not None:
                    yield key, files
                key, files = k, {}
            files[ext.lower()] = data
    if key is not None:
        yield key, files


def _captions(files: dict[str, bytes]) -> list[str]:
    caps: list[str] = []
    if 'json' in files:
        try:
            meta = json.loads(files['json'].decode('utf-8'))
        except (UnicodeDecodeError, json.JSONDecodeError):
            meta = None
        if isinstance(meta, dict):
            c = meta.get('captions', meta.get('caption'))
            if isinstance(c, str):
                caps = [c]
            elif isinstance(c, list):
                caps = [x for x in c if isinstance(x, str)]
    if not caps and 'txt' in files:
        caps = [files['txt'].decode('utf-8', errors='replace')]
    return [c.strip() for c in caps if c.strip()]


def iter_shard_captions(path: str) -> Iterator[str]:
    """Every caption of a shard's samples, as the dataset reads them (stripped, blanks dropped)."""
    for _, files in iter_tar_samples(path):
        yield from _captions(files)


@DATASETS.register_module()
class WebCaptionDataset(IterableDataset):
    """Iterable caption dataset over webdataset tar shards, with fixed-size epochs.

    Args:
        shards: shard path pattern(s) (brace expansion and globs), relative to ``data_root``.
        num_samples: samples per epoch over all ranks (e.g. 2_905_954 for the CC3M train split
            as downloaded here); each rank yields ``num_samples // world_size``.
        data_root: root prepended to relative shard paths.
        pipeline: the caption pipeline (``LoadCaptionImage`` is a no-op here: images arrive decoded).
        seed: seeds shard order, caption choice and crop.
        shuffle_shards: shuffle the shard order each epoch.
        max_consecutive_failures: unreadable samples tolerated in a row before raising.

    Yields the same items as :class:`~clim.datasets.CaptionDataset`.
    """

    def __init__(self, shards: str | Sequence[str], num_samples: int, data_root: str = '',
                 pipeline: Sequence[dict | Any] = (), seed: int = 0, shuffle_shards: bool = True,
                 max_consecutive_failures: int = 64, test_mode: bool = False) -> None:
        super().__init__()
        self.shards = expand_shards(shards, data_root)
        if not self.shards:
            raise missing_path_error('webdataset shards', str(shards), 'shards')
        check_paths(type(self).__name__, [('webdataset shard', p, 'shards', False) for p in self.shards])
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.shuffle_shards = shuffle_shards
        self.max_consecutive_failures = int(max_consecutive_failures)
        self.test_mode = test_mode
        self.pipeline = Compose(build_pipeline(pipeline))
        self._epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)

    def __len__(self) -> int:
        _, world = get_dist_info()
        return self.num_samples // world

    def _worker_plan(self) -> tuple[list[int], int]:
        """(shard indices of this worker in this epoch's order, samples it must yield)."""
        rank, world = get_dist_info()
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        per_rank = self.num_samples // world
        quota = per_rank // nw + (1 if wid < per_rank % nw else 0)
        order = np.arange(len(self.shards))
        if self.shuffle_shards:
            order = np.random.default_rng([self.seed, self._epoch]).permutation(len(self.shards))
        gid, total = rank * nw + wid, world * nw
        mine = [int(i) for i in order[gid::total]]
        if not mine:
            # Fewer shards than readers: share shards (samples repeat across readers this epoch).
            mine = [int(order[gid % len(order)])]
        return mine, quota

    def __iter__(self) -> Iterator[Any]:
        mine, quota = self._worker_plan()
        emitted, skipped, no_caption, failures, passes = 0, [], 0, 0, 0
        while emitted < quota:
            emitted_before = emitted
            for shard_idx in mine:
                shard = self.shards[shard_idx]
                pos = -1
                try:
                    for pos, (key, files) in enumerate(iter_tar_samples(shard)):
                        name = f'{shard}:{key}'
                        caps = _captions(files)
                        ext = next((e for e in IMAGE_EXTS if e in files), None)
                        if not caps:
                            no_caption += 1
                            print_log(f'skipping {name}: no caption', logger='current', level=logging.WARNING)
                            continue
                        rng = np.random.default_rng([self.seed, self._epoch, passes, shard_idx, pos])
                        try:
                            if ext is None:
                                raise UnreadableImageError(name, 'no image member')
                            img = open_rgb(io.BytesIO(files[ext]), name=f'{name}.{ext}')
                        except UnreadableImageError as e:
                            print_log(f'skipping unreadable image {e.path} ({e.reason})', logger='current',
                                      level=logging.WARNING)
                            skipped.append(e.path)
                            failures += 1
                            if failures > self.max_consecutive_failures:
                                raise RuntimeError(f'{failures} consecutive unreadable images in {shard} '
                                                   f'(last: {e.path}); see data/README.md') from None
                            continue
                        failures = 0
                        caption = caps[0] if self.test_mode else caps[int(rng.integers(len(caps)))]
                        results = dict(img=img, img_path=f'{name}.{ext}', img_id=key, caption=caption,
                                       rng=rng, ori_shape=(img.height, img.width), sample_idx=pos)
                        data = self.pipeline(results)
                        _attach(data, skipped, no_caption)
                        skipped, no_caption = [], 0
                        yield data
                        emitted += 1
                        if emitted >= quota:
                            return
                except (tarfile.TarError, OSError, EOFError) as e:
                    print_log(f'skipping the rest of corrupt shard {shard} after sample {pos} '
                              f'({type(e).__name__}: {e})', logger='current', level=logging.WARNING)
                    skipped.append(f'{shard} (rest of shard)')
            passes += 1
            if emitted == emitted_before:
                raise RuntimeError(f'a full pass over shards {[self.shards[i] for i in mine][:3]} yielded no '
                                   f'usable sample; see data/README.md')


def _attach(data: Any, skipped: list[str], no_caption: int) -> None:
    meta = dict(skipped_images=list(skipped), dropped_no_caption=int(no_caption))
    if isinstance(data, dict) and isinstance(data.get('data_samples'), BaseDataElement):
        data['data_samples'].set_metainfo(meta)
    elif isinstance(data, dict):
        data.update(meta)
