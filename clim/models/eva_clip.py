"""``EvaCLIPModel``: EVA-02 CLIP (B/16, L/14, L/14-336) = the EVA image-tower adapter over timm's ``Eva``
+ open_clip's ``TextTransformer``, loading the files users hold, strictly.

In-memory layout = open_clip's ``CustomTextCLIP`` for ``EVA02-*`` (``visual.trunk.*`` timm names,
``text.*``, ``logit_scale``), so exports load into upstream open_clip unchanged. Files read:

- EVA-CLIP release (``EVA02_CLIP_B_psz16_s8B.pt``, ``EVA02_CLIP_L_336_psz14_s6B.pt``): ``visual.*`` in EVA
  names (q_bias / v_bias / inner_attn_ln / ffn_ln / w1 / w2 / w3; rope buffers dropped), ``text.*``
  (OpenAI-style text transformer = open_clip's ``TextTransformer`` names), ``logit_scale`` or
  ``text.logit_scale``; bare or under ``state_dict`` / ``model`` / ``module``, ``module.`` prefixes
  stripped;
- CLIPSelf training files ``{epoch, name, state_dict, optimizer, scaler}`` (state_dict in release names);
- open_clip hub weights of ``EVA02-B-16`` / ``EVA02-L-14-336`` (``visual.trunk.*``).

A file that does not fit raises :class:`~clim.models.checkpoint.CheckpointError` naming the missing,
unexpected and mis-shaped keys *in the file's own names* (the reference loads with strict=False and can
silently keep random weights).

The public interface is :class:`clim.models.tower_clip.TowerCLIP`'s (the factory :func:`clim.models.build_clip`
picks this class for EVA files and names): image side delegated to :class:`~clim.models.towers.eva.EvaImageTower`, text
side to :class:`~clim.models.towers.text.OpenCLIPTextTower`. ``D`` joint embedding dim, ``W`` image-tower
width, ``p`` the patch size.
"""
from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import open_clip
import torch
from mmdet.registry import MODELS
from torch import nn

from .checkpoint import CheckpointError, check_state_dict, load_clip_state
from .tower_clip import TowerCLIP
from .towers.eva import EvaImageTower, is_eva_release_layout, is_rope_buffer, timm_to_eva_name
from .towers.text import OpenCLIPTextTower

__all__ = ['EvaCLIPModel', 'read_eva_clip_state', 'infer_eva_model_name', 'is_eva_state_dict', 'is_eva_model_cfg']

_HELP = 'See ckpt/README.md for the expected files.'
_VISUAL = 'visual.trunk.'


def read_eva_clip_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The CLIP state dict of an EVA-CLIP file (release, CLIPSelf training file, open_clip hub weights or a
    CLIM export), unwrapped from ``state_dict`` / ``model`` / ``module`` and without ``module.`` prefixes;
    names as in the file (:func:`~clim.models.checkpoint.load_clip_state`)."""
    return load_clip_state(path)[0]


def is_eva_state_dict(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether a CLIP state dict holds an EVA-02 image tower: the release layout (``visual.pos_embed`` and
    EVA block names) or timm's ``Eva`` under ``visual.trunk.`` (SwiGLU ``mlp.fc1_g``, separate q/k/v)."""
    if 'visual.pos_embed' in state_dict and is_eva_release_layout(state_dict):
        return True
    return _VISUAL + 'pos_embed' in state_dict and any(
        k.startswith(_VISUAL + 'blocks.') and k.endswith(('.mlp.fc1_g.weight', '.attn.q_proj.weight'))
        for k in state_dict)


def is_eva_model_cfg(model_name: str | None, model_cfg: Mapping | None) -> bool:
    """Whether an open_clip model name (``'EVA02-B-16'``) or config (timm ``eva02_*`` trunk) is an EVA CLIP."""
    if model_cfg is not None:
        return 'eva' in str((model_cfg.get('vision_cfg') or {}).get('timm_model_name', ''))
    return bool(model_name) and model_name.upper().startswith('EVA')


def infer_eva_model_name(state_dict: Mapping[str, torch.Tensor]) -> str:
    """``'EVA02-B-16'``, ``'EVA02-L-14'`` or ``'EVA02-L-14-336'`` from a file's image-tower shapes."""
    for prefix in ('visual.', _VISUAL):
        pos = state_dict.get(prefix + 'pos_embed')
        if pos is not None:
            width, tokens = int(pos.shape[-1]), int(pos.shape[-2])
            name = {(768, 197): 'EVA02-B-16', (1024, 257): 'EVA02-L-14', (1024, 577): 'EVA02-L-14-336'}.get(
                (width, tokens))
            if name:
                return name
            raise CheckpointError(f'no known EVA-02 CLIP has a {tokens} x {width} positional embedding; pass '
                                  f'model_name or model_cfg. {_HELP}')
    raise CheckpointError(f'not an EVA-CLIP state dict (no visual.pos_embed or visual.trunk.pos_embed). {_HELP}')


class _Expected:
    """Duck-typed stand-in for a model in :func:`check_state_dict`: the model's tensors under file names."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        self._state = state

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._state


@MODELS.register_module()
class EvaCLIPModel(TowerCLIP):
    """EVA-02 CLIP with the project's loading, dense-feature and locking conventions (the interface:
    :class:`~clim.models.tower_clip.TowerCLIP`).

    Args:
        model_name: ``'EVA02-B-16'``, ``'EVA02-L-14'``, ``'EVA02-L-14-336'`` (open_clip's configs).
        model_cfg: an open_clip-style config used instead: ``embed_dim``, ``vision_cfg`` (``timm_model_name``,
            ``image_size``, optional ``timm_kwargs`` passed to ``timm.create_model``, e.g. a tiny test depth),
            ``text_cfg``.
        pretrained: an EVA-CLIP file (see the module docstring); without model_name / model_cfg the
            architecture comes from the file (a CLIM export's record, else the image-tower shapes).
        quick_gelu: must be None or False (EVA-02's text tower uses GELU); accepted so CLIPModel configs fit.
        loaded: ``(state_dict, info)`` of ``pretrained`` already read by
            :func:`~clim.models.checkpoint.load_clip_state` (the factory reads each file once).

    Attributes:
        visual: container whose ``trunk`` is the timm ``Eva`` (keys ``visual.trunk.*``).
        text: open_clip ``TextTransformer`` (keys ``text.*``).
        image_tower / text_tower: the adapters over ``visual.trunk`` / ``text``.
        clip: this module (the open_clip-layout module whose state dict exports hold, as ``CLIPModel.clip``).
    """

    def __init__(self, model_name: str | None = None, model_cfg: Mapping | None = None,
                 pretrained: str | os.PathLike | None = None, quick_gelu: bool | None = None,
                 loaded: tuple[Mapping[str, torch.Tensor], Mapping[str, Any]] | None = None,
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg)
        import timm
        from open_clip.model import _build_text_tower

        if quick_gelu:
            raise ValueError('EVA-02 CLIP text towers use GELU: quick_gelu=True does not describe them')
        if loaded is None and pretrained:
            loaded = load_clip_state(pretrained)
        state, info = (dict(loaded[0]), dict(loaded[1])) if loaded is not None else (None, {})
        if model_cfg is None and model_name is None and info.get('model_cfg'):
            model_name, model_cfg = info.get('model_name'), info['model_cfg']
        if model_cfg is None:
            model_name = model_name or (infer_eva_model_name(state) if state is not None else None)
            if model_name is None:
                raise ValueError('EvaCLIPModel needs model_name, model_cfg or a pretrained file')
            model_cfg = open_clip.get_model_config(model_name)
            if model_cfg is None or not is_eva_model_cfg(None, model_cfg):
                raise ValueError(f'{model_name!r} is not an open_clip EVA CLIP config')
        cfg = copy.deepcopy(dict(model_cfg))
        vision = cfg['vision_cfg']
        trunk = timm.create_model(vision['timm_model_name'], pretrained=False, num_classes=cfg['embed_dim'],
                                  global_pool='token', **vision.get('timm_kwargs', {}))
        self.visual = nn.ModuleDict(dict(trunk=trunk))
        self.text = _build_text_tower(cfg['embed_dim'], cfg['text_cfg'], quick_gelu=False)
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        self.image_tower = EvaImageTower(trunk, vision.get('image_size'))
        self.text_tower = OpenCLIPTextTower(self.text)
        self.model_name, self.model_cfg = model_name, cfg
        self.quick_gelu = False
        self.pretrained = os.fspath(pretrained) if pretrained else None
        self.checkpoint_format = info.get('format')
        self.checkpoint_meta = info.get('meta', {})
        if state is not None:
            self.load_eva_state(state, self.pretrained)

    # ------------------------------------------------------------------------------------------------
    # loading
    # ------------------------------------------------------------------------------------------------
    def _file_name_fn(self, state_dict: Mapping[str, torch.Tensor]) -> Callable[[str], str]:
        """Model key -> the name the file's layout gives it."""
        release = 'visual.pos_embed' in state_dict
        if not release and _VISUAL + 'pos_embed' not in state_dict:
            raise CheckpointError('not an EVA-CLIP state dict: neither visual.pos_embed (EVA-CLIP release) nor '
                                  f'visual.trunk.pos_embed (open_clip) in its keys ({sorted(state_dict)[:5]} '
                                  f'...). {_HELP}')
        logit = 'text.logit_scale' if 'text.logit_scale' in state_dict else 'logit_scale'

        def file_name(key: str) -> str:
            if key == 'logit_scale':
                return logit
            if release and key.startswith(_VISUAL):
                return 'visual.' + timm_to_eva_name(key[len(_VISUAL):])
            return key
        return file_name

    def load_eva_state(self, state_dict: Mapping[str, torch.Tensor], path: str | None = None) -> None:
        """Load a state dict in any supported layout, strictly.

        Raises:
            CheckpointError: naming (in the file's names) every missing, unexpected and mis-shaped key.
        """
        path = path or '<memory>'
        file_name = self._file_name_fn(state_dict)
        if 'visual.pos_embed' in state_dict and not is_eva_release_layout(state_dict):
            raise CheckpointError(f"'{path}' has visual.pos_embed but no EVA block names (q_bias, ffn_ln, w1 ...): "
                                  f'not the EVA-CLIP release layout. {_HELP}')
        # Derived buffers: rotary tables (rebuilt per grid) and the text causal mask.
        sd = {k: v for k, v in state_dict.items()
              if not (k.startswith('visual.') and is_rope_buffer(k[len('visual.'):])) and k != 'text.attn_mask'}
        own = self.state_dict()
        logit = file_name('logit_scale')
        if logit in sd and sd[logit].numel() == 1:  # stored as () or (1,)
            sd[logit] = sd[logit].reshape(own['logit_scale'].shape)
        to_model = {file_name(k): k for k in own}
        checked = check_state_dict(_Expected({file_name(k): v for k, v in own.items()}), sd, path)
        self.load_state_dict({to_model[k]: v for k, v in checked.items()}, strict=True)

    # ------------------------------------------------------------------------------------------------
    # properties
    # ------------------------------------------------------------------------------------------------
    @property
    def clip(self) -> EvaCLIPModel:
        """The module in open_clip's ``CustomTextCLIP`` layout (``visual.trunk.*``, ``text.*``,
        ``logit_scale``): this one. ``CLIPModel.clip`` is the wrapped open_clip CLIP; callers that export or
        hash ``model.clip`` treat both alike."""
        return self
