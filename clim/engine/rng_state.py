"""Random-number-generator state in checkpoints, so ``--resume`` continues the same random stream.

MMEngine checkpoints hold weights, optimizer, schedulers and the message hub, but not the global
generators (python ``random``, numpy, torch CPU / CUDA). The detectors draw from them at every step
(random resize / crop / flip in the pipeline, RPN / RoI sampling), so a resumed run re-seeded at
start diverges from the uninterrupted one. :class:`RandomStateHook` stores every rank's generator
states in each checkpoint and restores them when the run **resumes** (not for ``load_from`` / testing).

An iteration-based loop re-runs the pipeline over the batches it skips on resume; the states are
restored after that skip, just before the first new batch.

Limit: dataloader workers keep generators of their own. With ``num_workers=0`` (the tiny configs)
or non-persistent workers (re-seeded from the main torch generator every epoch) resuming at an epoch
boundary is exact; persistent workers are not restored.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log

__all__ = ['RandomStateHook', 'capture_rng_state', 'restore_rng_state']

_KEY = 'rng_state'


def capture_rng_state() -> dict[str, Any]:
    """This process's generator states, in types ``torch.load(weights_only=True)`` reads back."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        'python': random.getstate(),
        # As a torch tensor and ints: numpy's uint32 dtype is not on the safe-load allow-list.
        'numpy': dict(kind=str(kind), keys=torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos=int(pos),
                      has_gauss=int(has_gauss), cached=float(cached)),
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set the generators from :func:`capture_rng_state`'s output."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    n = state['numpy']
    np.random.set_state((n['kind'], n['keys'].numpy().astype(np.uint32), n['pos'], n['has_gauss'], n['cached']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available() and len(state['cuda']) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state['cuda'])


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _RestoreAfter:
    """Dataloader iterator proxy: restores the generator ``state`` after the first ``skip`` batches."""

    def __init__(self, iterator, skip: int, state: dict[str, Any]) -> None:
        self._iterator, self._skip, self._state = iterator, skip, state

    def __iter__(self):
        return self

    def __next__(self):
        if self._skip == 0 and self._state is not None:
            restore_rng_state(self._state)
            self._state = None
        self._skip -= 1
        return next(self._iterator)

    def __getattr__(self, name: str):
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save every rank's generator states with each checkpoint; restore them on resume.

    In: the checkpoint dict MMEngine is about to save (``before_save_checkpoint``) or has loaded
    (``after_load_checkpoint``). Out: ``checkpoint['rng_state']`` = a list with one state per rank.

    Only rank 0 saves checkpoints, so in a distributed run the ranks' states are gathered where every
    rank takes part: at the end of each epoch (epoch-based checkpointing) or of each iteration
    (iteration-based), just before the checkpoint hook (priority LOW < VERY_LOW). They are restored in
    ``before_train``, after everything the resume itself does (MMEngine re-seeds when the checkpoint's
    seed differs from this run's).
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None
        self._gathered: list | None = None
        self._by_epoch = True

    def before_train(self, runner) -> None:
        from mmengine.hooks import CheckpointHook

        hooks = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
        self._by_epoch = bool(hooks[0].by_epoch) if hooks else True
        if self._pending is not None:
            loop = runner.train_loop
            skip = int(getattr(loop, 'iter', 0)) if hasattr(loop, 'dataloader_iterator') else 0
            if skip > 0:
                # An iteration-based loop first advances its dataloader past the trained batches, running
                # the pipeline (and its random draws) again: restore after that, before the next batch.
                loop.dataloader_iterator = _RestoreAfter(loop.dataloader_iterator, skip, self._pending)
            else:
                restore_rng_state(self._pending)
            self._pending = None

    def _gather(self) -> None:
        _, world = _world()
        if world > 1:
            states: list = [None] * world
            dist.all_gather_object(states, capture_rng_state())
            self._gathered = states

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self._by_epoch:
            self._gather()

    def after_train_epoch(self, runner) -> None:
        self._gather()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        _, world = _world()
        checkpoint[_KEY] = self._gathered if world > 1 and self._gathered is not None else [capture_rng_state()]

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False) or _KEY not in checkpoint:
            return
        states = checkpoint[_KEY]
        rank, world = _world()
        if len(states) != world:
            print_log(f'RandomStateHook: the checkpoint holds generator states of {len(states)} ranks, this run '
                      f'has {world}; random streams start afresh', logger='current')
            return
        self._pending = states[rank]
