"""How the ranks of a distributed refinement run share their gradients: synchronised DDP, or the reference's
independent replicas.

The CLIM and CLIPSelf reference trainers call the DDP-wrapped model's ``.module`` directly, so DDP's forward
never prepares its reducer and the gradients are never all-reduced: each rank trains its own replica on its
shard (losses that gather features across ranks, CLIM's InfoNCE, still see every rank's features), and rank
0's replica is the one saved and exported (clim.md / clipself.md, "no gradient sync").

:class:`GradSyncDataParallel` is an ``MMDistributedDataParallel`` with that choice as ``sync``:

- ``'synced'`` (default): MMEngine's DDP train step, gradients averaged over ranks, one model;
- ``'reference'``: the train step of the unwrapped module (the reference's computation).

In ``'reference'`` mode the replicas differ, so :class:`ReplicaCheckpointHook` keeps every rank > 0's model
and optimizer state next to each (rank 0) checkpoint, in ``<work_dir>/replicas/``, and gives each rank its
own back on ``--resume``: a resumed run continues all replicas exactly (CLIM's negatives come from all of
them). The checkpoint itself and every export hold rank 0's replica, as the reference's.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, is_model_wrapper
from mmengine.registry import HOOKS, MODEL_WRAPPERS

from .checkpoint_safety import atomic_torch_save, safe_torch_load

__all__ = ['GradSyncDataParallel', 'ReplicaCheckpointHook', 'SYNC_MODES', 'sync_mode']

SYNC_MODES = ('synced', 'reference')
_REPLICA_DIR = 'replicas'


@MODEL_WRAPPERS.register_module()
class GradSyncDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` whose train step either synchronises gradients or does not.

    Args:
        module: the model (an MMEngine ``BaseModel``).
        sync: ``'synced'`` (DDP all-reduces the gradients every step) or ``'reference'`` (each rank steps
            its own replica: the module's own ``train_step``, no DDP forward, so no all-reduce).
        **kwargs: ``MMDistributedDataParallel`` / ``DistributedDataParallel`` arguments.

    Both modes start every rank from rank 0's weights (DDP broadcasts parameters and buffers at
    construction), and frozen copies the module holds outside its tree (``module.held_modules()``, e.g.
    CLIPSelf's teacher) are broadcast from rank 0 too, so a random-weight run with per-rank seeds still
    has one teacher. ``train_step(data, optim_wrapper)`` returns the log variables of this rank's loss.
    """

    def __init__(self, module: torch.nn.Module, sync: str = 'synced', **kwargs: Any) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f'model_wrapper_cfg.sync must be one of {SYNC_MODES}, got {sync!r}')
        super().__init__(module=module, **kwargs)
        self.sync = sync
        held = getattr(module, 'held_modules', None)
        for held_module in (held() if callable(held) else []):
            for tensor in held_module.state_dict().values():
                dist.broadcast(tensor, src=0)
        print_log(describe_sync(sync, dist.get_world_size()), logger='current', level=logging.INFO)

    def train_step(self, data: dict | tuple | list, optim_wrapper) -> dict[str, torch.Tensor]:
        if self.sync == 'reference':
            return self.module.train_step(data, optim_wrapper)
        return super().train_step(data, optim_wrapper)


def describe_sync(sync: str | None, world: int) -> str:
    """The training-log line that says which gradient-sync mode runs."""
    if world == 1:
        return (f'gradient sync: single process (model_wrapper_cfg.sync={sync!r} only matters for distributed '
                f'runs)' if sync else 'gradient sync: single process')
    if sync == 'reference':
        return (f"gradient sync: 'reference' - {world} independent replicas, no gradient all-reduce (the reference "
                f"trainer's `model.module` call); cross-rank losses still gather every rank's features; rank 0's "
                f'replica is checkpointed and exported, ranks 1-{world - 1} keep theirs in '
                f'<work_dir>/{_REPLICA_DIR}/ for --resume')
    return f"gradient sync: 'synced' - DDP averages the gradients of {world} ranks every step (one model)"


def sync_mode(model: Any) -> str | None:
    """``'synced'`` / ``'reference'`` for a :class:`GradSyncDataParallel`, ``'synced'`` for any other DDP
    wrapper, ``None`` for an unwrapped (single-process) model."""
    if isinstance(model, GradSyncDataParallel):
        return model.sync
    return 'synced' if is_model_wrapper(model) else None


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@HOOKS.register_module()
class ReplicaCheckpointHook(Hook):
    """Per-rank replica states for ``sync='reference'`` runs; says in the log which sync mode runs.

    In: the runner's model, optimizer wrapper and checkpoint hook. Out: whenever the checkpoint hook saves
    (rank 0 only), each rank r > 0 writes ``<work_dir>/replicas/rank<r>_epoch<e>_iter<i>.pth`` (its
    ``state_dict`` and ``optimizer``; e, i: the checkpoint's meta), atomically; on ``--resume`` rank r
    loads its file in place of the checkpoint's (rank 0's) model and optimizer states, so every replica
    continues bit-identically. A missing file is an error naming it: continuing from rank 0's replica would
    silently be another run. No-op in ``'synced'`` and single-process runs. Keeps as many replica files per
    rank as the checkpoint hook keeps checkpoints.
    """

    priority = 'LOW'  # before CheckpointHook (VERY_LOW) at the end of an epoch / iteration

    def before_train(self, runner) -> None:
        print_log(describe_sync(sync_mode(runner.model) or _configured_sync(runner), _world()[1]),
                  logger='current', level=logging.INFO)

    @staticmethod
    def _active(runner) -> bool:
        return sync_mode(runner.model) == 'reference' and _world()[1] > 1

    @staticmethod
    def _checkpoint_hook(runner) -> CheckpointHook | None:
        hooks = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
        return hooks[0] if hooks else None

    @staticmethod
    def _path(runner, rank: int, epoch: int, it: int) -> Path:
        return Path(runner.work_dir) / _REPLICA_DIR / f'rank{rank}_epoch{epoch}_iter{it}.pth'

    def after_train_epoch(self, runner) -> None:
        ckpt = self._checkpoint_hook(runner)
        if not self._active(runner) or ckpt is None or not ckpt.by_epoch:
            return
        if ckpt.every_n_epochs(runner, ckpt.interval, ckpt.save_begin) or (
                ckpt.save_last and ckpt.is_last_train_epoch(runner)):
            self._save(runner, ckpt, epoch=runner.epoch + 1, it=runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        ckpt = self._checkpoint_hook(runner)
        if not self._active(runner) or ckpt is None or ckpt.by_epoch:
            return
        if ckpt.every_n_train_iters(runner, ckpt.interval, ckpt.save_begin) or (
                ckpt.save_last and ckpt.is_last_train_iter(runner)):
            self._save(runner, ckpt, epoch=runner.epoch, it=runner.iter + 1)

    def _save(self, runner, ckpt: CheckpointHook, epoch: int, it: int) -> None:
        rank, world = _world()
        if rank == 0:  # rank 0's replica is the checkpoint itself
            return
        state = dict(state_dict={k: v.detach().cpu() for k, v in runner.model.module.state_dict().items()},
                     optimizer=runner.optim_wrapper.state_dict(),
                     meta=dict(epoch=epoch, iter=it, rank=rank, world_size=world))
        atomic_torch_save(state, self._path(runner, rank, epoch, it))
        if ckpt.max_keep_ckpts > 0:
            mine = sorted(self._path(runner, rank, 0, 0).parent.glob(f'rank{rank}_epoch*_iter*.pth'),
                          key=_epoch_iter)
            for old in mine[:-ckpt.max_keep_ckpts]:
                old.unlink(missing_ok=True)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False) or not self._active(runner):
            return
        rank, world = _world()
        if rank == 0:  # its replica is the checkpoint; the others say so themselves only on errors
            print_log(f"sync='reference' resume: ranks 1-{world - 1} continue their own replicas from "
                      f'{self._path(runner, 1, 0, 0).parent}', logger='current', level=logging.INFO)
            return
        meta = checkpoint.get('meta', {})
        path = self._path(runner, rank, int(meta.get('epoch', 0)), int(meta.get('iter', 0)))
        if not path.is_file():
            raise FileNotFoundError(
                f"sync='reference' resume: rank {rank}'s replica {path} is missing (written with each checkpoint "
                f'of a reference-mode run). Without it this rank would continue from rank 0\'s replica, which is '
                f'another run; resume the work dir the checkpoint came from, or train with sync=\'synced\'')
        replica = safe_torch_load(path, map_location='cpu')
        if replica['meta'].get('world_size') != world:
            raise RuntimeError(f'{path} was written by a run of {replica["meta"].get("world_size")} ranks, this '
                               f'one has {world}: a reference-mode run resumes with the same number of ranks')
        checkpoint['state_dict'] = replica['state_dict']
        if 'optimizer' in checkpoint:
            checkpoint['optimizer'] = replica['optimizer']


def _configured_sync(runner) -> str | None:
    cfg = getattr(runner, 'cfg', None)
    wrapper = (cfg.get('model_wrapper_cfg') if cfg is not None else None) or {}
    return wrapper.get('sync')


def _epoch_iter(path: Path) -> tuple[int, int]:
    found = re.search(r'_epoch(\d+)_iter(\d+)\.pth$', path.name)
    return (int(found.group(1)), int(found.group(2))) if found else (-1, -1)
