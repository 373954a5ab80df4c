"""``CLIPModel``: a standard open_clip ``CLIP`` (open_clip ViT or Modified ResNet image tower, open_clip's
text transformer) in the :class:`~clim.models.tower_clip.TowerCLIP` interface CLIM training, region
evaluation, F-ViT and BARON share.

It holds the upstream ``CLIP`` (``self.clip``, open_clip key names), loads every checkpoint format offline
and picks the image-tower adapter once (:func:`clim.models.towers.build_image_tower`); features, text and
locking are the interface's.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

import open_clip
import torch
from mmdet.registry import MODELS

from .checkpoint import check_state_dict, infer_model_cfg, load_clip_state
from .hub import resolve_pretrained
from .tower_clip import OpenCLIPWrapper
from .towers import build_image_tower
from .towers.text import OpenCLIPTextTower

__all__ = ['CLIPModel']

logger = logging.getLogger(__name__)


def _resolve_arch(model_name: str | None, model_cfg: Mapping | None, info: Mapping[str, Any],
                  state: Mapping[str, torch.Tensor] | None) -> tuple[str | None, dict]:
    """Architecture source, first found: explicit model_cfg, explicit model_name, the file's own
    ``clip_arch``, inference from the state dict."""
    if model_cfg is not None:
        return model_name, copy.deepcopy(dict(model_cfg))
    name = model_name or info.get('model_name')
    if model_name is None and info.get('model_cfg'):
        return name, copy.deepcopy(dict(info['model_cfg']))
    if name is not None:
        cfg = open_clip.get_model_config(name.replace('/', '-'))
        if cfg is None:
            raise ValueError(f'unknown open_clip model name {name!r}; known: {open_clip.list_models()}')
        return name, cfg
    if state is not None:
        return None, infer_model_cfg(state)
    raise ValueError('CLIPModel needs model_name, model_cfg or a pretrained checkpoint that carries its '
                     'architecture')


@MODELS.register_module()
class CLIPModel(OpenCLIPWrapper):
    """An open_clip CLIP with the project's loading, dense-feature and locking conventions (the interface:
    :class:`~clim.models.tower_clip.TowerCLIP`).

    Args:
        model_name: an open_clip model name (``'ViT-B-16'``, ``'ViT-L-14-336'``, ``'RN50x64'``, ...).
        model_cfg: an open_clip model-config dict (``embed_dim``, ``vision_cfg``, ``text_cfg``,
            ``quick_gelu``), used instead of the name.
        pretrained: path to an OpenAI ``.pt`` (TorchScript or state dict), an open_clip checkpoint or a
            CLIM export. Without model_name / model_cfg the architecture comes from the file.
        quick_gelu: activation override. ``None`` (default): QuickGELU when the file says so (OpenAI
            files, CLIM exports record it), else the config's ``quick_gelu``.
        init_cfg: mmengine init config (the weights themselves are loaded at construction).
        loaded: ``(state_dict, info)`` of ``pretrained`` already read by
            :func:`~clim.models.checkpoint.load_clip_state` (the factory reads each file once).

    Attributes:
        clip: the open_clip ``CLIP`` module (open_clip key names).
        clip_arch: ``{'model_name', 'model_cfg', 'quick_gelu'}`` as stored in exports.
        image_tower / text_tower: the adapters over ``clip.visual`` / the text transformer.
    """

    records_type = False  # the default class: exports written before types were recorded rebuild with it

    def __init__(self, model_name: str | None = None, model_cfg: Mapping | None = None,
                 pretrained: str | None = None, quick_gelu: bool | None = None,
                 init_cfg: dict | list | None = None,
                 loaded: tuple[Mapping[str, torch.Tensor], Mapping[str, Any]] | None = None) -> None:
        super().__init__(init_cfg)
        if pretrained:
            # Hub-cache folders, hf-hub: ids and zoo names -> the weight file (plain files unchanged).
            pretrained = resolve_pretrained(pretrained)
        if loaded is not None:  # read by the factory (clim.models.build_clip): each file is read once
            state, info = dict(loaded[0]), dict(loaded[1])
        else:
            state, info = load_clip_state(pretrained) if pretrained else (None, {})
        name, cfg = _resolve_arch(model_name, model_cfg, info, state)
        if quick_gelu is None:
            quick_gelu = info.get('quick_gelu')
            if quick_gelu is None:
                quick_gelu = bool(cfg.get('quick_gelu', False))
                if pretrained and not quick_gelu:
                    # e.g. open_clip-format fine-tunes of OpenAI weights: the file cannot tell.
                    logger.warning('%s does not record its activation; using GELU from the config. If these '
                                   'weights descend from OpenAI CLIP, pass quick_gelu=True (or a '
                                   '"-quickgelu" model name).', pretrained)
        elif info.get('quick_gelu') is not None and bool(quick_gelu) != bool(info['quick_gelu']):
            logger.warning('quick_gelu=%s overrides the activation recorded for %s (quick_gelu=%s)',
                           quick_gelu, pretrained, info['quick_gelu'])
        cfg['quick_gelu'] = bool(quick_gelu)
        if cfg.get('custom_text') or cfg.get('text_cfg', {}).get('hf_model_name') or \
                'multimodal_cfg' in cfg or cfg.get('vision_cfg', {}).get('timm_model_name'):
            raise NotImplementedError('CLIPModel supports standard open_clip CLIP models (ViT or '
                                      'ModifiedResNet image tower, built-in text transformer)')
        build_cfg = {k: v for k, v in cfg.items() if k != 'custom_text'}
        self.clip = open_clip.CLIP(**build_cfg)
        if state is not None:
            self.clip.load_state_dict(check_state_dict(self.clip, state, pretrained), strict=True)
        self.image_tower = build_image_tower(self.clip.visual)
        self.text_tower = OpenCLIPTextTower(self.clip)
        self.model_name = name
        self.model_cfg = cfg
        self.quick_gelu = bool(quick_gelu)
        self.pretrained = pretrained
        self.checkpoint_format = info.get('format')
        self.checkpoint_meta = info.get('meta', {})
