"""Write class text embeddings (a detector's classifier) from any CLIP the project builds.

Output: an L2-normalized float32 ``.npy`` of shape (classes [+1 background], D), rows in class-list
order. The CLIP is, by what is given:

- a zoo name (``--model``, ``ckpt/README.md``), e.g. UniMed-CLIP or BiomedCLIP with their own Hugging Face
  text towers; ``--pretrained`` then names a CLIM export of that model, ``--model-cfg`` overrides its
  architecture;
- open_clip weights (``--model-name`` / ``--model-cfg`` + ``--pretrained``: OpenAI ``.pt``, open_clip
  checkpoints, hub caches);
- a CLIM export alone (``--pretrained``), whatever class wrote it (exports record it).

Examples::

    python tools/gen_text_embeddings.py --model-name ViT-B-16 --pretrained ckpt/ViT-B-16.pt \\
        --classes ov_coco_65 --templates full --out data/text/ov_coco_65_vitb16.npy
    python tools/gen_text_embeddings.py --model unimed-clip-vit-b-16 \\
        --classes ov_coco_65 --out data/ov_coco/ov_coco_65_unimed_vitb16.npy
    python tools/gen_text_embeddings.py --model-name ViT-B-16 --pretrained ckpt/ViT-B-16.pt \\
        --classes coco_panoptic_133 --templates vild --out data/coco/coco_panoptic_133_vild_vitb16.npy
    python tools/gen_text_embeddings.py --model-name ViT-B-16 --pretrained ckpt/ViT-B-16.pt \\
        --classes lvis_v1 --templates vild --out data/lvis_v1/lvis_v1_1203_vitb16.npy

``--attn12`` also writes BARON-KD's "attn12" file next to ``--out`` (``OUT_attn12.npy``); the reference's
``coco_clip_hand_craft_attn12.npy`` is::

    python tools/gen_text_embeddings.py --model-name ViT-B-32 --pretrained ckpt/ViT-B-32.pt --quick-gelu true \\
        --classes coco_80 --templates vild --attn12 --out data/ov_coco/coco_clip_hand_craft.npy

``--templates vild`` is the CLIM / CLIPSelf references' recipe (63 ViLD prompts,
``clim.models.templates.encode_vild_class_names``): it words the *raw* class names itself
(``'sky-other-merged'`` stays that), as the reference reads them from the dataset json; the other
template sets use the natural-language names of ``clim.models.class_names.prompt_name``.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
from pathlib import Path



def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', help='zoo name of a CLIP (clim/models/zoo.py, ckpt/README.md), e.g. '
                                   'openai-vit-b-16, unimed-clip-vit-b-16, biomedclip')
    arch = p.add_mutually_exclusive_group()
    arch.add_argument('--model-name', help='open_clip model name, e.g. ViT-B-16, RN50x64, EVA02-B-16')
    arch.add_argument('--model-cfg', help='open_clip model config: a .json file or an inline JSON object '
                                          '(with --model: replaces the zoo entry\'s)')
    p.add_argument('--pretrained', help='CLIP weights: OpenAI .pt, open_clip checkpoint or CLIM export '
                                        '(with --model: a CLIM export of that model)')
    p.add_argument('--quick-gelu', choices=['auto', 'true', 'false'], default='auto',
                   help='activation override (auto: detected from the checkpoint)')
    names = p.add_mutually_exclusive_group(required=True)
    names.add_argument('--classes', choices=['ov_coco_65', 'coco_80', 'coco_panoptic_133', 'lvis_v1'],
                       help='a built-in class list (clim/models/class_names.py; lvis_v1: the 1203 LVIS v1 '
                            'names in category-id order)')
    names.add_argument('--class-file', help='text file with one class name per line')
    p.add_argument('--templates', choices=['full', 'short', 'none', 'vild'], default='full',
                   help='prompt-template ensemble (full: 80 prompts; none: the bare name; vild: the 63 '
                        'ViLD prompts of the CLIM / CLIPSelf references, on the raw class names)')
    p.add_argument('--attn12', action='store_true',
                   help='also write OUT_attn12.npy next to OUT: BARON-KD\'s "attn12" class embeddings, the '
                        'last text block\'s EOT output (no ln_final / projection) of the same prompts, each '
                        'normalized, averaged, normalized (--templates vild: the reference\'s '
                        'coco_clip_hand_craft_attn12 recipe, computed in float32)')
    p.add_argument('--background', action='store_true',
                   help='append a normalized row for "background" (same templates)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--batch-size', type=int, default=256, help='prompts per text forward')
    p.add_argument('--out', required=True, help='output .npy file')
    args = p.parse_args(argv)
    if args.model and args.model_name:
        p.error('--model (a zoo entry) already names the architecture: drop --model-name')
    if not (args.model or args.model_name or args.model_cfg or args.pretrained):
        p.error('give --model, --model-name, --model-cfg or a --pretrained CLIM export that records its '
                'architecture')
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


def class_names(classes: str | None, class_file: str | None, templates: str) -> list[str]:
    """The names to encode: a class file's lines as written, or a built-in list -- worded by
    :func:`clim.models.class_names.prompt_name`, except for ``'vild'``, whose recipe words the raw
    dataset names itself (``'sky-other-merged'``, as the reference reads them from the json)."""
    from clim.models import get_class_names, prompt_name

    if class_file:
        return read_class_file(class_file)
    return [n if templates == 'vild' else prompt_name(n) for n in get_class_names(classes)]


def build_clip(model: str | None = None, model_name: str | None = None, model_cfg: dict | None = None,
               pretrained: str | None = None, quick_gelu: bool | None = None):
    """The CLIP to encode the class names with, built as the detectors and CLIM build theirs
    (:func:`clim.models.build_clip`: the class follows the weights and the name, e.g. ``EVA02-B-16`` or an EVA
    release file builds the EVA-02 CLIP, a CLIM export of an ``HFTextCLIPModel`` rebuilds that class).

    Raises:
        SystemExit: ``model`` is not a zoo entry, or names one without a text tower to encode with.
    """
    from clim.models.factory import build_clip as build
    from clim.models.hub import find_entry
    from clim.models.zoo import ZOO

    given = {k: v for k, v in dict(model_name=model_name, model_cfg=model_cfg, pretrained=pretrained,
                                   quick_gelu=quick_gelu).items() if v is not None}
    if model is not None:
        entry = find_entry(name=model)
        if entry is None:
            raise SystemExit(f'unknown zoo model {model!r}; known: {", ".join(sorted(ZOO))} (a weights file '
                             f'goes to --pretrained)')
        if entry.kind != 'clip':
            # Vision backbones have no text tower; CLIPSeg scores prompts on its decoder's masks, so it has
            # no joint embedding a detector's classifier could live in.
            raise SystemExit(f'{entry.name} is a {entry.kind} model, not a CLIP: it has no class-name embeddings')
        given.pop('model_name', None)
        return build(dict(type='ZooModel', name=entry.name, **given))
    return build(given)


def main(argv: list[str] | None = None) -> Path:
    """Run the tool; returns the written path."""
    args = parse_args(argv)
    import numpy as np
    import torch

    from clim.models.templates import encode_vild_class_names

    vild = args.templates == 'vild'
    names = class_names(args.classes, args.class_file, args.templates)
    quick_gelu = {'auto': None, 'true': True, 'false': False}[args.quick_gelu]
    model = build_clip(args.model, args.model_name, _model_cfg(args.model_cfg), args.pretrained,
                       quick_gelu).to(args.device).eval()
    if args.background:
        names = names + ['background']
    with torch.no_grad():
        emb = (encode_vild_class_names(model, names, batch_size=args.batch_size) if vild else
               model.encode_class_names(names, templates=args.templates, batch_size=args.batch_size))
    emb = emb.float().cpu().numpy().astype(np.float32)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, emb)
    print(f'wrote {out}: {emb.shape[0]} rows ({len(names) - int(args.background)} classes'
          f'{" + background" if args.background else ""}) x {emb.shape[1]}, templates={args.templates}, '
          f'quick_gelu={model.quick_gelu}')
    if args.attn12:
        attn12 = write_attn12(model, names, args.templates, out.with_name(out.stem + '_attn12.npy'))
        print(f'wrote {attn12}: attn12 (last-block EOT) embeddings of the same prompts')
    return out


def write_attn12(model, names: list[str], templates: str, path: Path) -> Path:
    """Write the "attn12" embeddings of ``names`` (``ovdet.models.baron.attn12_prompt_embeddings``)."""
    import numpy as np
    import torch

    from ovdet.models.baron import attn12_prompt_embeddings

    if not hasattr(getattr(model, 'clip', None), 'transformer'):
        raise SystemExit(f'--attn12 needs an open_clip text transformer; {type(model).__name__} has none')
    with torch.no_grad():
        emb = attn12_prompt_embeddings(model, names, templates)
    np.save(path, emb.float().cpu().numpy().astype(np.float32))
    return path


if __name__ == '__main__':
    main()
