"""Encode every caption of a training config's caption data once with its frozen text tower.

With a frozen text tower (CLIM) a caption's feature never changes, yet the step would recompute it for
every sample. This tool builds the config's model (its CLIP weights included), reads the captions of
``train_dataloader.dataset`` (a caption json or webdataset shards, wrapped datasets too), encodes each
unique caption with the model's own text forward, and writes one file (format:
``clim/datasets/caption_features.py``). Put ``dict(type='AddCaptionFeatures', path=OUT)`` after
``PackCaptionInputs`` in the pipeline (e.g. ``configs/clim/clim_vitb16_coco_text_features.py``).

The file records its text tower's key (weights hash, tokenizer and context length, text forward):
training refuses a file of any other text tower, and a caption missing from it is an error, so stale
features are never served. Float32 by default: the features are the step's own (bit-identical when
computed from the same batches, else they differ by float rounding, ~1e-7, as the step's own features
do between batch compositions). ``--fp16`` halves the file and rounds every feature to fp16 (relative
error up to 2**-11), so the loss is no longer the in-step one: an explicit trade for memory.

    python tools/precompute_caption_features.py configs/clim/clim_vitb16_coco.py \\
        --out data/coco/caption_features/clim_vitb16_coco.pt
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time
from collections.abc import Iterator


import torch
from mmengine.config import Config, DictAction


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='the training config (its model and train_dataloader.dataset)')
    p.add_argument('--out', required=True, help='output file (.pt)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides (as tools/train.py)')
    p.add_argument('--batch-size', type=int, default=256, help='captions per text forward')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--fp16', action='store_true', help='store float16 (rounds the features; see above)')
    return p.parse_args(argv)


def dataset_captions(ds_cfg: dict) -> Iterator[str]:
    """The captions a (possibly wrapped) caption-dataset config reads, in file order, repeats included."""
    from clim.datasets import expand_shards, iter_shard_captions, load_caption_json

    if 'datasets' in ds_cfg:  # ConcatDataset
        for sub in ds_cfg['datasets']:
            yield from dataset_captions(sub)
        return
    if 'dataset' in ds_cfg:  # RepeatDataset, ClassBalancedDataset, ...
        yield from dataset_captions(ds_cfg['dataset'])
        return
    kind = ds_cfg.get('type')
    root = ds_cfg.get('data_root', '')
    if kind == 'CaptionDataset':
        ann = ds_cfg['ann_file']
        entries, _ = load_caption_json(ann if osp.isabs(ann) or not root else osp.join(root, ann))
        for e in entries:
            yield from e['captions']
    elif kind == 'WebCaptionDataset':
        for shard in expand_shards(ds_cfg['shards'], root):
            yield from iter_shard_captions(shard)
    else:
        raise SystemExit(f'train_dataloader.dataset type {kind!r} is not a caption dataset '
                         f'(CaptionDataset or WebCaptionDataset)')


@torch.no_grad()
def encode_captions(model: torch.nn.Module, captions: list[str], batch_size: int) -> torch.Tensor:
    """(N, D) float32 features of ``captions`` (in that order) from ``model.text_features``, the step's
    own text forward; batches hold captions of similar length so trimmed forwards stay short."""
    clip = model.clip
    order = sorted(range(len(captions)), key=lambda i: len(captions[i]))
    feats = torch.empty(len(captions), clip.embed_dim)
    for i in range(0, len(order), batch_size):
        rows = order[i:i + batch_size]
        feats[rows] = model.text_features(clip.tokenize([captions[r] for r in rows])).float().cpu()
    return feats


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise SystemExit(f'config file {args.config} does not exist')
    import clim  # noqa: F401  (registers the models and datasets)
    import ovdet  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.runner import set_random_seed

    from clim.datasets import save_caption_features
    from clim.method.text_key import text_tower_trains

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    seed = (cfg.get('randomness') or {}).get('seed')
    if seed is not None:  # weights without a checkpoint (tiny configs) come out as the Runner builds them
        set_random_seed(seed)
    model = MODELS.build(cfg.model).to(args.device).eval()
    if not hasattr(model, 'text_feature_key'):
        raise SystemExit(f'{args.config}: model type {cfg.model.get("type")} has no caption text tower')
    if text_tower_trains(model.clip):
        raise SystemExit(f'{args.config} trains its text tower: its caption features change every step, '
                         f'so there is nothing to precompute')
    if cfg.get('load_from'):
        print(f'warning: {args.config} sets load_from={cfg.load_from}; features are computed from the '
              f'model\'s own pretrained weights (training checks the key and refuses them if they differ)')
    t0 = time.perf_counter()
    captions = list(dict.fromkeys(dataset_captions(cfg.train_dataloader.dataset)))
    if not captions:
        raise SystemExit(f'{args.config}: the training data holds no caption')
    feats = encode_captions(model, captions, args.batch_size)
    if args.fp16:
        feats = feats.half()
    key = model.text_feature_key()
    save_caption_features(args.out, captions, feats, key,
                          meta=dict(config=osp.abspath(args.config), device=str(args.device),
                                    torch=str(torch.__version__), batch_size=args.batch_size,
                                    text_forward=model.text_forward))
    print(f'{len(captions)} captions -> {args.out} ({feats.dtype}, {feats.shape[1]} dims) in '
          f'{time.perf_counter() - t0:.1f} s; key {key}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
