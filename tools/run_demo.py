"""`make demo`: the whole open-vocabulary pipeline on a generated benchmark, no downloads.

    python tools/run_demo.py --work-dir work_dirs/demo [--vocab "star, ring, heart"] [--preset smoke]

Stages are cached in the work dir: running it again reuses every finished stage whose inputs did
not change (delete a stage's folder to redo it). The pipeline is the `ovd_demo` package (see
ovd_demo/stages.py for what each stage does, docs/demo.md for why its settings are what they are).
"""
from __future__ import annotations

import argparse

from ovd_demo.pipeline import DemoPipeline
from ovd_demo.report import format_summary
from ovd_demo.settings import DemoSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--preset', choices=['full', 'smoke'], default='full',
                        help='full: the README numbers (timings in docs/demo.md); smoke: seconds, for tests')
    parser.add_argument('--vocab', help='comma-separated free-text vocabulary for the inference picture')
    parser.add_argument('--seed', type=int, help='seed of the generated benchmark')
    parser.add_argument('--no-comparison', action='store_true',
                        help='skip the F-ViT on the CLIP before CLIM (three stages fewer)')
    args = parser.parse_args()

    settings = DemoSettings.preset(args.preset)
    if args.vocab:
        settings.vocab = args.vocab
    if args.seed is not None:
        settings.seed = args.seed
    if args.no_comparison:
        settings.compare_without_clim = False
    summary = DemoPipeline(args.work_dir, settings).run()
    print(format_summary(summary))


if __name__ == '__main__':
    main()
