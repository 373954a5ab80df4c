"""Benchmark "clim-step": the CLIM training step with and without a per-step caption text forward, against a
plain CLIP contrastive step on the same images.

Random-weight ViT-B/16 (QuickGELU), last 6 image groups trainable, text tower frozen, AdamW. Batch
of 32 images at 224 = one 2x2 + one 3x3 + one 4x4 mosaic + 3 single images; mosaics resized to
``--mosaic-size`` (default 448 on CPU, 1024 on CUDA, the reference's train_image_size). Captions are
seeded COCO-like sentences of 8-18 words. Every step goes through ``CLIM.loss`` (the training code path),
then backward and the optimizer step:

- ``clim_text_full``: caption features from a per-step text forward over all 77 positions (the
  reference's computation, ``text_forward='full'``);
- ``clim_text_trimmed``: per-step text forward up to the batch's longest end-of-text token (the default);
- ``clim_precomputed``: caption features precomputed once (``tools/precompute_caption_features.py``'s
  encoder, a feature file, ``AddCaptionFeatures``): no text forward in the step;
- ``clim_precomputed_upstream_attention`` (``--no-upstream-attention`` skips it): ``clim_precomputed`` with
  open_clip's own attention input projection in the frozen blocks (``fold_frozen_attention=False``: the
  weight-broadcast batched product of :mod:`clim.models.attention_layout`), the baseline of that fix;
- ``plain``: the same model, loss, optimizer and (trimmed, per-step) text forward, image features from
  the ordinary forward of the 32 images at 224 (a plain CLIP contrastive step);
- the CLIM-specific work timed on its own: mosaic building (tiling + bicubic resize) and region
  pooling (RoIAlign forward + backward on the dense maps), and the caption text forward alone.

Before timing, the losses of the three CLIM variants on the same weights are compared (``loss_diff_*``).
Reports median / min / max of ``--repeats`` timed steps after ``--warmup`` (round-robin), images/s,
the ratios, peak memory per step and the machine. CUDA: autocast fp16 on by default (``--no-amp``).

    python -m benchmarks.clim_step --repeats 3
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os.path as osp
import sys
import tempfile

import numpy as np
import torch

from benchmarks.common import PeakMemory, format_table, machine_info, time_interleaved, time_it, write_results

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

_WORDS = ('a man woman child dog cat horse bus train plate pizza table street sign red white blue small large '
          'old young two three sitting standing riding eating holding next to on in of with near the front '
          'behind top under field kitchen road beach grass snow water room window building').split()


def coco_like_captions(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct seeded sentences of 8-18 words (COCO captions: ~10-20 BPE tokens)."""
    rng = np.random.default_rng(seed)
    return [f'{" ".join(rng.choice(_WORDS, size=int(rng.integers(8, 19))))} {i}' for i in range(n)]


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
    p.add_argument('--amp', action=argparse.BooleanOptionalAction, default=None,
                   help='autocast (fp16 on CUDA, bf16 on CPU); default: on for CUDA, off for CPU')
    p.add_argument('--threads', type=int, help='torch intra-op threads (default: torch default)')
    p.add_argument('--upstream-attention', action=argparse.BooleanOptionalAction, default=True,
                   help='also time clim_precomputed with open_clip\'s own attention input projection in the frozen '
                        'blocks (fold_frozen_attention=False, the weight-broadcast batched product)')
    p.add_argument('--out-dir', help='results directory (default benchmarks/results)')
    return p.parse_args(argv)


def _precompute_tool():
    spec = importlib.util.spec_from_file_location('precompute_caption_features',
                                                  osp.join(REPO_ROOT, 'tools', 'precompute_caption_features.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import clim  # noqa: F401
    from mmengine.structures import BaseDataElement

    from clim.datasets import AddCaptionFeatures, save_caption_features
    from clim.method import CLIM, build_mosaics, mosaic_boxes, plan_mosaics
    from clim.models.attention_layout import fold_attention_inputs, unfold_attention_inputs
    device = torch.device(args.device)
    amp_on = args.amp if args.amp is not None else device.type == 'cuda'
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
    captions = coco_like_captions(args.batch)
    tokens = model.clip.tokenize(captions).to(device)
    token_samples = []
    for cap, tok in zip(captions, tokens):
        s = BaseDataElement(metainfo=dict(caption=cap))
        s.text = tok
        token_samples.append(s)

    # The precomputed path as training runs it: the tool's encoder, a feature file, AddCaptionFeatures.
    tmp = tempfile.TemporaryDirectory()
    feature_file = osp.join(tmp.name, 'caption_features.pt')
    with torch.no_grad():
        feats = _precompute_tool().encode_captions(model, captions, batch_size=256)
    save_caption_features(feature_file, captions, feats, model.text_feature_key())
    add = AddCaptionFeatures(feature_file)
    feature_samples = [add(dict(data_samples=BaseDataElement(metainfo=dict(caption=c))))['data_samples']
                       for c in captions]
    amp = torch.autocast(device.type, dtype=torch.float16 if device.type == 'cuda' else torch.bfloat16,
                         enabled=amp_on)

    def losses(samples: list, text_forward: str, image_fn=None) -> torch.Tensor:
        model.text_forward = text_forward
        with amp:
            if image_fn is None:
                return model.loss(images, samples)['loss_contrast']
            img = image_fn(images).float()
            return model.loss_fn(img, model.caption_features(samples), model.clip.logit_scale.exp())

    def step(samples: list, text_forward: str, image_fn=None) -> None:
        opt.zero_grad(set_to_none=True)
        losses(samples, text_forward, image_fn).backward()
        opt.step()

    variants = dict(
        clim_text_full=lambda: step(token_samples, 'full'),
        clim_text_trimmed=lambda: step(token_samples, 'trimmed'),
        clim_precomputed=lambda: step(feature_samples, 'trimmed'),
        plain=lambda: step(token_samples, 'trimmed', lambda x: model.clip.encode_image(x, normalize=True)),
    )
    if args.upstream_attention:
        def upstream_attention_step() -> None:
            unfold_attention_inputs(model.clip)
            try:
                step(feature_samples, 'trimmed')
            finally:
                fold_attention_inputs(model.clip)

        variants['clim_precomputed_upstream_attention'] = upstream_attention_step
    with torch.no_grad():
        ref = {k: float(losses(s, f)) for k, s, f in (('full', token_samples, 'full'),
                                                       ('trimmed', token_samples, 'trimmed'),
                                                       ('precomputed', feature_samples, 'trimmed'))}

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

    def text_forward_only(mode: str):
        def run() -> None:
            model.text_forward = mode
            with amp:
                model.text_features(tokens)
        return run

    memory = {}
    for name, fn in variants.items():
        with PeakMemory(device) as mem:
            fn()
        memory[name] = mem.result
        print(f'{name}: one step for peak memory done ({mem.result})', file=sys.stderr, flush=True)
    steps = time_interleaved(variants, repeats=args.repeats, warmup=args.warmup, device=device)
    print(f'timed steps: { {k: round(v["median_s"], 3) for k, v in steps.items()} }', file=sys.stderr, flush=True)
    reps = max(3, args.repeats)
    parts = dict(mosaic_building=time_it(mosaic_building, repeats=reps, device=device),
                 region_pooling=time_it(region_pooling, repeats=reps, device=device),
                 text_forward_full=time_it(text_forward_only('full'), repeats=reps, device=device),
                 text_forward_trimmed=time_it(text_forward_only('trimmed'), repeats=reps, device=device))
    model.text_forward = 'trimmed'
    med = {k: v['median_s'] for k, v in steps.items()}
    rows = [dict(step=k, median_s=t, images_per_s=args.batch / t, **memory[k]) for k, t in med.items()]
    t_extra = parts['mosaic_building']['median_s'] + parts['region_pooling']['median_s']
    summary = dict(
        speedup_precomputed_over_text_full=med['clim_text_full'] / med['clim_precomputed'],
        **({'speedup_folded_over_upstream_attention': med['clim_precomputed_upstream_attention']
            / med['clim_precomputed']} if args.upstream_attention else {}),
        speedup_precomputed_over_text_trimmed=med['clim_text_trimmed'] / med['clim_precomputed'],
        speedup_trimmed_over_full=med['clim_text_full'] / med['clim_text_trimmed'],
        ratio_clim_over_plain=med['clim_precomputed'] / med['plain'],
        ratio_clim_text_trimmed_over_plain=med['clim_text_trimmed'] / med['plain'],
        text_forward_full_s=parts['text_forward_full']['median_s'],
        text_forward_trimmed_s=parts['text_forward_trimmed']['median_s'],
        mosaic_building_s=parts['mosaic_building']['median_s'],
        region_pooling_s=parts['region_pooling']['median_s'],
        share_of_clim_step=t_extra / med['clim_precomputed'],
        overhead_vs_encoder_work=t_extra / max(med['clim_precomputed'] - t_extra, 1e-9),
        loss_diff_precomputed_vs_trimmed=abs(ref['precomputed'] - ref['trimmed']),
        loss_diff_trimmed_vs_full=abs(ref['trimmed'] - ref['full']),
    )
    table = format_table(rows) + '\n\n' + '\n'.join(
        f'{k}: {v:.4g}' for k, v in summary.items()) + (
        f'\n\nbatch {args.batch}, images {size}, mosaics {mosaic_size}, device {device}, amp {amp_on}, '
        f'repeats {args.repeats}, warmup {args.warmup}, threads {torch.get_num_threads()}')
    config = dict(model=args.model_cfg or args.model_name, batch=args.batch, image_size=size,
                  mosaic_size=mosaic_size, unlocked_groups=args.unlocked_groups,
                  trainable_params=sum(p.numel() for p in params),
                  mosaics=[(g.n, g.count) for g in plan.groups], singles=plan.num_singles, amp=amp_on,
                  device=str(device), caption_eot_max=int(tokens.argmax(-1).max()) + 1,
                  context_length=model.clip.context_length)
    payload = dict(machine=machine_info(device), config=config, steps=steps, parts=parts, rows=rows,
                   summary=summary, losses=ref)
    write_results('clim-step', payload, table, out_dir=args.out_dir, argv=argv)
    tmp.cleanup()
    return payload


if __name__ == '__main__':
    main()
