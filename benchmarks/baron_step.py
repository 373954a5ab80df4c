"""Benchmark "baron-step": one BARON-KD training step with and without the bag-of-regions work.

Builds the detector of a config with random weights (no checkpoint needed: the teacher CLIP gets random
weights of the same architecture, the class embeddings are random unit vectors, the backbone has no
pretrained init) and times, on the same synthetic batch, round-robin:

- ``baron``: RPN + RoI losses + proposal selection, neighbourhood sampling, pseudo words through the
  teacher's text encoder, teacher crops through its image encoder, both InfoNCE losses; backward; SGD;
- ``plain``: the same detector with ``baron_enabled = False`` (RPN + RoI losses only); backward; SGD.

Presets: ``tiny`` (configs/tiny/baron_tiny.py: ResNet-18/16 channels, tiny CLIP, 128 px) and ``r50``
(configs/baron/baron_kd_r50fpn_ovcoco.py: R50-FPN, ViT-B/16 teacher; ``--image-size`` default 640).
A randomly initialised RPN rarely scores 0.85, so by default the bags come from the ground-truth boxes
(``--gt-per-image``); ``--objectness-thr 0 --max-per-img N`` emulates a trained RPN that lets N
proposals per image through.

    python benchmarks/baron_step.py --preset tiny --repeats 3
    python benchmarks/baron_step.py --preset r50 --repeats 3 --image-size 512
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
for p in (REPO_ROOT, osp.dirname(osp.abspath(__file__))):
    if p not in sys.path:
        sys.path.insert(0, p)

import torch  # noqa: E402

from _common import PeakMemory, format_table, machine_info, time_interleaved, write_results  # noqa: E402

PRESETS = dict(tiny=('configs/tiny/baron_tiny.py', 128), r50=('configs/baron/baron_kd_r50fpn_ovcoco.py', 640))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--preset', choices=sorted(PRESETS), default='tiny')
    p.add_argument('--config', help='another BARON config (overrides the preset\'s)')
    p.add_argument('--image-size', type=int, help='square input size (default: the preset\'s)')
    p.add_argument('--batch', type=int, default=2, help='images per step')
    p.add_argument('--gt-per-image', type=int, default=4, help='ground-truth boxes per image')
    p.add_argument('--objectness-thr', type=float, help='override proposal_cfg.objectness_thr')
    p.add_argument('--max-per-img', type=int, help='override proposal_cfg.max_per_img')
    p.add_argument('--repeats', type=int, default=5, help='timed steps per variant (median reported)')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, help='torch intra-op threads')
    p.add_argument('--no-write', action='store_true', help='print only, write no results file')
    p.add_argument('--out-dir', help='results directory (default benchmarks/results)')
    return p.parse_args(argv)


def build_model(cfg_path: str, args: argparse.Namespace):
    import numpy as np
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope

    import clim  # noqa: F401
    import ovdet  # noqa: F401

    init_default_scope('mmdet')
    MMLogger.get_instance('baron_step', log_level='WARNING')  # quiet init_weights reports
    cfg = Config.fromfile(cfg_path)
    m = cfg.model
    m.teacher.pretrained = None  # random weights of the same architecture
    m.backbone.init_cfg = None
    m.seed = 0
    if args.objectness_thr is not None:
        m.proposal_cfg.objectness_thr = args.objectness_thr
    if args.max_per_img is not None:
        m.proposal_cfg.max_per_img = args.max_per_img
    torch.manual_seed(0)
    teacher = MODELS.build(m.teacher)
    emb = torch.nn.functional.normalize(torch.randn(m.roi_head.bbox_head.num_classes, teacher.embed_dim), dim=-1)
    m.roi_head.bbox_head.class_embeddings = np.ascontiguousarray(emb.numpy())
    del teacher
    model = MODELS.build(m)
    model.init_weights()
    model.train()
    return model, cfg


def synthetic_batch(model, cfg, args: argparse.Namespace, size: int) -> dict:
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    g = torch.Generator().manual_seed(0)
    base = [i for i, w in enumerate(cfg.model.roi_head.bbox_head.class_weights or []) if w > 0] or [0]
    inputs, samples = [], []
    for _ in range(args.batch):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        n = args.gt_per_image
        xy = torch.rand(n, 2, generator=g) * size * 0.6
        wh = (0.1 + torch.rand(n, 2, generator=g) * 0.3) * size
        boxes = torch.cat([xy, (xy + wh).clamp(max=size)], dim=1)
        labels = torch.tensor([base[int(i)] for i in torch.randint(len(base), (n,), generator=g)])
        s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0),
                                        pad_shape=(size, size), img_id=0))
        s.gt_instances = InstanceData(bboxes=boxes, labels=labels)
        samples.append(s)
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg_path, default_size = PRESETS[args.preset]
    cfg_path = args.config or osp.join(REPO_ROOT, cfg_path)
    size = args.image_size or default_size
    model, cfg = build_model(cfg_path, args)
    data = synthetic_batch(model, cfg, args, size)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)

    def step(enabled: bool):
        def fn():
            model.baron_enabled = enabled
            opt.zero_grad(set_to_none=True)
            losses = model.loss(data['inputs'], data['data_samples'])
            total = sum(v for k, v in losses.items() if 'loss' in k and torch.is_tensor(v) and v.dim() == 0) + \
                sum(sum(v) for k, v in losses.items() if 'loss' in k and isinstance(v, list))
            total.backward()
            opt.step()
        return fn

    # The teacher's share: its image encoder on the crops of one step's bags (spanned boxes of the bags
    # sampled around the ground-truth boxes, plus those boxes as single regions), no_grad as in training.
    g = torch.Generator().manual_seed(0)
    teacher_boxes = []
    for s in data['data_samples']:
        gt = s.gt_instances.bboxes
        bags = model.sampler(gt, s.metainfo['img_shape'], generator=g)
        teacher_boxes.append(torch.cat([bags.spanned, gt]))

    def teacher_only():
        model.teacher_embeddings(data['inputs'], teacher_boxes)

    with PeakMemory('cpu') as mem:
        timings = time_interleaved(dict(baron=step(True), plain=step(False), teacher_crops=teacher_only),
                                   repeats=args.repeats, warmup=args.warmup)
    stats = dict(model.last_bag_stats)  # the last BARON step's bag sizes
    ratio = timings['baron']['median_s'] / timings['plain']['median_s']
    teacher_share = timings['teacher_crops']['median_s'] / (timings['baron']['median_s'] - timings['plain']['median_s'])
    rows = [dict(variant=k, median_s=v['median_s'], min_s=v['min_s'], max_s=v['max_s']) for k, v in timings.items()]
    table = format_table(rows) + (
        f'\n\nratio baron / plain (median): {ratio:.3f}\n'
        f'teacher crops ({sum(len(b) for b in teacher_boxes)} boxes) / extra BARON time: {teacher_share:.2f}\n'
        f'preset {args.preset}, image {size}, batch {args.batch}, threads {torch.get_num_threads()}; last BARON '
        f'step: {stats}')
    payload = dict(preset=args.preset, config=osp.relpath(cfg_path, REPO_ROOT), image_size=size, batch=args.batch,
                   gt_per_image=args.gt_per_image, bag_stats=stats,
                   timings=timings, ratio=ratio, teacher_crops_over_extra=teacher_share,
                   teacher_boxes=sum(len(b) for b in teacher_boxes), memory=mem.result, machine=machine_info('cpu'))
    if args.no_write:
        print(table)
    else:
        write_results('baron-step', payload, table, out_dir=args.out_dir, argv=argv)
    return payload


if __name__ == '__main__':
    main()
