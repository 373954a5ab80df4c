"""BARON-KD's two training sources: detection images and KD images, drawn 2 + 2 per GPU from one
aspect-ratio group. Register with ``custom_imports = dict(imports=['ovdet.datasets.baron_kd_sources'])``."""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from mmengine.dataset import ConcatDataset
from mmengine.dist import get_dist_info
from mmdet.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import Sampler

from .ov_coco import OVCocoDataset

__all__ = ['BaseAnnotationsCocoDataset', 'BranchConcatDataset', 'TwoSourceAspectRatioBatchSampler']


@DATASETS.register_module()
class BaseAnnotationsCocoDataset(OVCocoDataset):
    """An :class:`OVCocoDataset` over every image of a COCO json (no image filtering by default) that keeps
    only the boxes of ``keep_classes``: BARON's KD source, all train images with their base boxes (from the
    official ``instances_train2017.json``, novel boxes dropped).

    Args:
        keep_classes: class names whose boxes stay (the base classes).
    """

    def __init__(self, *args, keep_classes: Sequence[str], **kwargs) -> None:
        self.keep_classes = frozenset(keep_classes)
        super().__init__(*args, **kwargs)

    def parse_data_info(self, raw_data_info: dict) -> dict:
        info = super().parse_data_info(raw_data_info)
        classes = self._metainfo['classes']
        info['instances'] = [i for i in info['instances'] if classes[i['bbox_label']] in self.keep_classes]
        return info


@DATASETS.register_module()
class BranchConcatDataset(ConcatDataset):
    """``ConcatDataset([det, kd])`` whose samples carry ``branch`` = the name of their source in the
    packed data sample's metainfo (read by :class:`~ovdet.models.baron.BranchDataPreprocessor`).

    Args:
        datasets: the source dataset configs, in ``branches`` order.
        branches: their names (``('det', 'kd')``).
    """

    def __init__(self, datasets: Sequence, branches: Sequence[str] = ('det', 'kd'), **kwargs) -> None:
        if len(datasets) != len(branches):
            raise ValueError(f'{len(datasets)} datasets for {len(branches)} branches {tuple(branches)}')
        self.branches = tuple(branches)
        # the KD source's json may tag splits differently; the det source's metainfo is the wrapper's
        kwargs.setdefault('ignore_keys', ['palette', 'category_splits', 'base_classes', 'novel_classes'])
        super().__init__(datasets, **kwargs)

    def source_range(self, branch: str) -> range:
        """Global indices of one source."""
        i = self.branches.index(branch)
        start = self.cumulative_sizes[i - 1] if i else 0
        return range(start, self.cumulative_sizes[i])

    def __getitem__(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        dataset_idx, sample_idx = self._get_ori_dataset_idx(idx)
        out = self.datasets[dataset_idx][sample_idx]
        out['data_samples'].set_metainfo(dict(branch=self.branches[dataset_idx]))
        return out


@DATA_SAMPLERS.register_module()
class TwoSourceAspectRatioBatchSampler(Sampler):
    """Batches of ``per_source[0]`` images of the first source + ``per_source[1]`` of the second, all
    of one aspect group (w < h or w >= h), for a :class:`BranchConcatDataset`.

    Each source is shuffled on its own (seed + epoch, plus the source index), split across ranks, and
    streamed; the second source cycles when it runs out. An epoch is one pass over this rank's share of
    the first source.

    Args:
        sampler: the dataloader's sampler (its ``dataset``, ``seed`` and ``epoch`` are used).
        batch_size: must equal ``sum(per_source)``.
        per_source: images per source per batch ((2, 2) in the reference).
    """

    def __init__(self, sampler: Sampler, batch_size: int, per_source: Sequence[int] = (2, 2),
                 drop_last: bool = True) -> None:
        self.sampler = sampler
        self.dataset = sampler.dataset
        if not isinstance(self.dataset, BranchConcatDataset) or len(self.dataset.branches) != 2:
            raise TypeError('TwoSourceAspectRatioBatchSampler needs a two-source BranchConcatDataset')
        self.per_source = tuple(int(n) for n in per_source)
        if batch_size != sum(self.per_source):
            raise ValueError(f'batch_size {batch_size} != per_source {self.per_source} summed')
        self.rank, self.world_size = get_dist_info()
        self.seed = int(getattr(sampler, 'seed', 0) or 0)

    def _group(self, idx: int) -> int:
        info = self.dataset.get_data_info(idx)
        return 0 if info['width'] < info['height'] else 1

    def _stream(self, source: int, epoch: int, cycle: bool) -> Iterator[int]:
        rng = self.dataset.source_range(self.dataset.branches[source])
        rounds = 0
        while True:
            g = torch.Generator().manual_seed(self.seed + epoch + 1000003 * source + 7919 * rounds)
            perm = torch.randperm(len(rng), generator=g)[self.rank::self.world_size].tolist()
            yield from (rng.start + i for i in perm)
            rounds += 1
            if not cycle:
                return

    def __iter__(self) -> Iterator[list[int]]:
        epoch = int(getattr(self.sampler, 'epoch', 0))
        first, second = self._stream(0, epoch, cycle=False), self._stream(1, epoch, cycle=True)
        n0, n1 = self.per_source
        buckets0: dict[int, list[int]] = {0: [], 1: []}
        buckets1: dict[int, list[int]] = {0: [], 1: []}
        for idx in first:
            grp = self._group(idx)
            buckets0[grp].append(idx)
            if len(buckets0[grp]) < n0:
                continue
            while len(buckets1[grp]) < n1:
                other = next(second)
                buckets1[self._group(other)].append(other)
            yield buckets0[grp][:n0] + buckets1[grp][:n1]
            buckets0[grp], buckets1[grp] = buckets0[grp][n0:], buckets1[grp][n1:]

    def __len__(self) -> int:
        return len(self.dataset.source_range(self.dataset.branches[0])) // self.world_size // self.per_source[0]
