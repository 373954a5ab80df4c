"""Benchmark "baron-step": one BARON-KD training step with and without its knowledge-distillation branch.

Builds the detector of a config with random weights (no checkpoint needed: the teacher CLIP gets random
weights of the same architecture, the class embeddings are random unit vectors, no SoCo / backbone init)
and times, on one synthetic two-branch batch (``--batch`` detection images + ``--batch`` KD images, the
reference's 2 + 2 per GPU by default, through the model's ``BranchDataPreprocessor``), round-robin:

- ``baron``: ``BaronKD.loss`` on ``dict(det=..., kd=...)``: RPN + R-CNN losses on the det images, and on
  the KD images the backbone, KD proposal selection (+ boxes cache), neighbourhood sampling, pseudo words
  through the teacher's text encoder, the teacher's spanned-box crops, both queued InfoNCE losses;
  backward; SGD step;
- ``plain``: the same detector with ``baron_enabled = False``, i.e. the detection branch alone (the KD
  batch is ignored); backward; SGD step;
- ``teacher_crops``: ``BaronKD.teacher_targets`` alone (no_grad, as in training) on the rows the
  preceding ``baron`` step cropped (recorded from that call), to give the teacher's share of the extra.

Every ``baron`` step starts from the same seeds (bag draws, orderings, word dropout, RoI sampling), so
each step samples the same bags. Presets: ``tiny`` (configs/tiny/baron_kd_tiny_shapes.py: ResNet-18/16 channels,
tiny CLIP, 128 px) and ``r50`` (configs/baron/baron_kd_r50fpn_ovcoco.py: R50-FPN, ViT-B/32 teacher;
``--image-size`` default 640). A randomly initialised RPN rarely scores above ``score_thr`` (0.85), so
by default the bags come from the ground-truth boxes, which the selection prepends at score 1
(``--gt-per-image``); ``--score-thr 0 --topk N`` emulates a trained RPN that lets up to N proposals per
image into the selection (NMS 0.1 still thins them).

    python -m benchmarks.baron_step --preset tiny --repeats 3
    python -m benchmarks.baron_step --preset r50 --repeats 3 --image-size 512
"""
from __future__ import annotations

import argparse
import os.path as osp
import random
from collections.abc import Callable

import torch

from benchmarks.common import PeakMemory, format_table, machine_info, time_interleaved, write_results

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

PRESETS = dict(tiny=('configs/tiny/baron_kd_tiny_shapes.py', 128), r50=('configs/baron/baron_kd_r50fpn_ovcoco.py', 640))
BRANCHES = ('det', 'kd')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--preset', choices=sorted(PRESETS), default='tiny')
    p.add_argument('--config', help='another BaronKD config (overrides the preset\'s)')
    p.add_argument('--image-size', type=int, help='square input size (default: the preset\'s)')
    p.add_argument('--batch', type=int, default=2, help='images per branch (det and KD) per step')
    p.add_argument('--gt-per-image', type=int, default=4, help='ground-truth boxes per image')
    p.add_argument('--score-thr', '--objectness-thr', dest='score_thr', type=float,
                   help='override kd_proposal_cfg.score_thr (KD proposal selection)')
    p.add_argument('--topk', '--max-per-img', dest='topk', type=int,
                   help='override kd_proposal_cfg.topk (RPN proposals entering the KD selection)')
    p.add_argument('--repeats', type=int, default=5, help='timed steps per variant (median reported)')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, help='torch intra-op threads')
    p.add_argument('--no-write', action='store_true', help='print only, write no results file')
    p.add_argument('--out-dir', help='results directory (default benchmarks/results)')
    return p.parse_args(argv)


def build_model(cfg_path: str, args: argparse.Namespace):
    """``(BaronKD in train mode, its Config)`` with random weights and random class embeddings."""
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
    m.soco_checkpoint = None
    if args.score_thr is not None:
        m.kd_proposal_cfg.score_thr = args.score_thr
    if args.topk is not None:
        m.kd_proposal_cfg.topk = args.topk
    head = m.roi_head.bbox_head
    torch.manual_seed(0)
    # the pseudo-word classifier wants (C, text width) embeddings; the text width is the word dim
    emb = torch.nn.functional.normalize(torch.randn(head.num_classes, head.word_dim), dim=-1)
    head.class_embeddings = np.ascontiguousarray(emb.numpy())
    model = MODELS.build(m)
    model.init_weights()
    model.train()
    return model, cfg


def synthetic_batch(model, cfg, args: argparse.Namespace, size: int) -> dict:
    """The preprocessed two-branch batch: ``dict(inputs=dict(det, kd), data_samples=dict(det, kd))``.

    Random uint8 images, ``--gt-per-image`` random boxes of base classes (the KD source keeps base
    boxes), distinct image ids (the queues and the boxes cache key on them)."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    g = torch.Generator().manual_seed(0)
    base = [i for i, w in enumerate(cfg.model.roi_head.bbox_head.class_weights or []) if w > 0] or [0]
    inputs, samples = [], []
    for branch in BRANCHES:
        for _ in range(args.batch):
            inputs.append(torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8))
            n = args.gt_per_image
            xy = torch.rand(n, 2, generator=g) * size * 0.6
            wh = (0.1 + torch.rand(n, 2, generator=g) * 0.3) * size
            boxes = torch.cat([xy, (xy + wh).clamp(max=size)], dim=1)
            labels = torch.tensor([base[int(i)] for i in torch.randint(len(base), (n,), generator=g)])
            s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0),
                                            pad_shape=(size, size), img_id=len(samples), flip=False, branch=branch))
            s.gt_instances = InstanceData(bboxes=boxes, labels=labels)
            samples.append(s)
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)
    if not isinstance(data['inputs'], dict):
        raise TypeError(f'{cfg.filename}: the data preprocessor did not split the batch into det / KD branches '
                        '(BaronKD configs use BranchDataPreprocessor)')
    return data


def total_loss(losses: dict) -> torch.Tensor:
    """Sum of the ``loss*`` entries (scalars, or lists of per-level scalars as the RPN gives)."""
    return sum(v for k, v in losses.items() if 'loss' in k and torch.is_tensor(v) and v.dim() == 0) + \
        sum(sum(v) for k, v in losses.items() if 'loss' in k and isinstance(v, list))


def reseed(model) -> None:
    """Same bag draws (torch generator), orderings (Python random), word dropout and RoI sampling
    (torch's global RNG) at the start of every step."""
    torch.manual_seed(0)
    model.generator = torch.Generator().manual_seed(0)
    model.rng = random.Random(0)


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
    loss_keys: dict[str, list[str]] = {}

    def step(name: str, kd_enabled: bool) -> Callable[[], None]:
        def fn() -> None:
            reseed(model)
            model.baron_enabled = kd_enabled
            opt.zero_grad(set_to_none=True)
            losses = model.loss(data['inputs'], data['data_samples'])
            total_loss(losses).backward()
            opt.step()
            loss_keys[name] = sorted(losses)
        return fn

    # The teacher's share: record what the KD branch hands teacher_targets, then time that call alone.
    # time_interleaved runs the variants in dict order, so each teacher_crops call follows a baron step.
    teacher_targets = model.teacher_targets
    teacher_args: list[tuple] = []

    def recording_teacher_targets(*a):
        teacher_args[:] = [a]
        return teacher_targets(*a)

    model.teacher_targets = recording_teacher_targets

    def teacher_only() -> None:
        teacher_targets(*teacher_args[0])

    with PeakMemory('cpu') as mem:
        timings = time_interleaved(dict(baron=step('baron', True), plain=step('plain', False),
                                        teacher_crops=teacher_only), repeats=args.repeats, warmup=args.warmup)
    del model.teacher_targets  # back to the class method
    stats = dict(model.last_bag_stats)  # the last BARON step's bag sizes
    crops = int(teacher_args[0][1].shape[0])  # spanned boxes cropped by the teacher per step
    ratio = timings['baron']['median_s'] / timings['plain']['median_s']
    extra = timings['baron']['median_s'] - timings['plain']['median_s']
    teacher_share = timings['teacher_crops']['median_s'] / extra if extra > 0 else float('nan')
    rows = [dict(variant=k, median_s=v['median_s'], min_s=v['min_s'], max_s=v['max_s']) for k, v in timings.items()]
    table = format_table(rows) + (
        f'\n\nratio baron / plain (median): {ratio:.3f}\n'
        f'teacher crops ({crops} spanned boxes) / extra BARON time: {teacher_share:.2f}\n'
        f'preset {args.preset}, image {size}, batch {args.batch} det + {args.batch} KD, '
        f'threads {torch.get_num_threads()}; last BARON step: {stats}')
    payload = dict(preset=args.preset, config=osp.relpath(cfg_path, REPO_ROOT), image_size=size, batch=args.batch,
                   gt_per_image=args.gt_per_image, kd_proposal_cfg=dict(cfg.model.kd_proposal_cfg), bag_stats=stats,
                   loss_keys=loss_keys, timings=timings, ratio=ratio, teacher_crops_over_extra=teacher_share,
                   teacher_crops=crops, memory=mem.result, machine=machine_info('cpu'))
    if args.no_write:
        print(table)
    else:
        write_results('baron-step', payload, table, out_dir=args.out_dir, argv=argv)
    return payload


if __name__ == '__main__':
    main()
