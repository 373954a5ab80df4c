"""Benchmark "fvit-infer": F-ViT ViT-B/16 inference vs MMDetection's stock Faster R-CNN R50-FPN.

In one process, on random weights (nothing is downloaded), batch 1, a square input (640 by default):
- ``fvit``: ``FViT.predict`` of configs/fvit/fvit_vitb16_ovcoco.py (frozen CLIP ViT-B/16 pass giving
  the pyramid and the CLIP dense map, FPN, RPN, 4conv+2fc RoI head, CLIP pooling + score ensemble, NMS);
- ``frozen_clip``: the frozen-CLIP part of that pass alone (ViT tokens + dense projection), to report
  its share of F-ViT's time;
- ``faster_rcnn_r50``: ``FasterRCNN.predict`` built from mmdet's own
  ``.mim/configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py`` (backbone init_cfg dropped).
All three are timed round-robin (median of ``--repeats`` after ``--warmup``). Preprocessing is done
once up front and is not timed. Then ``--repeats`` more F-ViT calls with each stage's methods timed
(:class:`benchmarks.common.StageTimer`): the median share of F-ViT's time per stage, so the next optimisation has
a target: ``clip_forward`` (frozen ViT tokens + dense projection), ``adapters_fpn``, ``rpn`` (head +
proposal NMS), ``roi_head`` (RoIAlign on the FPN + box head), ``clip_region_scoring`` (RoIAlign on the
CLIP dense map + CLIP / detector score ensemble), ``nms`` (box decoding + final multi-class NMS) and
``other`` (the rest). Reports images/s, the F-ViT / Faster R-CNN time ratio, the CLIP share, the stage
shares, peak memory and the machine. Runs unchanged on CUDA (``--device cuda``).

    python -m benchmarks.fvit_infer --repeats 3
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os.path as osp
import sys

import numpy as np
import torch

from benchmarks.common import PeakMemory, StageTimer, format_table, machine_info, time_interleaved, write_results

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--fvit-config', default=osp.join(REPO_ROOT, 'configs', 'fvit', 'fvit_vitb16_ovcoco.py'))
    p.add_argument('--size', type=int, default=640, help='square input size')
    p.add_argument('--repeats', type=int, default=3, help='timed calls per model (median reported)')
    p.add_argument('--warmup', type=int, default=1, help='untimed calls before timing')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--amp', action='store_true', help='autocast (fp16 on CUDA, bf16 on CPU) for both models')
    p.add_argument('--threads', type=int, help='torch intra-op threads (default: torch default)')
    p.add_argument('--skip-baseline', action='store_true', help='time F-ViT only (smoke tests)')
    p.add_argument('--out-dir', help='results directory (default benchmarks/results)')
    return p.parse_args(argv)


def _build(cfg_model, device: str) -> torch.nn.Module:
    from mmdet.registry import MODELS
    from mmengine.logging import MMLogger
    from mmengine.model.utils import revert_sync_batchnorm

    model = revert_sync_batchnorm(MODELS.build(cfg_model))
    # init_weights logs every parameter's initializer at INFO: keep the benchmark output readable.
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model.to(device).eval()


def build_fvit(config: str, device: str) -> torch.nn.Module:
    """F-ViT from ``config`` with random CLIP weights and a random 65 x D vocabulary."""
    from mmengine.config import Config

    cfg = Config.fromfile(config)
    clip_cfg = cfg.model.backbone.clip_cfg
    clip_cfg.pretrained = None
    head = cfg.model.roi_head.bbox_head
    from ovdet.apis.inference import _clip_embed_dim

    dim = _clip_embed_dim(clip_cfg)
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((head.num_classes, dim)).astype(np.float32)
    head.class_embeddings = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    return _build(cfg.model, device)


def build_faster_rcnn(device: str) -> torch.nn.Module:
    """mmdet's stock Faster R-CNN R50-FPN (1x COCO config), random weights, no download."""
    import mmdet
    from mmengine.config import Config

    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'faster_rcnn',
                    'faster-rcnn_r50_fpn_1x_coco.py')
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None
    return _build(cfg.model, device)


def make_batch(model: torch.nn.Module, size: int, device: str, seed: int = 0):
    """One random ``size`` x ``size`` image through the model's own data preprocessor."""
    from mmdet.structures import DetDataSample

    g = torch.Generator().manual_seed(seed)
    img = torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
    meta = dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0))
    sample = DetDataSample(metainfo=meta)
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=[img], data_samples=[sample]), training=False)
    return data['inputs'].to(device), data['data_samples']


FVIT_STAGES = ('clip_forward', 'adapters_fpn', 'rpn', 'roi_head', 'clip_region_scoring', 'nms')


def stage_shares(fvit: torch.nn.Module, run, repeats: int, device: str) -> dict[str, dict[str, float]]:
    """Median seconds and share of ``run()`` (one F-ViT prediction) per stage over ``repeats`` calls."""
    import time

    from benchmarks.common import sync

    timer = StageTimer(device)
    backbone, roi_head = fvit.backbone, fvit.roi_head
    timer.wrap('clip_forward', backbone, '_clip_tokens')
    timer.wrap('clip_forward', backbone.clip, 'project_dense')
    timer.wrap('adapters_fpn', fvit.neck, 'forward')  # the SimplePyramid adapters, then the FPN
    timer.wrap('rpn', fvit.rpn_head, 'predict')
    timer.wrap('roi_head', roi_head, '_bbox_forward')
    timer.wrap('clip_region_scoring', roi_head, 'clip_region_features')
    timer.wrap('clip_region_scoring', roi_head.bbox_head, 'class_scores')
    timer.wrap('nms', roi_head.bbox_head, '_predict_single')
    per_run: list[dict[str, float]] = []
    try:
        for _ in range(repeats):
            timer.reset()
            sync(device)
            t0 = time.perf_counter()
            run()
            sync(device)
            total = time.perf_counter() - t0
            row = dict(timer.seconds)
            row['other'] = max(total - sum(row.values()), 0.0)
            row['total'] = total
            per_run.append(row)
    finally:
        timer.restore()
    out = {}
    for stage in (*FVIT_STAGES, 'other'):
        out[stage] = dict(median_s=float(np.median([r[stage] for r in per_run])),
                          share=float(np.median([r[stage] / r['total'] for r in per_run])))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmengine.registry import init_default_scope

    import clim  # noqa: F401
    import ovdet  # noqa: F401

    init_default_scope('mmdet')
    device = args.device
    amp_dtype = torch.float16 if torch.device(device).type == 'cuda' else torch.bfloat16

    def autocast():
        return torch.autocast(device_type=torch.device(device).type, dtype=amp_dtype) if args.amp \
            else contextlib.nullcontext()

    fvit = build_fvit(args.fvit_config, device)
    fvit_inputs, fvit_samples = make_batch(fvit, args.size, device)
    backbone = fvit.backbone

    def run_fvit():
        with torch.no_grad(), autocast():
            return fvit.predict(fvit_inputs, fvit_samples)

    def run_clip():
        with torch.no_grad(), autocast():
            _, final = backbone._clip_tokens(fvit_inputs)
            return backbone.clip.project_dense(final)

    fns = dict(fvit=run_fvit, frozen_clip=run_clip)
    params = dict(fvit_total_params=sum(p.numel() for p in fvit.parameters()),
                  fvit_trainable_params=sum(p.numel() for p in fvit.parameters() if p.requires_grad),
                  fvit_frozen_clip_image_params=sum(p.numel() for p in backbone.clip.visual.parameters()))
    if not args.skip_baseline:
        frcnn = build_faster_rcnn(device)
        fr_inputs, fr_samples = make_batch(frcnn, args.size, device)

        def run_frcnn():
            with torch.no_grad(), autocast():
                return frcnn.predict(fr_inputs, fr_samples)

        fns['faster_rcnn_r50'] = run_frcnn
        params['faster_rcnn_params'] = sum(p.numel() for p in frcnn.parameters())

    with PeakMemory(device) as mem:
        timings = time_interleaved(fns, repeats=args.repeats, warmup=args.warmup, device=device)

    stages = stage_shares(fvit, run_fvit, repeats=args.repeats, device=device)
    rows = []
    for name, t in timings.items():
        rows.append(dict(model=name, median_s=t['median_s'], min_s=t['min_s'], max_s=t['max_s'],
                         images_per_s=1.0 / t['median_s']))
    median = {k: t['median_s'] for k, t in timings.items()}
    summary = dict(clip_share_of_fvit=median['frozen_clip'] / median['fvit'])
    if 'faster_rcnn_r50' in timings:
        summary['fvit_over_faster_rcnn_time'] = median['fvit'] / median['faster_rcnn_r50']
    table = format_table(rows) + '\n\n' + format_table([{k: round(v, 4) for k, v in summary.items()}])
    table += '\n\nF-ViT time per stage (median of the stage-timed calls)\n' + format_table(
        [dict(stage=k, median_s=v['median_s'], share=v['share']) for k, v in stages.items()])
    table += (f'\n\ninput {args.size}x{args.size}, batch 1, device {device}, amp {args.amp}, '
              f'repeats {args.repeats}, warmup {args.warmup}')
    write_results('fvit-infer', dict(machine=machine_info(device), args=vars(args), timings=timings,
                                     summary=summary, stages=stages, params=params, memory=mem.result),
                  table=table, out_dir=args.out_dir, argv=argv)
    return 0


if __name__ == '__main__':
    sys.exit(main())
