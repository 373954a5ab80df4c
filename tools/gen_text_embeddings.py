"""Write class text embeddings (a detector's classifier) from any CLIP our wrapper loads.

Output: an L2-normalized float32 ``.npy`` of shape (classes [+1 background], D), rows in class-list
order. Example::

    python tools/gen_text_embeddings.py --model-name ViT-B-16 --pretrained ckpt/ViT-B-16.pt \\
        --classes ov_coco_65 --templates full --out data/text/ov_coco_65_vitb16.npy
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from pathlib import Path

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, REPO_ROOT)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    arch = p.add_mutually_exclusive_group()
    arch.add_argument('--model-name', help='open_clip model name, e.g. ViT-B-16, RN50x64')
    arch.add_argument('--model-cfg', help='open_clip model config: a .json file or an inline JSON object')
    p.add_argument('--pretrained', help='CLIP weights: OpenAI .pt, open_clip checkpoint or CLIM export')
    p.add_argument('--quick-gelu', choices=['auto', 'true', 'false'], default='auto',
                   help='activation override (auto: detected from the checkpoint)')
    names = p.add_mutually_exclusive_group(required=True)
    names.add_argument('--classes', choices=['ov_coco_65', 'coco_80', 'coco_panoptic_133'],
                       help='a built-in class list (clim/models/class_names.py)')
    names.add_argument('--class-file', help='text file with one class name per line')
    p.add_argument('--templates', choices=['full', 'short', 'none'], default='full',
                   help='prompt-template ensemble (full: 80 prompts; none: the bare name)')
    p.add_argument('--background', action='store_true',
                   help='append a normalized row for "background" (same templates)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--batch-size', type=int, default=256, help='prompts per text forward')
    p.add_argument('--out', required=True, help='output .npy file')
    args = p.parse_args(argv)
    if not (args.model_name or args.model_cfg or args.pretrained):
        p.error('give --model-name, --model-cfg or a --pretrained CLIM export that records its architecture')
    return args


def _model_cfg(value: str | None) -> dict | None:
    if value is None:
        return None
    if osp.isfile(value):
        return json.loads(Path(value).read_text())
    return json.loads(value)


def read_class_file(path: str) -> list[str]:
    """Class names from a file, one per line (blank lines and ``#`` comments skipped)."""
    lines = [ln.strip() for ln in Path(path).read_text(encoding='utf-8').splitlines()]
    names = [ln for ln in lines if ln and not ln.startswith('#')]
    if not names:
        raise SystemExit(f'no class names in {path}')
    return names


def main(argv: list[str] | None = None) -> Path:
    """Run the tool; returns the written path."""
    args = parse_args(argv)
    import numpy as np
    import torch

    from clim.models import CLIPModel, get_class_names, prompt_name

    names = read_class_file(args.class_file) if args.class_file else [prompt_name(n) for n in
                                                                        get_class_names(args.classes)]
    quick_gelu = {'auto': None, 'true': True, 'false': False}[args.quick_gelu]
    model = CLIPModel(model_name=args.model_name, model_cfg=_model_cfg(args.model_cfg),
                      pretrained=args.pretrained, quick_gelu=quick_gelu).to(args.device).eval()
    if args.background:
        names = names + ['background']
    with torch.no_grad():
        emb = model.encode_class_names(names, templates=args.templates, batch_size=args.batch_size)
    emb = emb.float().cpu().numpy().astype(np.float32)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, emb)
    print(f'wrote {out}: {emb.shape[0]} rows ({len(names) - int(args.background)} classes'
          f'{" + background" if args.background else ""}) x {emb.shape[1]}, templates={args.templates}, '
          f'quick_gelu={model.quick_gelu}')
    return out


if __name__ == '__main__':
    main()
