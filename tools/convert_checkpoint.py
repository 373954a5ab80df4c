"""Convert a reference detector checkpoint into one ``tools/test.py`` scores with our config.

    python tools/convert_checkpoint.py configs/fvit/fvit_vitb16_clim_ovcoco.py \\
        clim_fvit_vitb16_ovcoco.pth work_dirs/clim_fvit_vitb16_ovcoco_converted.pth
    python tools/test.py configs/fvit/fvit_vitb16_clim_ovcoco.py work_dirs/clim_fvit_vitb16_ovcoco_converted.pth

BARON-KD configs (``configs/baron/``) read the reference's released BARON-KD detector, a SoCo* R50-FPN
initialisation (the rest from the config's init) or our own (``ovdet/models/baron/checkpoint.py``):

    python tools/convert_checkpoint.py configs/baron/baron_kd_r50fpn_ovcoco.py \\
        baron_kd_coco.pth work_dirs/baron_kd_r50fpn_ovcoco_converted.pth

Reads CLIM's released F-ViT detectors (MMDetection-3 state dicts of its ``FVLM`` class, see
``ovdet/models/detectors/fvit_checkpoint.py``) or our own. Every key of the input must map onto the
model the config builds, and every key of the model must be filled: the only part taken from
elsewhere is CLIP's text tower, which the reference detector does not store and which the config's
CLIP file provides (CLIM leaves the text tower untouched). Anything else that does not fit is an
error listing the keys. The output is an MMEngine-style checkpoint (``state_dict`` + ``meta``), written
atomically.
"""
from __future__ import annotations

import argparse
import copy
import os.path as osp
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='the F-ViT config the checkpoint is for')
    p.add_argument('checkpoint', help='reference (or our) detector checkpoint')
    p.add_argument('out', help='converted checkpoint to write')
    from mmengine.config import DictAction
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                   help='override config settings (key=value), e.g. the CLIP or class-embedding file')
    return p.parse_args(argv)


def convert(config: str, checkpoint: str, out: str, cfg_options: dict | None = None) -> dict:
    """Convert ``checkpoint`` for ``config`` and write ``out``; returns a summary dict."""
    import clim  # noqa: F401  (registers CLIPModel)
    import ovdet  # noqa: F401
    from clim.engine.checkpoint_safety import atomic_torch_save, safe_torch_load
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    from ovdet.models.detectors.fvit_checkpoint import (
        convert_fvit_state_dict,
        detect_fvit_layout,
        fill_from_model,
    )

    if not osp.isfile(config):
        raise SystemExit(f'convert_checkpoint: config {config} not found')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    obj = safe_torch_load(checkpoint, map_location='cpu')
    if not isinstance(obj, dict):
        raise SystemExit(f'convert_checkpoint: {checkpoint} holds a {type(obj).__name__}, expected a state dict '
                         f'or a checkpoint with a state_dict')
    state_dict = obj.get('state_dict', obj)
    if cfg.model.get('type') == 'BaronKD':
        return _convert_baron(cfg, obj, state_dict, checkpoint, out)
    layout = detect_fvit_layout(state_dict)
    model_cfg = copy.deepcopy(cfg.model)
    _require_class_embeddings(model_cfg, 'tools/gen_text_embeddings.py writes it; the command is in the config')
    # Built with the config's CLIP file: the source of the text tower the reference does not store.
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    converted, unfilled = convert_fvit_state_dict(state_dict, model, source=checkpoint)
    full = fill_from_model(converted, unfilled, model, _text_tower_keys(model), source=checkpoint)
    model.load_state_dict(full, strict=True)
    meta = _output_meta(cfg, obj, checkpoint, layout=layout, filled_from_config_clip=len(unfilled),
                        clip_file=model_cfg.backbone.clip_cfg.get('pretrained'))
    atomic_torch_save({'state_dict': full, 'meta': meta}, out)
    return dict(layout=layout, keys=len(state_dict), converted=len(converted), filled=len(unfilled), out=out)


def _convert_baron(cfg, obj: dict, state_dict: dict, checkpoint: str, out: str) -> dict:
    """BARON-KD: the reference's released detector, a SoCo* initialisation or our own checkpoint
    (``ovdet/models/baron/checkpoint.py``)."""
    from clim.engine.checkpoint_safety import atomic_torch_save
    from mmdet.registry import MODELS
    from mmengine.model.utils import revert_sync_batchnorm

    from ovdet.models.baron.checkpoint import convert_baron_state_dict

    model_cfg = copy.deepcopy(cfg.model)
    _require_class_embeddings(model_cfg, 'tools/gen_text_embeddings.py --attn12 writes it')
    model_cfg.soco_checkpoint = None  # a SoCo file is the input here, not part of the init
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    model.init_weights()  # what the parts a SoCo file does not hold start from in training
    full, layout = convert_baron_state_dict(state_dict, model, source=checkpoint)
    model.load_state_dict(full, strict=True)
    meta = _output_meta(cfg, obj, checkpoint, layout=layout, clip_file=model_cfg.teacher.get('pretrained'))
    atomic_torch_save({'state_dict': full, 'meta': meta}, out)
    note = ('queues and boxes cache empty, the rest from the file' if layout == 'baron_reference' else
            'the rest from the config\'s init' if layout == 'soco' else 'all from the file')
    return dict(layout=layout, keys=len(state_dict), converted=len(full), filled=0, out=out, note=note)


def _require_class_embeddings(model_cfg, hint: str) -> None:
    """Exit with a message when the head's class-embedding file (needed to build the model) is missing."""
    head = model_cfg.roi_head.bbox_head
    if isinstance(head.get('class_embeddings'), str) and not osp.isfile(head.class_embeddings):
        raise SystemExit(f'convert_checkpoint: the config\'s class-embedding file {head.class_embeddings} is '
                         f'missing ({hint})')


def _output_meta(cfg, obj: dict, checkpoint: str, **converted_from) -> dict:
    """The converted file's meta: the input's own meta, the test classes, and where it was converted from."""
    meta = dict(obj.get('meta') or {}) if 'state_dict' in obj else {}
    classes = cfg.get('test_dataloader', {}).get('dataset', {}).get('metainfo', {}).get('classes')
    if classes and not meta.get('dataset_meta'):
        meta['dataset_meta'] = {'classes': tuple(classes)}
    meta['converted_from'] = dict(file=osp.abspath(checkpoint), **converted_from)
    return meta


def _text_tower_keys(model) -> set[str]:
    """The model keys of the backbone CLIP outside its image tower (the text tower, logit scale)."""
    names = {id(m): n for n, m in model.named_modules()}
    clip_prefix = names[id(model.backbone.clip)] + '.'
    visual_prefix = names[id(model.backbone.clip.visual)] + '.'
    return {k for k in model.state_dict() if k.startswith(clip_prefix) and not k.startswith(visual_prefix)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ovdet.models.baron.checkpoint import BaronCheckpointError
    from ovdet.models.detectors.fvit_checkpoint import FViTCheckpointError

    try:
        summary = convert(args.config, args.checkpoint, args.out, args.cfg_options)
    except (FViTCheckpointError, BaronCheckpointError, FileNotFoundError) as e:
        print(f'convert_checkpoint: error: {e}', file=sys.stderr)
        return 2
    filled = summary.get('note') or f"{summary['filled']} CLIP text-tower keys from the config's CLIP file"
    print(f"{args.checkpoint} ({summary['layout']} layout, {summary['keys']} keys) -> {summary['out']}: "
          f"{summary['converted']} keys converted, {filled}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
