"""Let MMEngine's ``pytorch`` launcher run on machines without CUDA.

MMEngine 0.10.7's launcher calls ``torch.cuda.set_device`` and wraps the model in DDP with
``device_ids=[LOCAL_RANK]``; both fail on a CPU-only machine. When there is no CUDA we initialise
the gloo process group ourselves (MMEngine then skips its own init), wrap with
``device_ids=None`` and turn SyncBN into BN (SyncBN has no CPU kernel).
"""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from mmengine.config import Config


def replace_sync_bn(node: Any) -> Any:
    """Return ``node`` with every ``type='SyncBN'`` norm config replaced by ``'BN'`` (in place)."""
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN', 'TorchSyncBN'):
            node['type'] = 'BN'
        for value in node.values():
            replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            replace_sync_bn(value)
    return node


def prepare_launch(cfg: Config, launcher: str) -> Config:
    """Adjust ``cfg`` (in place) so ``launcher`` works on this machine; returns ``cfg``."""
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    if launcher != 'pytorch':
        # slurm/mpi launchers also assume CUDA in MMEngine; only torchrun is supported on CPU.
        raise RuntimeError(f'launcher {launcher!r} needs CUDA; on a CPU-only machine use '
                           f'--launcher pytorch (tools/dist_train.sh) or --launcher none.')
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if k not in os.environ]
    if missing and not dist.is_initialized():
        raise SystemExit(f'--launcher pytorch needs the environment torchrun sets ({", ".join(missing)} missing): '
                         f'run tools/dist_train.sh CONFIG NUM_PROCS (or torchrun), or use --launcher none')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']))
    cfg.env_cfg = cfg.get('env_cfg', {})
    cfg.env_cfg['dist_cfg'] = dict(backend='gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False)))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    replace_sync_bn(cfg.model)
    return cfg
