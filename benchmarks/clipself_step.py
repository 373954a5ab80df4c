"""Benchmark "clipself-step": the CLIPSelf training step against a plain forward of the same images.

Random-weight EVA-02 CLIP B/16 (``--model EVA02-B-16``, the reference's tower; ``--model ViT-B-16`` for
OpenAI's, QuickGELU) in a :class:`~clim.method.CLIPSelf` with every block trainable (the reference's
``--lock-image-unlocked-groups 12``), AdamW. A batch of ``--batch`` (2, the reference's per-GPU batch) full
images at ``--image-size`` (default 1024 on CUDA, the reference's ``det_image_size``; 448 on CPU), each with
``--boxes`` (20, ``max_boxes``) cells of a 4 x 5 grid and their crops at the model's input size (224).
Every step goes through ``CLIPSelf.loss`` (the training code path), then backward and the optimizer step:

- ``clipself_step``: student v2 dense map of the full images + RoIAlign over the boxes, teacher forward of
  the B x boxes crops (no grad), 1 - mean cosine, backward, AdamW step;
- ``plain_forward``: the baseline, the same model's ordinary image forward of the same full images at the
  same size, no grad (what an inference pass of these images costs);
- the parts timed on their own: ``teacher_crops`` (the teacher's forward of the crops) and
  ``student_fwd_bwd`` (dense map + pooling + backward of the pooled features, no teacher, no step).

Reports median / min / max of ``--repeats`` timed runs after ``--warmup`` (round-robin), images/s, the ratio
step / plain forward, peak memory per variant and the machine. CUDA: autocast fp16 on by default
(``--no-amp``).

    python -m benchmarks.clipself_step --repeats 3
    python -m benchmarks.clipself_step --model ViT-B-16
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from benchmarks.common import PeakMemory, format_table, machine_info, time_interleaved, time_it, write_results

GRID = (4, 5)  # rows x cols: 20 cells, the reference's max_boxes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default='EVA02-B-16',
                   help="open_clip model name (random weights): 'EVA02-B-16' (default), 'ViT-B-16' (OpenAI, "
                        'QuickGELU), ...')
    p.add_argument('--model-cfg', help='open_clip-style model config as inline JSON (instead of --model; EVA '
                                       'when it names a timm eva02 trunk)')
    p.add_argument('--batch', type=int, default=2, help='full images per step')
    p.add_argument('--image-size', type=int, default=None, help='student input (default 1024 CUDA / 448 CPU)')
    p.add_argument('--boxes', type=int, default=20, help=f'boxes (and crops) per image, <= {GRID[0] * GRID[1]}')
    p.add_argument('--unlocked-groups', type=int, default=None, help='trainable trailing groups (default: all blocks)')
    p.add_argument('--repeats', type=int, default=3, help='timed runs per measurement (median reported)')
    p.add_argument('--warmup', type=int, default=1, help='untimed runs before timing')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--amp', action=argparse.BooleanOptionalAction, default=None,
                   help='autocast (fp16 on CUDA, bf16 on CPU); default: on for CUDA, off for CPU')
    p.add_argument('--threads', type=int, help='torch intra-op threads (default: torch default)')
    p.add_argument('--out-dir', help='results directory (default benchmarks/results)')
    return p.parse_args(argv)


def clip_config(args: argparse.Namespace) -> dict:
    """The ``type='CLIP'`` factory config of ``--model`` / ``--model-cfg`` (random weights)."""
    cfg: dict = dict(type='CLIP', pretrained=None)
    if args.model_cfg:
        cfg['model_cfg'] = json.loads(args.model_cfg)
        eva = 'eva' in str(cfg['model_cfg'].get('vision_cfg', {}).get('timm_model_name', '')).lower()
    else:
        cfg['model_name'] = args.model
        eva = args.model.upper().startswith('EVA')
    if not eva:
        cfg['quick_gelu'] = True  # OpenAI's released ViTs
    return cfg


def grid_boxes(n: int) -> torch.Tensor:
    """(n, 4) normalized x1y1x2y2: the first n cells of the 4 x 5 grid, row-major."""
    rows, cols = GRID
    if not 1 <= n <= rows * cols:
        raise ValueError(f'--boxes must be in 1..{rows * cols}, got {n}')
    cells = [(j / cols, i / rows, (j + 1) / cols, (i + 1) / rows) for i in range(rows) for j in range(cols)]
    return torch.tensor(cells[:n], dtype=torch.float32)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import clim  # noqa: F401  (registers CLIPSelf and the CLIP factory)
    from mmengine.structures import BaseDataElement

    from clim.method import CLIPSelf
    device = torch.device(args.device)
    amp_on = args.amp if args.amp is not None else device.type == 'cuda'
    size = args.image_size or (1024 if device.type == 'cuda' else 448)
    torch.manual_seed(0)
    model = CLIPSelf(clip=clip_config(args), unlocked_groups=args.unlocked_groups or 0,
                     data_preprocessor=dict(type='CLIPSelfDataPreprocessor', pad_size=size))
    groups = args.unlocked_groups
    if groups is None:  # every block: the groups after [stem] and [pos embed]
        groups = len(model.clip.image_groups()) - 2
        model.clip.lock_image_tower(groups)
    model.to(device)
    model.train()
    crop = model.clip.image_size[0]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)

    g = torch.Generator().manual_seed(0)
    boxes = grid_boxes(args.boxes)
    samples = []
    for i in range(args.batch):
        s = BaseDataElement(metainfo=dict(img_id=i))
        s.boxes = boxes.clone()
        s.crops = torch.randint(0, 256, (args.boxes, 3, crop, crop), generator=g, dtype=torch.uint8)
        samples.append(s)
    raw = torch.randint(0, 256, (args.batch, 3, size, size), generator=g, dtype=torch.uint8)
    data = model.data_preprocessor(dict(inputs=list(raw), data_samples=samples), True)
    images, samples = data['inputs'].to(device), data['data_samples']
    crops = torch.cat([s.crop_inputs for s in samples]).to(device)
    amp = torch.autocast(device.type, dtype=torch.float16 if device.type == 'cuda' else torch.bfloat16,
                         enabled=amp_on)

    def clipself_step() -> None:
        opt.zero_grad(set_to_none=True)
        with amp:
            loss = model.loss(images, samples)['loss_cosine']
        loss.backward()
        opt.step()

    def plain_forward() -> None:
        with torch.no_grad(), amp:
            model.clip.encode_image(images, normalize=True)

    def teacher_crops() -> None:
        with torch.no_grad(), amp:
            model.teacher.encode_image(crops, normalize=True)

    def student_fwd_bwd() -> None:
        opt.zero_grad(set_to_none=True)
        with amp:
            feats = model.clip.region_features(images, [s.boxes.to(device) for s in samples], normalized=True,
                                               mode=model.dense_mode)
        feats.float().sum().backward()

    with torch.no_grad(), amp:
        first_loss = float(model.loss(images, samples)['loss_cosine'])
    variants = dict(clipself_step=clipself_step, plain_forward=plain_forward)
    memory = {}
    for name, fn in variants.items():
        with PeakMemory(device) as mem:
            fn()
        memory[name] = mem.result
        print(f'{name}: one run for peak memory done ({mem.result})', file=sys.stderr, flush=True)
    steps = time_interleaved(variants, repeats=args.repeats, warmup=args.warmup, device=device)
    print(f'timed: { {k: round(v["median_s"], 3) for k, v in steps.items()} }', file=sys.stderr, flush=True)
    parts = dict(teacher_crops=time_it(teacher_crops, repeats=args.repeats, warmup=args.warmup, device=device),
                 student_fwd_bwd=time_it(student_fwd_bwd, repeats=args.repeats, warmup=args.warmup, device=device))
    med = {k: v['median_s'] for k, v in steps.items()}
    rows = [dict(step=k, median_s=t, images_per_s=args.batch / t, **memory[k]) for k, t in med.items()]
    summary = dict(
        ratio_step_over_plain_forward=med['clipself_step'] / med['plain_forward'],
        teacher_crops_s=parts['teacher_crops']['median_s'],
        student_fwd_bwd_s=parts['student_fwd_bwd']['median_s'],
        teacher_share_of_step=parts['teacher_crops']['median_s'] / med['clipself_step'],
        first_loss=first_loss,
    )
    config = dict(model=args.model_cfg or args.model, clip_class=type(model.clip).__name__, batch=args.batch,
                  image_size=size, crop_size=crop, boxes_per_image=args.boxes, unlocked_groups=groups,
                  trainable_params=sum(p.numel() for p in params), amp=amp_on, device=str(device),
                  dense_map=[size // model.clip.stride] * 2)
    table = format_table(rows) + '\n\n' + '\n'.join(f'{k}: {v:.4g}' for k, v in summary.items()) + (
        f'\n\n{config["clip_class"]} ({config["model"]}), batch {args.batch} at {size} px, {args.boxes} boxes / '
        f'image, crops {crop}, device {device}, amp {amp_on}, repeats {args.repeats}, warmup {args.warmup}, '
        f'threads {torch.get_num_threads()}')
    payload = dict(machine=machine_info(device), config=config, steps=steps, parts=parts, rows=rows,
                   summary=summary)
    write_results('clipself-step', payload, table, out_dir=args.out_dir, argv=argv)
    return payload


if __name__ == '__main__':
    main()
