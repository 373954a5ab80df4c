"""``HFTextCLIPModel``: open_clip CLIPs whose text tower is a Hugging Face model (BiomedCLIP,
UniMed-CLIP), loaded offline from ``ckpt/``, with the :class:`~clim.models.tower_clip.TowerCLIP` interface.

open_clip builds such a model (``CustomTextCLIP``) from a config whose ``text_cfg.hf_model_name`` names a
hub repo; its text tower and tokenizer call ``AutoConfig`` / ``AutoTokenizer.from_pretrained`` on that
name. Here the name is first resolved to the repo's snapshot folder in the hub caches of ``ckpt/``
(:func:`clim.models.hub.hub_snapshot`), so nothing is downloaded and a missing entry fails with the
download command. The text weights come with the CLIP file (``hf_model_pretrained`` is forced off: only
the text model's ``config.json`` and tokenizer files are read).
"""
from __future__ import annotations

import copy
import json
import logging
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import open_clip
import torch
from mmdet.registry import MODELS

from .checkpoint import CheckpointError, check_state_dict, is_torchscript_archive, load_clip_state
from .hub import (TOKENIZER_FILES, hf_text_download, hf_text_download_hint, hub_snapshot,  # noqa: F401
                  resolve_pretrained, set_offline_env)
from .tower_clip import OpenCLIPWrapper
from .towers import build_image_tower
from .towers.text import HFTextTower

__all__ = ['HFTextCLIPModel', 'TOKENIZER_FILES', 'hf_text_download', 'hf_text_download_hint', 'export_clip_type']

logger = logging.getLogger(__name__)

# Buffers older transformers persisted in state dicts and current ones rebuild (not weights).
_HF_DERIVED_SUFFIXES = ('embeddings.position_ids', 'embeddings.token_type_ids')


def export_clip_type(path: str | os.PathLike) -> str | None:
    """The CLIP class a CLIM export (``{'state_dict', 'clip_arch', 'meta'}``) must be rebuilt with.

    ``'HFTextCLIPModel'`` when the export records it (``clip_arch['type']``) or its architecture has a
    Hugging Face text tower (exports written before the type was recorded); ``'CLIPModel'`` for any other
    CLIM export; None for every other file (OpenAI ``.pt``, open_clip checkpoints, missing paths). Reads
    only the archive's small records: tensors are memory-mapped, not loaded.
    """
    p = Path(path)
    # torch.save zips only (our exports): TorchScript archives and legacy pickles are never exports.
    if not p.is_file() or not zipfile.is_zipfile(p) or is_torchscript_archive(p):
        return None
    try:
        obj = torch.load(str(p), map_location='cpu', weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - unreadable here: the loader itself reports it with context
        return None
    if not isinstance(obj, Mapping) or not isinstance(obj.get('clip_arch'), Mapping):
        return None
    arch = obj['clip_arch']
    if arch.get('type'):
        return str(arch['type'])
    text_cfg = (arch.get('model_cfg') or {}).get('text_cfg') or {}
    return 'HFTextCLIPModel' if text_cfg.get('hf_model_name') else 'CLIPModel'


def _open_clip_config(weights: str | None) -> dict:
    """``model_cfg`` of the ``open_clip_config.json`` next to a hub snapshot's weight file."""
    cfg_file = Path(weights).parent / 'open_clip_config.json' if weights else None
    if cfg_file is None or not cfg_file.is_file():
        raise CheckpointError(f'HFTextCLIPModel needs model_cfg, or weights in a hub snapshot next to its '
                              f"open_clip_config.json (looked for '{cfg_file}'). See ckpt/README.md.")
    return dict(json.loads(cfg_file.read_text())['model_cfg'])


@MODELS.register_module()
class HFTextCLIPModel(OpenCLIPWrapper):
    """An open_clip ``CustomTextCLIP`` (HF text tower; open_clip ViT or timm ViT image tower) with the
    :class:`~clim.models.tower_clip.TowerCLIP` interface: ``encode_image`` (B, 3, H, W) -> (B, D),
    ``tokenize`` / ``encode_text`` (N, L) -> (N, D), ``encode_class_names`` -> (C, D), and
    ``dense_features`` (B, D, H / p, W / p) / ``pool_boxes`` / ``region_features`` (sum n_i, D) /
    ``vit_tokens`` for class-token ViT towers.

    Args:
        model_cfg: an open_clip model config with ``text_cfg.hf_model_name``; None: the
            ``open_clip_config.json`` next to ``pretrained`` (hub snapshots of open_clip models).
        pretrained: the weights (a file, a ``models--*`` hub-cache folder, ``hf-hub:org/name`` or a zoo
            name; see :func:`clim.models.hub.resolve_pretrained`), or a CLIM export of such a model (its
            recorded ``model_cfg`` and activation are used when ``model_cfg`` / ``quick_gelu`` are None).
        key_map: prefix renames applied to the file's keys before loading (``{'text_encoder.': 'text.'}``
            for checkpoints written by a CLIP class that named its text tower differently).
        quick_gelu: activation of an open_clip ViT tower (timm towers have their own); None: the config's.
        text_model / tokenizer: hub repo id or folder of the text model's config / tokenizer; default the
            config's ``hf_model_name`` / ``hf_tokenizer_name``.
        loaded: ``(state_dict, info)`` of ``pretrained`` already read (by :func:`clim.models.build_clip`).

    Differences from ``CLIPModel``: the text side is a bidirectional HF encoder, so
    :meth:`encode_pseudo_words` (BARON) is not available; captions are tokenized by this model
    (:attr:`tokenizes_captions`), not by the caption pipeline's BPE ``TokenizeCaption``; exports record
    ``type='HFTextCLIPModel'`` and ``model_cfg`` with the hub repo names, and the registry paths that build
    CLIPs from a file (``ZooModel``, CLIM, F-ViT's backbone; :func:`clim.models.build_clip`) rebuild
    them with this class.
    """

    def __init__(self, model_cfg: Mapping | None = None, pretrained: str | None = None,
                 key_map: Mapping[str, str] | None = None, quick_gelu: bool | None = None,
                 text_model: str | None = None, tokenizer: str | None = None,
                 init_cfg: dict | list | None = None,
                 loaded: tuple[Mapping[str, torch.Tensor], Mapping[str, Any]] | None = None) -> None:
        super().__init__(init_cfg)
        set_offline_env()
        weights = resolve_pretrained(pretrained) if pretrained else None
        # `loaded`: the file as the factory (clim.models.build_clip) read it, so it is read once.
        state, info = (dict(loaded[0]), dict(loaded[1])) if loaded is not None else (None, {})
        # Architecture, first found: explicit model_cfg, the CLIM export's own record, the hub snapshot's
        # open_clip_config.json (as CLIPModel: an explicit config wins over the file).
        if model_cfg is not None:
            cfg = copy.deepcopy(dict(model_cfg))
        elif info.get('format') == 'clim':
            cfg = copy.deepcopy(dict(info.get('model_cfg') or {}))
        elif weights is not None and state is None and export_clip_type(weights) is not None:
            state, info = load_clip_state(weights)
            cfg = copy.deepcopy(dict(info.get('model_cfg') or {}))
        else:
            cfg = _open_clip_config(weights)
        text_cfg = dict(cfg.get('text_cfg', {}))
        repo = text_model or text_cfg.get('hf_model_name')
        if not repo:
            raise ValueError('HFTextCLIPModel needs a Hugging Face text tower (text_cfg.hf_model_name)')
        tok_repo = tokenizer or text_cfg.get('hf_tokenizer_name') or repo
        # The text tower's hub entry before the weights: its absence is reported even when the weight file is
        # unreadable too (the weights alone cannot be used without it).
        self.text_model_dir = hub_snapshot(repo, [('config.json',)], hf_text_download_hint(repo))
        self.tokenizer_dir = hub_snapshot(tok_repo, [TOKENIZER_FILES], hf_text_download_hint(tok_repo))
        if weights is not None and state is None:
            state, info = load_clip_state(weights)
        if quick_gelu is None and info.get('format') == 'clim' and info.get('quick_gelu') is not None:
            quick_gelu = info['quick_gelu']  # exports record the activation they were trained with
        if quick_gelu is not None:
            cfg['quick_gelu'] = bool(quick_gelu)
        # What an export records: the text model / tokenizer actually used (repo ids stay repo ids, so the
        # export rebuilds from any ckpt/ folder holding them).
        text_cfg.update(hf_model_name=str(repo), hf_tokenizer_name=str(tok_repo))
        cfg['text_cfg'] = text_cfg
        build = {k: v for k, v in copy.deepcopy(cfg).items() if k != 'custom_text'}  # a factory flag, not an arg
        build['text_cfg'] = dict(text_cfg, hf_model_name=str(self.text_model_dir), hf_model_pretrained=False,
                                 hf_tokenizer_name=str(self.tokenizer_dir))
        self.clip = open_clip.CustomTextCLIP(**build)
        if state is not None:
            state = self._map_keys(state, key_map or {})
            self.clip.load_state_dict(check_state_dict(self.clip, state, weights), strict=True)
        self.model_name = None
        self.model_cfg = cfg
        self.quick_gelu = bool(cfg.get('quick_gelu', False))
        self.pretrained = weights
        self.checkpoint_format = info.get('format')
        self.checkpoint_meta = info.get('meta', {})
        self.image_tower = build_image_tower(self.clip.visual)
        self.text_tower = HFTextTower(self.clip, self.tokenizer_dir, int(text_cfg.get('context_length', 77)),
                                      text_cfg.get('tokenizer_kwargs'))

    def _map_keys(self, state: Mapping[str, torch.Tensor], key_map: Mapping[str, str]) -> dict[str, torch.Tensor]:
        """Rename key prefixes and drop derived HF buffers this transformers version does not persist."""
        out = {}
        for k, v in state.items():
            for old, new in key_map.items():
                if k.startswith(old):
                    k = new + k[len(old):]
                    break
            out[k] = v
        expected = self.clip.state_dict()
        return {k: v for k, v in out.items() if k in expected or not k.endswith(_HF_DERIVED_SUFFIXES)}
