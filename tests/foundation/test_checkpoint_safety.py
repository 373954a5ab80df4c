"""Checkpoints load safely under torch>=2.6 (allow-list, not blind unpickling) and save atomically."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch


class _Payload:
    """An arbitrary pickled object, as a tampered checkpoint would carry."""

    def __init__(self) -> None:
        self.command = 'echo pwned'


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError('simulated crash while writing')


def _mmengine_like_checkpoint() -> dict:
    from mmengine.logging import HistoryBuffer

    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    buf.update(1.25)
    return {
        'meta': {'epoch': 2, 'iter': 10, 'seed': 0, 'lr': np.float32(1e-3),
                 'mean': np.array([1.0, 2.0], dtype=np.float64)},
        'state_dict': {'w': torch.randn(3, 3)},
        'message_hub': {'log_scalars': {'train/loss': buf}, 'runtime_info': {'epoch': 2}},
    }


def test_allow_listed_types_load(tmp_path: Path) -> None:
    import clim  # noqa: F401  (HistoryBuffer pickles without its method registry from here on)
    from clim.engine import safe_torch_load

    path = tmp_path / 'epoch_2.pth'
    ckpt = _mmengine_like_checkpoint()
    torch.save(ckpt, path)
    with pytest.raises(pickle.UnpicklingError):  # torch's default refuses it: the bug this module fixes
        torch.load(path)
    loaded = safe_torch_load(path)
    torch.testing.assert_close(loaded['state_dict']['w'], ckpt['state_dict']['w'])
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == 1.25
    np.testing.assert_array_equal(loaded['meta']['mean'], [1.0, 2.0])


def test_tampered_checkpoint_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    import clim  # noqa: F401  (installs the loader into MMEngine)
    from mmengine.runner.checkpoint import CheckpointLoader

    from clim.engine import UnsafeCheckpointError, safe_torch_load

    path = tmp_path / 'tampered.pth'
    ckpt = _mmengine_like_checkpoint()
    ckpt['meta']['payload'] = _Payload()
    torch.save(ckpt, path)
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_torch_load(path)
    assert str(path) in str(err.value) and '_Payload' in str(err.value)
    # MMEngine's own loading path (used by load_from / --resume) goes through it too.
    with pytest.raises(UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')


def test_truncated_checkpoint_names_the_file(tmp_path: Path) -> None:
    from clim.engine import safe_torch_load

    path = tmp_path / 'epoch_1.pth'
    torch.save(_mmengine_like_checkpoint(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match='epoch_1.pth'):
        safe_torch_load(path)


def test_atomic_save_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    from clim.engine import atomic_torch_save, safe_torch_load

    path = tmp_path / 'latest.pth'
    atomic_torch_save({'x': torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match='simulated crash'):
        atomic_torch_save({'x': torch.zeros(2), 'bad': _Unpicklable()}, path)
    torch.testing.assert_close(safe_torch_load(path)['x'], torch.ones(2))
    assert os.listdir(tmp_path) == ['latest.pth']  # no temporary file left behind

