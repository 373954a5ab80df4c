"""Webdataset shards are split over ranks x workers: every sample read exactly once per epoch, in a
new order each epoch.

A split that let every reader see the same shards (or the same order every epoch) would train
CC3M-scale runs on 1/N of the data N times, silently. Ranks are simulated by ``get_dist_info`` (the
dataset asks MMEngine), workers both by ``get_worker_info`` and by a real two-worker DataLoader.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import clim.datasets.web_caption_dataset as wcd
from clim.datasets import WebCaptionDataset
from clim_test_utils import png_bytes, write_shard

SHARDS, PER_SHARD, WORLD, WORKERS = 8, 2, 2, 2
ALL_KEYS = {f's{s}_{j}' for s in range(SHARDS) for j in range(PER_SHARD)}


@pytest.fixture
def shards(tmp_path: Path) -> WebCaptionDataset:
    """8 shards x 2 samples, one epoch = every sample once; the bare dataset (no pipeline)."""
    for s in range(SHARDS):
        write_shard(tmp_path / f'shard-{s}.tar', [
            m for j in range(PER_SHARD)
            for m in ((f's{s}_{j}.png', png_bytes(10 * s + j, (8, 8))), (f's{s}_{j}.txt', b'a shape'))])
    return WebCaptionDataset(shards=f'shard-{{0..{SHARDS - 1}}}.tar', data_root=str(tmp_path),
                             num_samples=SHARDS * PER_SHARD)


def _as_rank(monkeypatch, rank: int) -> None:
    monkeypatch.setattr(wcd, 'get_dist_info', lambda: (rank, WORLD))


def _read(ds: WebCaptionDataset, monkeypatch, rank: int, worker: int, epoch: int) -> list[str]:
    _as_rank(monkeypatch, rank)
    monkeypatch.setattr(wcd, 'get_worker_info', lambda: SimpleNamespace(id=worker, num_workers=WORKERS))
    ds.set_epoch(epoch)
    return [item['img_id'] for item in ds]


def _epoch(ds, monkeypatch, epoch: int) -> dict[tuple[int, int], list[str]]:
    return {(r, w): _read(ds, monkeypatch, r, w, epoch) for r in range(WORLD) for w in range(WORKERS)}


def test_ranks_and_workers_read_disjoint_shards_covering_the_set(shards, monkeypatch) -> None:
    _as_rank(monkeypatch, 0)
    assert len(shards) == SHARDS * PER_SHARD // WORLD
    for epoch in (0, 1):
        readers = _epoch(shards, monkeypatch, epoch)
        seen = [k for keys in readers.values() for k in keys]
        assert all(len(keys) == SHARDS * PER_SHARD // (WORLD * WORKERS) for keys in readers.values())
        assert len(seen) == len(set(seen)), f'epoch {epoch}: a sample was read twice: {readers}'
        assert set(seen) == ALL_KEYS


def test_next_epoch_reads_another_order(shards, monkeypatch) -> None:
    first, second = _epoch(shards, monkeypatch, 0), _epoch(shards, monkeypatch, 1)
    assert first != second  # shards move between readers and/or within a reader's order
    assert sum(set(first[r]) != set(second[r]) for r in first) >= 2
    # ... and the same epoch again is the same stream (resumable, reproducible)
    assert _epoch(shards, monkeypatch, 1) == second


def test_dataloader_workers_split_a_rank_share(shards, monkeypatch) -> None:
    """Two real DataLoader workers of rank 1 together read that rank's share, once each."""
    expected = {k for w in range(WORKERS) for k in _read(shards, monkeypatch, 1, w, 3)}
    monkeypatch.undo()
    _as_rank(monkeypatch, 1)  # forked workers inherit the patched rank
    shards.set_epoch(3)
    ctx = 'fork' if 'fork' in torch.multiprocessing.get_all_start_methods() else None
    loader = torch.utils.data.DataLoader(shards, batch_size=None, num_workers=WORKERS, multiprocessing_context=ctx)
    got = [item['img_id'] for item in loader]
    assert len(got) == len(set(got)) == SHARDS * PER_SHARD // WORLD
    assert set(got) == expected
