"""Foreign BARON-KD checkpoints -> ours, strictly (next to the model, as timm's checkpoint_filter_fn).

Layouts read (:func:`detect_baron_layout`):

- ``baron_reference``: the reference's released detector (wusize/ovdet, an MMDetection-3 state dict of
  its ``OVDTwoStageDetector``). Key names are the reference modules' attribute names: mmdet's
  ``backbone.*`` / ``neck.*`` (ours), ``rpn_head.rpn_conv`` / ``rpn_cls.0`` / ``rpn_cls.2`` / ``rpn_reg``
  (ours), the box head ``roi_head.bbox_head.{shared_convs, shared_fcs, fc_reg.0, fc_reg.2}`` (ours) with
  ``fc_cls`` (the pseudo-word projection, ours ``fc_cls.proj``), ``bg_embedding`` (ours
  ``fc_cls.background``) and the ``cls_embeddings`` buffer (checked against the config's class-embedding
  file, then dropped: ours is read from that file), the frozen CLIP under ``roi_head.clip.image_encoder.*``
  (OpenAI ``visual.*`` names, ours ``teacher.clip.visual.*``) and ``roi_head.clip.text_encoder.*``
  (OpenAI text names, ours ``teacher.clip.*``), and the KD method's positional projection
  ``roi_head.baron_kd.positional_embed.pos_proj.{0,1,2}`` (ours ``positional.net``). The reference's
  queues and boxes cache are non-persistent buffers (not in its checkpoints): ours start empty, as a
  fresh reference run's; CLIP's ``logit_scale`` (unused by BARON) comes from the config's CLIP file.
- ``soco``: a SoCo* R50-FPN + 4conv1fc initialisation (mmdet names under :data:`SOCO_PREFIXES`);
  everything else is the config's initialisation (as the reference's non-strict ``load_from``).
- ``ovdet``: our own (checked, unchanged).
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

__all__ = ['SOCO_PREFIXES', 'BaronCheckpointError', 'SocoCheckpointError', 'load_soco_checkpoint',
           'detect_baron_layout', 'convert_baron_state_dict', 'REFERENCE_RENAMES', 'REFERENCE_UNSTORED']

# What SoCo's converter writes (spec 6): the whole backbone and neck, and the box head's 4 convs + fc.
SOCO_PREFIXES = ('backbone.', 'neck.', 'roi_head.bbox_head.shared_convs.', 'roi_head.bbox_head.shared_fcs.')


class BaronCheckpointError(ValueError):
    """A checkpoint does not fit the BARON-KD model (the message names the file and the keys)."""


class SocoCheckpointError(BaronCheckpointError):
    """A SoCo checkpoint does not match the detector (the message names the file and the keys)."""


# (reference prefix or key, ours), first match wins; keys under no prefix here are unexpected.
REFERENCE_RENAMES: tuple[tuple[str, str], ...] = (
    ('backbone.', 'backbone.'),
    ('neck.', 'neck.'),
    ('rpn_head.', 'rpn_head.'),
    ('roi_head.bbox_head.fc_cls.', 'roi_head.bbox_head.fc_cls.proj.'),
    ('roi_head.bbox_head.bg_embedding.', 'roi_head.bbox_head.fc_cls.background.'),
    ('roi_head.bbox_head.', 'roi_head.bbox_head.'),
    ('roi_head.clip.image_encoder.', 'teacher.clip.visual.'),
    ('roi_head.clip.text_encoder.', 'teacher.clip.'),
    ('roi_head.baron_kd.positional_embed.pos_proj.', 'positional.net.'),
)
# Our keys a reference checkpoint cannot hold (filled from the freshly built model).
REFERENCE_UNSTORED = ('bag_loss.', 'single_loss.', 'boxes_cache.', 'teacher.clip.logit_scale')
_REFERENCE_CLASS_EMBEDDINGS = 'roi_head.bbox_head.cls_embeddings'


def detect_baron_layout(state_dict: Mapping[str, torch.Tensor]) -> str:
    """``'baron_reference'``, ``'soco'`` or ``'ovdet'`` (see the module docstring)."""
    keys = [k[len('module.'):] if k.startswith('module.') else k for k in state_dict]
    if any(k.startswith(('roi_head.clip.', 'roi_head.baron_kd.')) or k == _REFERENCE_CLASS_EMBEDDINGS
           or k.startswith('roi_head.bbox_head.bg_embedding.') for k in keys):
        return 'baron_reference'
    if keys and all(k.startswith(SOCO_PREFIXES) for k in keys):
        return 'soco'
    return 'ovdet'


def _error(source: str, layout: str, **lists: list[str]) -> BaronCheckpointError:
    lines = [f'{source} ({layout} layout) does not fit the BARON-KD model:']
    for name, keys in lists.items():
        if keys:
            lines.append(f'  {name.replace("_", " ")} ({len(keys)}): {", ".join(sorted(keys)[:30])}'
                         f'{" ..." if len(keys) > 30 else ""}')
    lines.append('  Is the config the one the checkpoint was trained with (widths, words per region, '
                 'number of classes, CLIP size)?')
    return BaronCheckpointError('\n'.join(lines))


def convert_baron_state_dict(state_dict: Mapping[str, torch.Tensor], model: nn.Module,
                             source: str = '<state dict>') -> tuple[dict[str, torch.Tensor], str]:
    """A complete state dict for ``model`` (a ``BaronKD``) from a checkpoint of any known layout.

    Every key of the input must map onto a model key of the same shape; every model key must be
    filled by the input, except :data:`REFERENCE_UNSTORED` (reference layout) or everything outside
    :data:`SOCO_PREFIXES` (SoCo layout), which keep the model's own values. Floating tensors are cast
    to the model's dtypes (the reference stores its frozen CLIP as loaded; fp16 files become float32).

    Returns:
        ``(state_dict, layout)``.

    Raises:
        BaronCheckpointError: unexpected / missing keys, shape mismatches, or (reference layout) class
            embeddings that differ from the config's file; the message names ``source`` and the keys.
    """
    sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state_dict.items()}
    layout = detect_baron_layout(sd)
    own = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    if layout == 'baron_reference':
        ref_emb = sd.pop(_REFERENCE_CLASS_EMBEDDINGS, None)
        for key, value in sd.items():
            new = next((ours + key[len(ref):] for ref, ours in REFERENCE_RENAMES if key.startswith(ref)), None)
            (converted.__setitem__(new, value) if new in own else unexpected.append(key))
        keep_own = [k for k in own if k.startswith(REFERENCE_UNSTORED)]
    elif layout == 'soco':
        for key, value in sd.items():
            (converted.__setitem__(key, value) if key in own else unexpected.append(key))
        keep_own = [k for k in own if not k.startswith(SOCO_PREFIXES)]
    else:
        for key, value in sd.items():
            (converted.__setitem__(key, value) if key in own else unexpected.append(key))
        keep_own = []
    shapes = [f'{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}' for k, v in converted.items()
              if torch.is_tensor(v) and torch.is_tensor(own[k]) and v.shape != own[k].shape]
    missing = [k for k in own if k not in converted and k not in keep_own
               and not (layout == 'soco' and k.endswith('num_batches_tracked'))]
    if unexpected or shapes or missing:
        raise _error(source, layout, unexpected_keys=unexpected, missing_keys=missing, shape_mismatches=shapes)
    if layout == 'baron_reference':
        ours = model.roi_head.bbox_head.fc_cls.class_embeddings
        if ref_emb is None or tuple(ref_emb.shape) != tuple(ours.shape) or \
                not torch.allclose(ref_emb.float().cpu(), ours.float().cpu(), atol=1e-3):
            raise BaronCheckpointError(
                f'{source}: the class embeddings the checkpoint was trained with '
                f'({_REFERENCE_CLASS_EMBEDDINGS}, {None if ref_emb is None else tuple(ref_emb.shape)}) differ from '
                f"the config's file ({tuple(ours.shape)}): give the config the checkpoint's attn12 file")
    out = {}
    for k, v in own.items():
        value = converted.get(k, v)
        if torch.is_tensor(value) and torch.is_tensor(v) and value.is_floating_point() and v.is_floating_point():
            value = value.to(v.dtype)
        out[k] = value.detach().cpu() if torch.is_tensor(value) else value
    return out, layout


def load_soco_checkpoint(model: nn.Module, path: str | os.PathLike) -> None:
    """Copy a SoCo checkpoint (``{'state_dict': {...}}`` or a bare state dict, mmdet key names) into
    ``model``.

    Every key of the file must be a parameter / buffer of ``model`` under :data:`SOCO_PREFIXES` with the
    same shape (else "unexpected"), and every such entry of ``model`` must be in the file (else
    "missing"; BN ``num_batches_tracked`` counters may be absent). Everything else keeps its init.

    Raises:
        SocoCheckpointError: naming the file and the missing / unexpected / mis-shaped keys.
    """
    if not os.path.isfile(path):
        raise SocoCheckpointError(f'SoCo checkpoint not found: {os.path.abspath(path)}')
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise SocoCheckpointError(f'{path}: expected a state dict or {{"state_dict": ...}}')
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    own = model.state_dict()
    expected = {k for k in own if k.startswith(SOCO_PREFIXES)}
    unexpected = sorted(k for k in state if k not in expected)
    missing = sorted(k for k in expected - set(state) if not k.endswith('num_batches_tracked'))
    shapes = sorted(f'{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
                    for k in set(state) & expected if tuple(state[k].shape) != tuple(own[k].shape))
    if unexpected or missing or shapes:
        parts = []
        for name, keys in (('unexpected keys', unexpected), ('missing keys', missing), ('shape mismatches', shapes)):
            if keys:
                parts.append(f'{len(keys)} {name}: {", ".join(keys[:20])}{" ..." if len(keys) > 20 else ""}')
        raise SocoCheckpointError(f'{path} is not a SoCo R50-FPN + 4conv1fc checkpoint for this detector: '
                                  + '; '.join(parts))
    with torch.no_grad():
        for k, v in state.items():
            own[k].copy_(v)
