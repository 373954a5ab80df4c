"""Train a model from a config with MMEngine's Runner.

    python tools/train.py configs/clim_coco_vitb16.py [--work-dir DIR] [--resume [CKPT]] [--amp]
    tools/dist_train.sh CONFIG NGPUS [args]   # torchrun; works on CPU (gloo) too
"""
from __future__ import annotations

import argparse

import torch

from _runner_common import add_common_args, build_runner, finish_distributed, load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a clim-ovd model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the work dir if no '
                             'path is given')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by (total batch size / auto_scale_lr.base_batch_size)')
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args)

    if args.amp:
        wrapper = cfg.optim_wrapper
        if wrapper.get('type', 'OptimWrapper') in ('AmpOptimWrapper', 'CPUBf16AmpOptimWrapper'):
            print('AMP is already enabled in the config.')
        elif torch.cuda.is_available():
            wrapper.type = 'AmpOptimWrapper'
            wrapper.setdefault('loss_scale', 'dynamic')
        else:
            # MMEngine's AmpOptimWrapper refuses CPUs; bf16 autocast needs no loss scaling.
            wrapper.type = 'CPUBf16AmpOptimWrapper'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise SystemExit(f'{args.config} has no auto_scale_lr.base_batch_size; cannot auto-scale the lr')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    runner = build_runner(cfg)
    runner.train()
    finish_distributed()


if __name__ == '__main__':
    main()
