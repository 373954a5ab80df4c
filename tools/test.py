"""Evaluate a model from a config with MMEngine's Runner.

    python tools/test.py CONFIG [CHECKPOINT] [--work-dir DIR] [--out preds.pkl]
    tools/dist_test.sh CONFIG CHECKPOINT NGPUS [args]

CHECKPOINT is an MMEngine checkpoint of the whole model. It may be omitted when the config
itself names the weights (e.g. region recognition of a CLIP file given in the model config).
"""
from __future__ import annotations

import argparse

from clim.engine.launch import add_common_args, build_runner, finish_distributed, load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (evaluate) a clim-ovd model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', nargs='?', default=None, help='checkpoint file')
    parser.add_argument('--out', help='dump raw predictions to this pickle file')
    parser.add_argument('--show-dir', help='save visualised predictions under WORK_DIR/SHOW_DIR')
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    if args.checkpoint is not None:
        cfg.load_from = args.checkpoint
    if args.show_dir is not None:
        vis_hook = cfg.default_hooks.get('visualization')
        if vis_hook is None:
            raise SystemExit(f'{args.config} has no visualization hook; --show-dir needs one')
        vis_hook.update(draw=True, test_out_dir=args.show_dir)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise SystemExit('--out must be a .pkl file')
        cfg.test_evaluator = [*cfg.test_evaluator] if isinstance(cfg.test_evaluator, list) \
            else [cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))

    runner = build_runner(cfg)
    metrics = runner.test()
    finish_distributed()
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in (metrics or {}).items()})


if __name__ == '__main__':
    main()
