"""Safe and atomic checkpoint I/O for MMEngine on torch >= 2.6.

torch 2.6 made ``torch.load`` default to ``weights_only=True``. MMEngine 0.10.7 still calls
plain ``torch.load`` on its own checkpoints, which hold a few non-tensor objects (the message
hub's ``HistoryBuffer`` with numpy arrays and scalars), so ``--resume`` fails. Instead of turning
safety off we allow-list exactly those types: any other pickled global is still refused, with an
error naming the file and the offending globals. ``HistoryBuffer`` also pickles its class-level
registry of statistics *methods* (through ``builtins.getattr``, which can reach anything and is
never allow-listed); that registry is rebuilt by code at import time, so our checkpoints leave it
out (:func:`_history_buffer_getstate`).

MMEngine also writes checkpoints with a plain ``open(path, 'wb')``: an interrupted save leaves a
truncated file that a later resume picks up. :func:`atomic_torch_save` writes a temporary file in
the same directory, fsyncs it and renames it over the target.
"""
from __future__ import annotations

import os
import os.path as osp
import pickle
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def _numpy_globals() -> list[Any]:
    """numpy objects a pickled array, dtype or scalar refers to (numpy 1.x and 2.x names)."""
    core = getattr(np, '_core', None) or np.core
    items: list[Any] = [np.ndarray, np.dtype, core.multiarray._reconstruct, core.multiarray.scalar]
    # numpy >= 1.25 pickles dtypes through their per-type classes.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in ('Float16DType', 'Float32DType', 'Float64DType', 'Int8DType', 'Int16DType',
                     'Int32DType', 'Int64DType', 'UInt8DType', 'BoolDType'):
            if hasattr(dtypes, name):
                items.append(getattr(dtypes, name))
    return items


def allowed_checkpoint_globals() -> list[Any]:
    """The exact non-tensor types that MMEngine checkpoints of this project contain."""
    from mmengine.logging.history_buffer import HistoryBuffer

    return [HistoryBuffer, *_numpy_globals()]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects outside the allow-list and was not loaded."""


def safe_torch_load(filename: str | os.PathLike, map_location: Any = None) -> Any:
    """``torch.load(weights_only=True)`` with this project's allow-list.

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafeCheckpointError: the file contains other pickled globals (names them).
        RuntimeError: the file is not a readable torch checkpoint (e.g. truncated).
    """
    filename = osp.expanduser(os.fspath(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found.')
    with torch.serialization.safe_globals(allowed_checkpoint_globals()):
        try:
            return torch.load(filename, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            offending = _disallowed_globals(filename)
            raise UnsafeCheckpointError(
                f'Refusing to load checkpoint {filename}: it contains pickled objects that are not '
                f'on the allow-list ({", ".join(offending) or err}). Loading them would execute '
                f'arbitrary code. If you produced this file yourself and trust it, extend '
                f'clim.engine.checkpoint_safety.allowed_checkpoint_globals with the exact type.'
            ) from err
        except (RuntimeError, EOFError) as err:
            raise RuntimeError(
                f'checkpoint {filename} could not be read ({err}); the file may be truncated or '
                f'not a torch checkpoint.') from err


def _disallowed_globals(filename: str) -> list[str]:
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # noqa: BLE001 - only used to enrich an error message
        return []
    allowed = {f'{obj.__module__}.{obj.__qualname__}' for obj in allowed_checkpoint_globals()}
    return [name for name in found if name not in allowed]


def atomic_torch_save(obj: Any, filename: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the target directory, then rename over the target."""
    filename = os.fspath(filename)
    directory = osp.dirname(osp.abspath(filename))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filename)}.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filename)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def _history_buffer_getstate(self: Any) -> dict:
    """HistoryBuffer state without the class-level ``statistics_methods`` registry."""
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    return state


def _mmengine_local_loader(filename: str, map_location: Any) -> Any:
    return safe_torch_load(filename, map_location=map_location)


def _wrap_save_checkpoint(original: Callable[..., None]) -> Callable[..., None]:
    def save_checkpoint(checkpoint: dict, filename: str, file_client_args: Any = None,
                        backend_args: Any = None) -> None:
        if file_client_args is None and backend_args is None and '://' not in str(filename):
            atomic_torch_save(checkpoint, filename)
        else:
            original(checkpoint, filename, file_client_args=file_client_args, backend_args=backend_args)

    save_checkpoint.__wrapped__ = original  # type: ignore[attr-defined]
    return save_checkpoint


_INSTALLED = False


def install_checkpoint_safety() -> None:
    """Route MMEngine's local checkpoint loading and saving through the functions above.

    Idempotent. Called when ``clim`` is imported (configs import it via ``custom_imports``), so
    MMEngine's Runner, ``load_checkpoint`` and ``--resume`` all use it.
    """
    global _INSTALLED
    if _INSTALLED:
        return
    import mmengine.runner.checkpoint as mm_ckpt
    import mmengine.runner.runner as mm_runner

    from mmengine.logging.history_buffer import HistoryBuffer

    mm_ckpt.CheckpointLoader.register_scheme(prefixes='', loader=_mmengine_local_loader, force=True)
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    # The Runner calls the name it imported, so both bindings are replaced.
    mm_runner.save_checkpoint = _wrap_save_checkpoint(mm_ckpt.save_checkpoint)
    _INSTALLED = True


__all__ = ['UnsafeCheckpointError', 'allowed_checkpoint_globals', 'atomic_torch_save',
           'install_checkpoint_safety', 'safe_torch_load']
