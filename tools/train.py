"""Train a model from a config with MMEngine's Runner.

    python tools/train.py configs/clim/clim_vitb16_coco.py [--work-dir DIR] [--resume [CKPT]] [--amp]
    tools/dist_train.sh CONFIG NGPUS [args]   # torchrun; works on CPU (gloo) too
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import os.path as osp
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from clim.engine.launch import add_common_args, build_runner, finish_distributed, load_config

if TYPE_CHECKING:
    from clim.engine.cpu_amp import CPUAmpProbe


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a clim-ovd model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the work dir if no '
                             'path is given')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision training (CUDA: fp16; '
                        'CPU: see --cpu-amp)')
    parser.add_argument('--cpu-amp', choices=['auto', 'bf16', 'fp32'], default='auto',
                        help='what --amp does without CUDA. auto: time one training step of the model on a '
                             'batch of the training data in bf16 autocast and float32 first and use bf16 only '
                             'where it is faster (single process; distributed CPU runs keep float32); '
                             'bf16 / fp32: force')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by (total batch size / auto_scale_lr.base_batch_size)')
    add_common_args(parser)
    return parser.parse_args()


def uses_mmcv_detection_ops(cfg) -> bool:
    """Whether the config's model is a two-stage detector (RPN / RoI head: mmcv nms and RoIAlign)."""
    model = cfg.get('model', {})
    return 'rpn_head' in model or 'roi_head' in model


def cpu_bf16_wanted(args: argparse.Namespace, work_dir: str | None = None, cfg=None,
                    probe: Callable[[], CPUAmpProbe] | None = None) -> bool:
    """Whether ``--amp`` on a CPU runs bf16 autocast; says why, with the measured numbers.

    ``probe`` times float32 against bf16 autocast (``main``: one training step of the built model on a batch
    of the training data, :func:`clim.engine.cpu_amp.probe_training_step`); without it, one ViT-B block
    (:func:`clim.engine.cpu_amp.probe_cpu_bf16`). The measured choice is kept in
    ``work_dir/cpu_amp_choice.json``; ``--resume`` reuses it, so a resumed run keeps the precision of the run
    it continues (a new measurement could come out the other way).
    """
    if cfg is not None and uses_mmcv_detection_ops(cfg):
        # MMDetection makes RPN anchors / proposals in the score dtype; mmcv's CPU nms and RoIAlign
        # kernels accept float32 only ("expected scalar type Float but found BFloat16").
        print('--amp on CPU: this detector calls mmcv\'s nms / RoIAlign, whose CPU kernels take float32 only: '
              'training in float32')
        return False
    choice_file = osp.join(work_dir, 'cpu_amp_choice.json') if work_dir else None
    if args.cpu_amp == 'auto' and getattr(args, 'resume', None) is not None and choice_file \
            and osp.isfile(choice_file):
        with open(choice_file) as f:
            kept = json.load(f)
        print(f'--amp on CPU, resumed: {"bf16 autocast" if kept["bf16"] else "float32"} as measured for the '
              f'run it continues ({choice_file}: {kept["message"]})')
        return bool(kept['bf16'])
    if args.cpu_amp != 'auto':
        print(f'--amp on CPU: --cpu-amp {args.cpu_amp}: training in '
              f'{"bf16 autocast" if args.cpu_amp == "bf16" else "float32"}')
        return args.cpu_amp == 'bf16'
    if args.launcher != 'none':
        # Each rank would time its own probe and could decide differently: one rule for all.
        print('--amp on CPU, distributed: training in float32 (bf16 autocast is slower on many CPUs; '
              'pass --cpu-amp bf16 where `python tools/train.py CONFIG --amp` alone reported it faster)')
        return False
    if probe is None:
        from clim.engine.cpu_amp import probe_cpu_bf16 as probe
    measured = probe()
    print(measured.message())
    if choice_file:
        os.makedirs(work_dir, exist_ok=True)
        with open(choice_file, 'w') as f:
            json.dump(dict(bf16=measured.bf16_faster, fp32_s=measured.fp32_s, bf16_s=measured.bf16_s,
                           message=measured.message()), f)
    return measured.bf16_faster


def training_step_probe(runner, cfg) -> Callable[[], CPUAmpProbe]:
    """A probe timing the runner's model on the first batch of the config's training data (loaded in this
    process, RNG states restored: training draws exactly what it would have drawn without the probe)."""
    def probe() -> CPUAmpProbe:
        from clim.engine.cpu_amp import preserved_rng, probe_training_step

        loader_cfg = copy.deepcopy(cfg.train_dataloader)
        loader_cfg.update(num_workers=0, persistent_workers=False)
        loader_cfg.pop('prefetch_factor', None)
        with preserved_rng():
            batch = next(iter(runner.build_dataloader(loader_cfg, seed=runner.seed)))
        model = getattr(runner.model, 'module', runner.model)
        print('--amp on CPU: timing one training step in float32 and in bf16 autocast (1 warm-up + 2 each) ...',
              flush=True)
        return probe_training_step(model, batch)
    return probe


def main() -> None:
    args = parse_args()
    cfg = load_config(args)

    wrapper = cfg.optim_wrapper
    cpu_amp_pending = False
    # Reference-exact configs ask for AMP themselves (AmpOptimWrapper), like --amp does.
    if args.amp or wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
        if torch.cuda.is_available():
            wrapper.type = 'AmpOptimWrapper'
            wrapper.setdefault('loss_scale', 'dynamic')
        elif wrapper.get('type') != 'CPUBf16AmpOptimWrapper':
            # MMEngine's AmpOptimWrapper refuses CPUs; bf16 autocast needs no loss scaling. The choice is made
            # once the runner has built the model (it is timed); the optimizer wrapper is built in train().
            wrapper.type = 'OptimWrapper'
            wrapper.pop('loss_scale', None)
            cpu_amp_pending = True
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
    if cpu_amp_pending and cpu_bf16_wanted(args, cfg.work_dir, cfg, probe=training_step_probe(runner, cfg)):
        runner.optim_wrapper['type'] = 'CPUBf16AmpOptimWrapper'
    runner.train()
    finish_distributed()


if __name__ == '__main__':
    main()
