"""Loading the SoCo* R50-FPN + 4conv1fc initialisation of BARON-KD with strict key checks."""
from __future__ import annotations

import os

import torch
from torch import nn

__all__ = ['SOCO_PREFIXES', 'SocoCheckpointError', 'load_soco_checkpoint']

# What SoCo's converter writes (spec 6): the whole backbone and neck, and the box head's 4 convs + fc.
SOCO_PREFIXES = ('backbone.', 'neck.', 'roi_head.bbox_head.shared_convs.', 'roi_head.bbox_head.shared_fcs.')


class SocoCheckpointError(ValueError):
    """A SoCo checkpoint does not match the detector (the message names the file and the keys)."""


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
