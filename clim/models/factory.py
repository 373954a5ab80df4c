"""The one CLIP factory: :func:`build_clip` (registered in mmdet's MODELS as ``type='CLIP'``).

It resolves the weights (a file, a hub-cache folder, ``hf-hub:org/name`` or a zoo name), reads the file once
(:func:`~clim.models.checkpoint.load_clip_state`), decides from what the file and the config say which
towers the model has, and builds that model with the state already read:

=====================================================  =============================================
what says so                                           model
=====================================================  =============================================
a CLIM export recording its class (``clip_arch.type``,  that class (the export's architecture wins)
an HF text tower in its ``model_cfg``)
an EVA model name / config (``EVA02-B-16``, timm       :class:`~clim.models.eva_clip.EvaCLIPModel`
``eva02_*`` trunk), or EVA weights (release layout or
``visual.trunk.*`` of a timm ``Eva``)
a Hugging Face text tower (``text_cfg.hf_model_name``,  :class:`~clim.models.hf_clip.HFTextCLIPModel`
``key_map`` / ``text_model``, a snapshot's
``open_clip_config.json``)
anything else                                          :class:`~clim.models.clip.CLIPModel`
=====================================================  =============================================

Old configs keep working: ``type='CLIPModel'`` / ``'HFTextCLIPModel'`` / ``'EvaCLIPModel'`` configs given to
the callers that build CLIPs (CLIM and the other methods, region evaluation, F-ViT's backbone,
``tools/gen_text_embeddings.py``) go through here too, and ``type='ZooModel'`` is an alias of this factory
taking a zoo ``name``.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmdet.registry import MODELS
from torch import nn

from . import zoo
from .checkpoint import CheckpointError, load_clip_state
from .clip import CLIPModel
from .eva_clip import EvaCLIPModel, is_eva_model_cfg, is_eva_state_dict
from .hf_clip import HFTextCLIPModel, export_clip_type
from .hub import ckpt_root, entry_build_cfg, norm_ckpt_path, resolve_pretrained, set_offline_env

__all__ = ['build_clip', 'build_zoo_model', 'clip_class_for', 'clip_cfg_for', 'CLIP_CLASSES']

logger = logging.getLogger(__name__)

CLIP_CLASSES: dict[str, type[nn.Module]] = {c.__name__: c for c in (CLIPModel, HFTextCLIPModel, EvaCLIPModel)}
# Constructor arguments each class takes (besides ``pretrained``, ``init_cfg`` and ``loaded``).
_ARGS = {
    CLIPModel: ('model_name', 'model_cfg', 'quick_gelu'),
    HFTextCLIPModel: ('model_cfg', 'quick_gelu', 'key_map', 'text_model', 'tokenizer'),
    EvaCLIPModel: ('model_name', 'model_cfg', 'quick_gelu'),
}
_HF_ONLY = ('key_map', 'text_model', 'tokenizer')


def _local_file(pretrained: str) -> Path:
    """A config's weights path as a file: as given, else a ``ckpt/...`` path under :func:`ckpt_root`."""
    path = Path(pretrained)
    rel = None if path.is_file() else norm_ckpt_path(pretrained)
    return ckpt_root() / rel if rel is not None else path


def _has_hf_text(model_cfg: Mapping | None) -> bool:
    return bool(((model_cfg or {}).get('text_cfg') or {}).get('hf_model_name'))


def _snapshot_has_hf_text(weights: str | None) -> bool:
    """Whether an ``open_clip_config.json`` next to ``weights`` (a hub snapshot) names an HF text tower."""
    cfg = Path(weights).parent / 'open_clip_config.json' if weights else None
    if cfg is None or not cfg.is_file():
        return False
    try:
        return _has_hf_text(json.loads(cfg.read_text()).get('model_cfg'))
    except (ValueError, OSError):
        return False


def clip_class_for(cfg: Mapping[str, Any], weights: str | None = None, state: Mapping | None = None,
                   info: Mapping[str, Any] | None = None) -> type[nn.Module]:
    """The CLIP class that loads these weights with this config (the table of the module docstring).

    Args:
        cfg: the CLIP config (``type`` optional: ``'CLIP'``, ``'CLIPModel'``, ``'HFTextCLIPModel'``,
            ``'EvaCLIPModel'``; ``model_name``, ``model_cfg``, ...).
        weights: the resolved weight file, if any.
        state / info: what :func:`~clim.models.checkpoint.load_clip_state` read from it (None: not read).
    """
    info = info or {}
    if info.get('format') == 'clim':
        recorded = info.get('type') or ('HFTextCLIPModel' if _has_hf_text(info.get('model_cfg')) else None)
        if recorded in CLIP_CLASSES:
            return CLIP_CLASSES[recorded]
    requested = cfg.get('type', 'CLIP')
    requested = getattr(requested, '__name__', requested)
    if requested in ('HFTextCLIPModel', 'EvaCLIPModel'):
        return CLIP_CLASSES[requested]
    model_name, model_cfg = cfg.get('model_name'), cfg.get('model_cfg')
    if (model_name or model_cfg) and is_eva_model_cfg(model_name, model_cfg):
        return EvaCLIPModel
    if state is not None and is_eva_state_dict(state):
        return EvaCLIPModel
    if _has_hf_text(model_cfg) or any(cfg.get(k) for k in _HF_ONLY) or _snapshot_has_hf_text(weights):
        return HFTextCLIPModel
    return CLIPModel


def _read(weights: str | None) -> tuple[dict | None, dict]:
    """The file's ``(state, info)``, or ``(None, {})`` when it cannot be read here: the class then reads it
    and reports the problem in its own terms (an HF model names its missing text tower first)."""
    if not weights or not Path(weights).is_file():
        return None, {}
    try:
        return load_clip_state(weights)
    except CheckpointError:
        return None, {}


# the types whose weights this factory resolves and whose class it picks
CLIP_TYPES = ('CLIP', 'CLIPModel', 'HFTextCLIPModel', 'EvaCLIPModel')


@MODELS.register_module(name='CLIP')
def build_clip(cfg: Mapping[str, Any] | None = None, **kwargs: Any) -> nn.Module:
    """Build the CLIP a config describes, with the towers its weights need.

    Args:
        cfg: a config dict (or pass its items as keyword arguments, as the registry does):
            ``model_name`` (open_clip name: ``'ViT-B-16'``, ``'EVA02-B-16'``, ``'EVA02-L-14-336'``, ...),
            ``pretrained`` (file, hub-cache folder, ``'hf-hub:org/name'`` or zoo name), ``model_cfg``,
            ``quick_gelu``, ``key_map`` / ``text_model`` / ``tokenizer`` (HF text towers), ``init_cfg``;
            ``type`` may be ``'CLIP'``, ``'CLIPModel'``, ``'HFTextCLIPModel'``, ``'EvaCLIPModel'`` or
            ``'ZooModel'`` (then ``name`` is a zoo name; vision / segmenter entries build their model).

    Returns:
        A :class:`~clim.models.CLIPModel`, :class:`~clim.models.HFTextCLIPModel` or
        :class:`~clim.models.eva_clip.EvaCLIPModel` (all with the :class:`~clim.models.TowerCLIP` interface).

    Raises:
        CheckpointError: missing / unreadable weights or weights that do not fit (keys named).
    """
    cfg = dict(cfg or {}, **kwargs)
    requested = cfg.pop('type', 'CLIP')
    if getattr(requested, '__name__', requested) == 'ZooModel' or 'name' in cfg:
        return build_zoo_model(**cfg)
    if isinstance(requested, str) and requested not in CLIP_TYPES or isinstance(requested, type) \
            and not any(requested is MODELS.get(t) for t in CLIP_TYPES):
        # another registered model with the CLIP interface (a user's own, a test double): built as configured
        return MODELS.build(dict(cfg, type=requested))
    set_offline_env()
    pretrained = cfg.get('pretrained')
    weights = resolve_pretrained(pretrained) if pretrained else None
    state, info = _read(weights)
    cls = clip_class_for(dict(cfg, type=requested), weights, state, info)
    if info.get('format') == 'clim' and cls is not CLIPModel:
        # The export records its own architecture and activation; a model_name (and the quick_gelu that goes
        # with it) describes another one, e.g. a CLIPModel base config whose pretrained a child points at it.
        dropped = [k for k in ('model_name', 'quick_gelu') if cfg.get(k) is not None and cfg.get('model_name')]
        if dropped:
            logger.info('%s is a %s export: building it from its recorded architecture; %s of the config ignored',
                        pretrained, cls.__name__, ', '.join(f'{k}={cfg[k]!r}' for k in dropped))
        cfg = {k: v for k, v in cfg.items() if k not in dropped}
    unknown = [k for k in cfg if k not in (*_ARGS[cls], 'pretrained', 'init_cfg')]
    if unknown:
        raise TypeError(f'{cls.__name__} (chosen for {pretrained or cfg.get("model_name")!r}) takes no '
                        f'{", ".join(unknown)}')
    args = {k: cfg[k] for k in _ARGS[cls] if cfg.get(k) is not None}
    loaded = (state, info) if state is not None else None
    return cls(pretrained=weights, init_cfg=cfg.get('init_cfg'), loaded=loaded, **args)


@MODELS.register_module(name='ZooModel')
def build_zoo_model(name: str | None = None, ckpt_dir: str | os.PathLike | None = None, **overrides: Any):
    """Build a zoo model by name (``dict(type='ZooModel', name=...)``).

    Args:
        name: zoo name (see :data:`clim.models.zoo.ZOO`); None: a CLIP from ``pretrained`` alone (e.g. a CLIM
            export, whatever class wrote it).
        ckpt_dir: weights folder (default :func:`~clim.models.hub.ckpt_root`).
        overrides: merged into the entry's config (``model_cfg`` for a small test architecture, ``pretrained``
            for a CLIM export of that model, backbone options such as ``out_indices``).

    Returns:
        A CLIP (see :func:`build_clip`), a :class:`~clim.models.CLIPSegModel` (segmenter) or a detection
        backbone (vision only).
    """
    set_offline_env()
    if name is None:
        if not overrides.get('pretrained'):
            raise ValueError("ZooModel needs a zoo name or, for a CLIP, pretrained=<weights file>")
        return build_clip(overrides)
    entry = zoo.get_entry(name)
    if entry.kind != 'clip':
        return MODELS.build(entry_build_cfg(entry, ckpt_dir, **overrides))
    pretrained = overrides.get('pretrained')
    if isinstance(pretrained, str) and export_clip_type(_local_file(pretrained)) not in (None, 'CLIPModel'):
        # A CLIM export of this model records its own architecture; the entry's build config (the release's
        # model_cfg and key names) describes the release file, not the export.
        return build_clip(overrides)
    return build_clip(entry_build_cfg(entry, ckpt_dir, **overrides))


def clip_cfg_for(cfg: Mapping[str, Any]) -> dict:
    """The registry config naming the class :func:`build_clip` would pick (kept for callers that want the
    config rather than the model): a ``CLIPModel`` config naming an ``HFTextCLIPModel`` / ``EvaCLIPModel``
    export becomes a config of that class (``model_name`` / ``quick_gelu`` dropped); others are copied."""
    out = dict(cfg)
    pretrained = out.get('pretrained')
    if out.get('type', 'CLIPModel') not in ('CLIPModel', CLIPModel) or not isinstance(pretrained, str):
        return out
    recorded = export_clip_type(_local_file(pretrained))
    if recorded in (None, 'CLIPModel') or recorded not in CLIP_CLASSES:
        return out
    cls = CLIP_CLASSES[recorded]
    dropped = {'model_name', 'quick_gelu'} if out.get('model_name') else set()
    keep = ('pretrained', 'init_cfg', *_ARGS[cls])
    return dict(type=recorded, **{k: out[k] for k in keep if k in out and k not in dropped})
