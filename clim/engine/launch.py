"""What tools/train.py and tools/test.py share: their common arguments, reading the config, the runner.

The tools stay thin scripts over this module (they import it as a library: no tool imports a sibling).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
from pathlib import Path

from mmengine.config import Config, DictAction

from .distributed import prepare_launch

__all__ = ['RENAMED_CONFIGS', 'add_common_args', 'resolve_renamed_config', 'load_config', 'build_runner',
           'finish_distributed']

REPO_ROOT = Path(__file__).resolve().parents[2]
# Old config path -> current one (configs were moved into per-method folders); absent outside a checkout.
RENAMED_CONFIGS = REPO_ROOT / 'configs' / 'renamed.json'


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options``, ``--launcher`` and ``--local-rank``."""
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_dataloader.batch_size=8')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher (tools/dist_*.sh pass "pytorch")')
    # torchrun sets LOCAL_RANK; torch.distributed.launch passes --local-rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def resolve_renamed_config(path: str) -> str:
    """The current path of a config given by a name it had before ``configs/renamed.json`` was written.

    Returns ``path`` itself when it exists or was never renamed; prints a one-line notice otherwise.
    """
    if osp.isfile(path) or not RENAMED_CONFIGS.is_file():
        return path
    renamed = json.loads(RENAMED_CONFIGS.read_text())
    rel = osp.relpath(osp.abspath(path), REPO_ROOT).replace(os.sep, '/')
    if rel not in renamed:
        return path
    new = osp.join(osp.relpath(REPO_ROOT), renamed[rel])
    print(f'note: {path} was renamed to {renamed[rel]}; using it', file=sys.stderr)
    return osp.normpath(new)


def load_config(args: argparse.Namespace) -> Config:
    """Read ``args.config`` (its ``custom_imports`` register clim and ovdet), apply ``--cfg-options``, set
    the launcher and the work dir."""
    args.config = resolve_renamed_config(args.config)
    if not osp.isfile(args.config):
        raise SystemExit(f'config file {args.config} does not exist')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    prepare_launch(cfg, args.launcher)
    return cfg


def build_runner(cfg: Config):
    """The config's ``runner_type`` (registered), else MMEngine's :class:`Runner`."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def finish_distributed() -> None:
    """Tear the process group down so gloo/NCCL threads exit cleanly (an abort at exit otherwise)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
