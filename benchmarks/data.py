"""Benchmark "data": caption dataset + training pipeline throughput per worker, vs PIL decode + resize alone.

In one process (= one DataLoader worker), over the same JPEG files:
- ``pipeline``: ``CaptionDataset[(epoch, i)]`` with the CLIM training pipeline (decode, random resized
  crop at ``--size`` bicubic, CLIP tokenization, packing to a uint8 tensor);
- ``pil_baseline``: ``Image.open(path).convert('RGB').resize((size, size), BICUBIC)`` alone;
- optionally (``--workers N``) a DataLoader with N workers over the dataset, batch 32, plus the CLIM
  data preprocessor (normalization), in images/s overall.
Without ``--ann-file`` it writes ``--num-images`` COCO-like JPEGs (``--width`` x ``--height``, smooth
random content, quality 90) and a caption json to a temporary folder.

    python -m benchmarks.data --num-images 64 --repeats 3
    python -m benchmarks.data --data-root data/coco --ann-file annotations/clim_captions_train2017.json \\
        --img-prefix train2017/ --num-images 256
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.common import PeakMemory, format_table, machine_info, time_interleaved, write_results

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data-root', help='existing dataset root (default: generate JPEGs in a temp dir)')
    p.add_argument('--ann-file', help='caption json relative to --data-root')
    p.add_argument('--img-prefix', default='', help='image folder relative to --data-root')
    p.add_argument('--num-images', type=int, default=64, help='images per timed pass')
    p.add_argument('--width', type=int, default=640, help='generated image width (COCO-like)')
    p.add_argument('--height', type=int, default=480, help='generated image height')
    p.add_argument('--size', type=int, default=224, help='training crop size (the model input size)')
    p.add_argument('--context-length', type=int, default=77)
    p.add_argument('--repeats', type=int, default=3, help='timed passes (median reported)')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--workers', type=int, default=0, help='also time a DataLoader with this many workers')
    p.add_argument('--out-dir', help='results directory (default benchmarks/results)')
    return p.parse_args(argv)


def _generate(root: Path, n: int, w: int, h: int) -> str:
    (root / 'images').mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = []
    for i in range(n):
        coarse = rng.uniform(0, 255, size=(6, 8, 3)).astype(np.uint8)
        img = Image.fromarray(coarse).resize((w, h), Image.BICUBIC)
        arr = np.clip(np.asarray(img, np.int16) + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
        name = f'{i:06d}.jpg'
        Image.fromarray(arr).save(root / 'images' / name, quality=90)
        captions = [f'a photo of thing {i}', f'an image of item {i} here',
                    'a blurry colourful picture of nothing in particular']
        images.append(dict(id=i, file_name=name, captions=captions))
    (root / 'captions.json').write_text(json.dumps(dict(images=images)))
    return 'captions.json'


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import clim  # noqa: F401
    from clim.datasets import CaptionDataset
    from clim.method import CLIMDataPreprocessor

    tmp = None
    if args.ann_file:
        root, ann, prefix = Path(args.data_root or '.'), args.ann_file, args.img_prefix
    else:
        tmp = tempfile.TemporaryDirectory()
        root = Path(tmp.name)
        ann, prefix = _generate(root, args.num_images, args.width, args.height), 'images/'
    pipeline = [
        dict(type='LoadCaptionImage'),
        dict(type='CaptionRandomResizedCrop', size=args.size, scale=(0.9, 1.0), interpolation='bicubic'),
        dict(type='TokenizeCaption', context_length=args.context_length),
        dict(type='PackCaptionInputs'),
    ]
    ds = CaptionDataset(ann_file=ann, data_root=str(root), img_prefix=prefix, pipeline=pipeline)
    n = min(args.num_images, len(ds))
    paths = [ds.get_data_info(i)['img_path'] for i in range(n)]
    epoch = [0]

    def run_pipeline() -> None:
        epoch[0] += 1
        for i in range(n):
            ds[(epoch[0], i)]

    def run_pil() -> None:
        for path in paths:
            Image.open(path).convert('RGB').resize((args.size, args.size), Image.BICUBIC)

    with PeakMemory() as mem:
        times = time_interleaved(dict(pipeline=run_pipeline, pil_baseline=run_pil), repeats=args.repeats,
                                 warmup=args.warmup)
    rows = [dict(what=k, images=n, median_s=v['median_s'], images_per_s_per_worker=n / v['median_s'])
            for k, v in times.items()]
    summary = dict(pipeline_over_pil_time=times['pipeline']['median_s'] / times['pil_baseline']['median_s'],
                   **mem.result)
    if args.workers:
        pre = CLIMDataPreprocessor()
        def collate(b: list) -> dict:
            return dict(inputs=[x['inputs'] for x in b], data_samples=[x['data_samples'] for x in b])

        loader = torch.utils.data.DataLoader(ds, batch_size=32, num_workers=args.workers, drop_last=True,
                                             collate_fn=collate)
        t0 = time.perf_counter()
        count = 0
        for batch in loader:
            pre(batch, True)
            count += len(batch['inputs'])
        dt = time.perf_counter() - t0
        rows.append(dict(what=f'dataloader_{args.workers}_workers', images=count, median_s=dt,
                         images_per_s_per_worker=count / dt / args.workers))
        summary['dataloader_images_per_s'] = count / dt
    table = format_table(rows) + '\n\n' + format_table([summary])
    src = dict(generated=tmp is not None, width=args.width, height=args.height) if tmp else dict(ann_file=ann)
    payload = dict(machine=machine_info(), config=dict(size=args.size, num_images=n, **src), times=times,
                   rows=rows, summary=summary)
    write_results('data', payload, table, out_dir=args.out_dir, argv=argv)
    if tmp is not None:
        tmp.cleanup()
    return payload


if __name__ == '__main__':
    main()
