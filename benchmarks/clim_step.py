"""Benchmark "clim-step": one CLIM training step vs a plain CLIP contrastive step on the same images.

Random-weight ViT-B/16 (QuickGELU), last 6 image groups trainable, text tower frozen, AdamW. Batch
of 32 images at 224 = one 2x2 + one 3x3 + one 4x4 mosaic + 3 single images; mosaics resized to
``--mosaic-size`` (default 448 on CPU, 1024 on CUDA, the reference's train_image_size).

- ``clim``: ``CLIM.image_features`` (mosaics -> v2 dense maps -> RoIAlign on pseudo boxes, singles
  through the ordinary forward) + frozen text + contrastive loss, backward, optimizer step;
- ``plain``: the same model, loss and optimizer, image features from the ordinary forward of the 32
  images at 224 (a plain CLIP contrastive step);
- the CLIM-specific work timed on its own: mosaic building (tiling + bicubic resize) and region
  pooling (RoIAlign forward + backward on the dense maps). Their share of the CLIM step, and their
  cost relative to the encoder work of the step (aim: <= 10%).

Reports median / min / max of ``--repeats`` timed steps after ``--warmup``, images/s, the ratio, peak
memory and the machine.

    python benchmarks/clim_step.py --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
for p in (REPO_ROOT, osp.dirname(osp.abspath(__file__))):
    if p not in sys.path:
        sys.path.insert(0, p)

import torch  # noqa: E402

from _common import PeakMemory, format_table, machine_info, time_interleaved, time_it, write_results  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model-name', default='ViT-B-16', help='open_clip model name (random weights)')
    p.add_argument('--model-cfg', help='open_clip model config as inline JSON (instead of --model-name)')
    p.add_argument('--batch', type=int, default=32, help='images per step (>= 29)')
    p.add_argument('--image-size', type=int, default=None, help='single-image size (default: the model\'s)')
    p.add_argument('--mosaic-size', type=int, default=None,
                   help='train_image_size (default 448 CPU / 1024 CUDA)')
    p.add_argument('--unlocked-groups', type=int, default=6)
    p.add_argument('--repeats', type=int, default=3, help='timed steps per measurement (median reported)')
    p.add_argument('--warmup', type=int, default=1, help='untimed steps before timing')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--amp', action='store_true', help='autocast (fp16 on CUDA, bf16 on CPU)')
    p.add_argument('--threads', type=int, help='torch intra-op threads (default: torch default)')
    p.add_argument('--out-dir', help='results directory (default benchmarks/results)')
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import clim  # noqa: F401
    from clim.method import CLIM, build_mosaics, mosaic_boxes, plan_mosaics
    device = torch.device(args.device)
    mosaic_size = args.mosaic_size or (1024 if device.type == 'cuda' else 448)
    clip_cfg = dict(type='CLIPModel', quick_gelu=True)
    if args.model_cfg:
        clip_cfg['model_cfg'] = json.loads(args.model_cfg)
    else:
        clip_cfg['model_name'] = args.model_name
    torch.manual_seed(0)
    model = CLIM(clip=clip_cfg, train_image_size=mosaic_size, unlocked_groups=args.unlocked_groups).to(device)
    model.train()
    size = args.image_size or model.clip.image_size[0]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.1)
    g = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (args.batch, 3, size, size), generator=g, dtype=torch.uint8)
    images = model.data_preprocessor(dict(inputs=list(raw), data_samples=None), True)['inputs'].to(device)
    tokens = model.clip.tokenize([f'a photo of object number {i}' for i in range(args.batch)]).to(device)
    amp = torch.autocast(device.type, dtype=torch.float16 if device.type == 'cuda' else torch.bfloat16,
                         enabled=args.amp)

    def step(image_fn) -> None:
        opt.zero_grad(set_to_none=True)
        with amp:
            img = image_fn(images).float()
            txt = model.text_features(tokens).float()
            loss = model.loss_fn(img, txt, model.clip.logit_scale.exp())
        loss.backward()
        opt.step()

    def clim_step() -> None:
        step(model.image_features)

    def plain_step() -> None:
        step(lambda x: model.clip.encode_image(x, normalize=True))

    plan = plan_mosaics(args.batch, model.mosaic_choices)

    def mosaic_building() -> list:
        with torch.no_grad():
            return [build_mosaics(images[g.start:g.stop], g.n, mosaic_size) for g in plan.groups]

    with torch.no_grad():
        dense_shape = model.clip.dense_features(torch.cat(mosaic_building())[:1]).shape[1:]
    boxes = [b.to(device) for g in plan.groups for b in mosaic_boxes(g.n, g.count)]
    dense = torch.randn(len(boxes), *dense_shape, device=device, requires_grad=True)

    def region_pooling() -> None:
        model.clip.pool_boxes(dense, boxes, normalized=True).sum().backward()

    with PeakMemory(device) as mem_clim:
        clim_step()
    with PeakMemory(device) as mem_plain:
        plain_step()
    steps = time_interleaved(dict(clim=clim_step, plain=plain_step), repeats=args.repeats, warmup=args.warmup,
                             device=device)
    parts = dict(mosaic_building=time_it(mosaic_building, repeats=max(3, args.repeats), device=device),
                 region_pooling=time_it(region_pooling, repeats=max(3, args.repeats), device=device))
    t_clim, t_plain = steps['clim']['median_s'], steps['plain']['median_s']
    t_extra = parts['mosaic_building']['median_s'] + parts['region_pooling']['median_s']
    rows = [
        dict(step='clim', median_s=t_clim, images_per_s=args.batch / t_clim, **mem_clim.result),
        dict(step='plain', median_s=t_plain, images_per_s=args.batch / t_plain, **mem_plain.result),
    ]
    summary = dict(
        ratio_clim_over_plain=t_clim / t_plain,
        mosaic_building_s=parts['mosaic_building']['median_s'],
        region_pooling_s=parts['region_pooling']['median_s'],
        share_of_clim_step=t_extra / t_clim,
        overhead_vs_encoder_work=t_extra / max(t_clim - t_extra, 1e-9),
    )
    table = format_table(rows) + '\n\n' + format_table([summary])
    config = dict(model=args.model_cfg or args.model_name, batch=args.batch, image_size=size,
                  mosaic_size=mosaic_size,
                  unlocked_groups=args.unlocked_groups, trainable_params=sum(p.numel() for p in params),
                  mosaics=[(g.n, g.count) for g in plan.groups], singles=plan.num_singles, amp=args.amp,
                  device=str(device))
    payload = dict(machine=machine_info(device), config=config, steps=steps, parts=parts, rows=rows,
                   summary=summary)
    write_results('clim-step', payload, table, out_dir=args.out_dir, argv=argv)
    return payload


if __name__ == '__main__':
    main()
