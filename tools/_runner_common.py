"""Argument handling shared by tools/train.py and tools/test.py."""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys

# Make `import clim, ovdet` work when the tools are run from a checkout without `pip install -e`.
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from mmengine.config import Config, DictAction  # noqa: E402


def add_common_args(parser: argparse.ArgumentParser) -> None:
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
    if osp.isfile(path):
        return path
    with open(osp.join(REPO_ROOT, 'configs', 'renamed.json')) as f:
        renamed = json.load(f)
    rel = osp.relpath(osp.abspath(path), REPO_ROOT).replace(os.sep, '/')
    if rel not in renamed:
        return path
    new = osp.join(osp.relpath(REPO_ROOT), renamed[rel])
    print(f'note: {path} was renamed to {renamed[rel]}; using it', file=sys.stderr)
    return osp.normpath(new)


def load_config(args: argparse.Namespace) -> Config:
    """Read the config, apply overrides, set the launcher and the work dir."""
    args.config = resolve_renamed_config(args.config)
    if not osp.isfile(args.config):
        raise SystemExit(f'config file {args.config} does not exist')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    import clim  # noqa: F401  (registers modules, installs safe checkpoint loading)
    import ovdet  # noqa: F401
    from clim.engine import prepare_launch

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
