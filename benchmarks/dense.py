"""Benchmark "dense": CLIM's v2 dense feature map vs the plain open_clip image forward.

For each input size, in the same process and on the same (random) ViT-B/16 weights:
- ``v2_dense``: ``CLIPModel.dense_features(images)`` (positional embeddings interpolated from the
  native grid, last block without query-key attention, ln_post + proj on every patch token);
- ``plain_forward``: upstream open_clip's ``model.visual(images)`` on a model built for that input
  size (``force_image_size``), i.e. the ordinary class-token forward; for an EVA-02 CLIP
  (``--model-name EVA02-B-16``) upstream timm's ``Eva`` forward built for that size (its own positional
  grid and rotary table), with the same weights.
Reports median / min / max over ``--repeats`` timed calls after ``--warmup`` untimed ones, the ratio
v2 / plain (aim: <= 1.05), peak memory and the machine. Runs unchanged on CUDA (``--device cuda``).

    python -m benchmarks.dense --sizes 640 1024 --repeats 3
    python -m benchmarks.dense --model-name EVA02-B-16 --sizes 640 1024 --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys

import open_clip
import torch
from torch import nn

from benchmarks.common import PeakMemory, format_table, machine_info, time_interleaved, write_results
from clim.models import build_clip
from clim.models.eva_clip import EvaCLIPModel

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model-name', default='ViT-B-16',
                   help='open_clip ViT or EVA-02 model name, e.g. ViT-B-16, EVA02-B-16 (random weights)')
    p.add_argument('--model-cfg', help='open_clip model config as inline JSON (instead of --model-name)')
    p.add_argument('--sizes', type=int, nargs='+', default=[640, 1024], help='square input sizes')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--repeats', type=int, default=3, help='timed calls per measurement (median reported)')
    p.add_argument('--warmup', type=int, default=1, help='untimed calls before timing')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--amp', action='store_true', help='autocast (fp16 on CUDA, bf16 on CPU)')
    p.add_argument('--threads', type=int, help='torch intra-op threads (default: torch default)')
    p.add_argument('--out-dir', help='results directory (default benchmarks/results)')
    return p.parse_args(argv)


def _plain_eva(clip: EvaCLIPModel, size: int) -> nn.Module:
    """Upstream timm ``Eva`` built for ``size`` (its own positional grid and rotary table) with ``clip``'s
    image-tower weights; ``.visual(images)`` is its forward."""
    import timm

    vision = clip.model_cfg['vision_cfg']
    trunk = timm.create_model(vision['timm_model_name'], pretrained=False, num_classes=clip.embed_dim,
                              global_pool='token', **dict(vision.get('timm_kwargs', {}), img_size=size))
    sd = clip.visual.trunk.state_dict()
    sd['pos_embed'] = trunk.state_dict()['pos_embed']
    trunk.load_state_dict(sd)
    return nn.ModuleDict(dict(visual=trunk))


def _plain_model(args: argparse.Namespace, size: int, clip: nn.Module) -> torch.nn.Module:
    """Upstream open_clip (or timm, for EVA) built for ``size`` with our weights (its own positional grid)."""
    if isinstance(clip, EvaCLIPModel):
        return _plain_eva(clip, size)
    weights = clip.clip.state_dict()
    if args.model_cfg:
        cfg = json.loads(args.model_cfg)
        cfg['vision_cfg']['image_size'] = size
        plain = open_clip.CLIP(**cfg)
    else:
        plain = open_clip.create_model(args.model_name, force_image_size=size)
    sd = dict(weights)
    sd['visual.positional_embedding'] = plain.state_dict()['visual.positional_embedding']
    plain.load_state_dict(sd)
    return plain


def measure(args: argparse.Namespace, clip: nn.Module, size: int, device: torch.device) -> dict:
    """Time and memory of v2 dense vs plain forward at one input size."""
    plain = _plain_model(args, size, clip).to(device).eval()
    images = torch.randn(args.batch, 3, size, size, device=device)
    amp_dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16

    def run_v2() -> torch.Tensor:
        with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=args.amp):
            return clip.dense_features(images)

    def run_plain() -> torch.Tensor:
        with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=args.amp):
            return plain.visual(images)

    times = time_interleaved({'plain_forward': run_plain, 'v2_dense': run_v2}, args.repeats, args.warmup,
                             device)
    with PeakMemory(device) as m_plain:
        run_plain()
    with PeakMemory(device) as m_v2:
        out = run_v2()
    return dict(size=size, batch=args.batch, dense_shape=list(out.shape),
                v2_dense=dict(time=times['v2_dense'], memory=m_v2.result),
                plain_forward=dict(time=times['plain_forward'], memory=m_plain.result),
                ratio=times['v2_dense']['median_s'] / times['plain_forward']['median_s'])


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model_cfg = json.loads(args.model_cfg) if args.model_cfg else None
    clip = build_clip(dict(model_name=None if model_cfg else args.model_name, model_cfg=model_cfg)).to(device).eval()
    results, rows = [], []
    for size in args.sizes:
        r = measure(args, clip, size, device)
        results.append(r)
        v2, plain = r['v2_dense'], r['plain_forward']
        row = {'size': size, 'plain fwd (s)': plain['time']['median_s'],
               'v2 dense (s)': v2['time']['median_s'], 'ratio v2/plain': r['ratio'],
               'plain peak RSS (MiB)': plain['memory']['peak_rss_mib'],
               'v2 peak RSS (MiB)': v2['memory']['peak_rss_mib']}
        if device.type == 'cuda':
            row['plain CUDA (MiB)'] = plain['memory']['cuda_peak_alloc_mib']
            row['v2 CUDA (MiB)'] = v2['memory']['cuda_peak_alloc_mib']
        rows.append(row)
    payload = dict(model=model_cfg or args.model_name, device=str(device), amp=args.amp,
                   machine=machine_info(device), repeats=args.repeats, warmup=args.warmup,
                   aim='ratio <= 1.05', results=results)
    write_results('dense', payload, format_table(rows), args.out_dir,
                  argv=[sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    return payload


if __name__ == '__main__':
    main()
