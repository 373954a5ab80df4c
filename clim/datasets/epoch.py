"""Getting the epoch into dataset workers, so per-epoch caption choices survive any worker setup.

Workers hold copies of the dataset (for the whole run when ``persistent_workers=True``), so
setting an attribute on the main process's dataset does not reach them. Indices do: the
sampler runs in the main process and its indices are sent to the workers with every batch.
"""
from __future__ import annotations

from collections.abc import Iterator

from mmengine.dataset import DefaultSampler
from mmengine.hooks import Hook
from torch.utils.data import IterableDataset

from mmdet.registry import DATA_SAMPLERS, HOOKS

__all__ = ['CaptionEpochSampler', 'DatasetEpochHook']


@DATA_SAMPLERS.register_module()
class CaptionEpochSampler(DefaultSampler):
    """MMEngine's ``DefaultSampler`` (same order, same rank split) yielding ``(epoch, index)``.

    The epoch is the one ``DistSamplerSeedHook`` sets before each epoch (default hooks).
    :class:`~clim.datasets.CaptionDataset` accepts these pairs as indices.
    """

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch = self.epoch
        for idx in super().__iter__():
            yield epoch, int(idx)


@HOOKS.register_module()
class DatasetEpochHook(Hook):
    """Call ``train_dataloader.dataset.set_epoch(epoch)`` before each training epoch.

    Needed by :class:`~clim.datasets.WebCaptionDataset` (an IterableDataset has no sampler). Because
    the epoch travels in the dataset object, its workers must be re-created each epoch: the hook
    raises if the loader has ``persistent_workers=True`` with workers.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        if (isinstance(loader.dataset, IterableDataset) and loader.num_workers > 0
                and getattr(loader, 'persistent_workers', False)):
            raise ValueError(f'{type(loader.dataset).__name__} is an IterableDataset whose epoch reaches the '
                             'workers with the dataset object: set train_dataloader.persistent_workers=False')

    def before_train_epoch(self, runner) -> None:
        dataset = runner.train_dataloader.dataset
        if hasattr(dataset, 'set_epoch'):
            dataset.set_epoch(runner.epoch)
