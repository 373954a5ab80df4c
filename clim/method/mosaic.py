"""Mosaic batches: how a batch is split into n x n mosaics, how tiles are laid out, and their boxes.

The split is a pure function of the batch size, so every rank (and a reference computation in a
test) can reproduce it. Order is the contract that makes CLIM's loss pair features with captions:
image ``j`` of a mosaic lands in tile ``j`` (row-major) and gets box ``j``, and the mosaics are
listed in batch order, so the concatenated region features follow the original batch order.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ['MosaicGroup', 'MosaicPlan', 'plan_mosaics', 'build_mosaics', 'mosaic_boxes']


@dataclass(frozen=True)
class MosaicGroup:
    """``count`` mosaics of ``n x n`` tiles built from batch images ``[start, start + count * n * n)``."""

    n: int
    count: int
    start: int

    @property
    def num_images(self) -> int:
        return self.count * self.n * self.n

    @property
    def stop(self) -> int:
        return self.start + self.num_images


@dataclass(frozen=True)
class MosaicPlan:
    """How one batch is split: mosaic groups in batch order, then single images ``[single_start, B)``."""

    batch_size: int
    groups: tuple[MosaicGroup, ...]
    single_start: int

    @property
    def num_singles(self) -> int:
        return self.batch_size - self.single_start


def plan_mosaics(batch_size: int, mosaic_choices: Sequence[int] = (2, 3, 4)) -> MosaicPlan:
    """Split a batch of ``batch_size`` images into mosaics as the CLIM spec prescribes.

    With ``per_group = sum(n * n)`` and ``g = batch_size // per_group``, the first ``g * n0^2``
    images form ``g`` mosaics of the first size, the next ``g * n1^2`` the second size, and so on;
    the ``batch_size % per_group`` leftovers stay single images.

    Raises:
        ValueError: if the batch cannot fill one group (``batch_size < sum(n * n)``) or a choice is < 1.
    """
    choices = [int(n) for n in mosaic_choices]
    if not choices or any(n < 1 for n in choices):
        raise ValueError(f'mosaic_choices must be positive grid sizes, got {list(mosaic_choices)}')
    per_group = sum(n * n for n in choices)
    if batch_size < per_group:
        raise ValueError(
            f'CLIM needs at least sum(n*n for n in mosaic_choices) = {per_group} images per rank to build '
            f'one mosaic of each size {choices}, but the batch has {batch_size}. Raise '
            f'train_dataloader.batch_size (per GPU) to >= {per_group} or use smaller mosaic_choices.')
    g = batch_size // per_group
    groups, start = [], 0
    for n in choices:
        groups.append(MosaicGroup(n=n, count=g, start=start))
        start += g * n * n
    return MosaicPlan(batch_size=batch_size, groups=tuple(groups), single_start=start)


def build_mosaics(images: torch.Tensor, n: int, out_size: int | None = None) -> torch.Tensor:
    """Tile images into ``n x n`` mosaics, row-major, and optionally resize them.

    Args:
        images: (k * n * n, C, S, S) images; image ``m * n * n + j`` goes to mosaic ``m``,
            row ``j // n``, column ``j % n``.
        n: grid size.
        out_size: side of the output (bicubic, align_corners=False); None keeps ``n * S``.

    Returns:
        (k, C, out_size, out_size) mosaics (``n * S`` when out_size is None).
    """
    total, c, h, w = images.shape
    if total % (n * n):
        raise ValueError(f'{total} images cannot be tiled into {n}x{n} mosaics')
    k = total // (n * n)
    # (k, row, col, C, h, w) -> (k, C, row, h, col, w): rows stack along height, columns along width.
    mosaics = images.reshape(k, n, n, c, h, w).permute(0, 3, 1, 4, 2, 5).reshape(k, c, n * h, n * w)
    if out_size is not None and (n * h != out_size or n * w != out_size):
        mosaics = F.interpolate(mosaics, size=(out_size, out_size), mode='bicubic', align_corners=False)
    return mosaics


def mosaic_boxes(n: int, num_mosaics: int = 1, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Normalized pseudo boxes of ``num_mosaics`` ``n x n`` mosaics.

    Returns:
        ``num_mosaics`` tensors of shape (n * n, 4), ``(x1, y1, x2, y2)`` in [0, 1]; box ``j`` is tile
        (row ``j // n``, column ``j % n``): ``(col / n, row / n, (col + 1) / n, (row + 1) / n)``.
    """
    idx = torch.arange(n * n, device=device)
    row, col = (idx // n).to(dtype), (idx % n).to(dtype)
    boxes = torch.stack([col, row, col + 1, row + 1], dim=1) / n
    return [boxes.clone() for _ in range(num_mosaics)]
