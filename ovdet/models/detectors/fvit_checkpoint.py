"""Foreign F-ViT checkpoint layouts -> ours, in one place next to the model (timm's checkpoint_filter_fn).

Layouts read:

- ``clim_fvlm``: CLIM's released detectors, MMDetection-3 state dicts of its ``FVLM`` class
  (the reference spec's ``detectors.md``): the frozen CLIP image tower under ``backbone.visual.*``
  (open_clip 2.16 key names), the stride-4 / stride-8 adapters under ``backbone.interpolate1.*`` /
  ``backbone.interpolate2.*`` (stride 16 is the identity, stride 32 a max-pool: no weights), mmdet's
  FPN / RPN / box-head keys as ours, and three head keys of its own: ``bbox_head.fc_cls`` (the
  projection to CLIP's space), ``bbox_head.cls_temp`` (the temperature) and ``bbox_head.bg_embedding``
  (the background linear layer, with bias).
- ``ovdet_backbone_adapters``: ours before the pyramid adapters moved from the backbone into the
  :class:`~ovdet.models.necks.SimplePyramid` neck: ``backbone.adapters.*`` and the FPN under ``neck.*``
  (now ``neck.0.adapters.*`` and ``neck.1.*``). :class:`~ovdet.models.detectors.FViT` renames these on
  every ``load_state_dict`` (``load_checkpoint``, ``--resume``, ``tools/test.py``) through
  :func:`upgrade_fvit_state_dict`; the trainable parameters keep their order, so an old optimizer
  state resumes too.
- ``ovdet``: our own (returned unchanged).

The reference detector does not hold CLIP's text tower (it reads class embeddings from a file); ours
does, for free-text vocabularies. :func:`convert_fvit_state_dict` therefore reports the keys a
converted checkpoint cannot fill, and ``tools/convert_checkpoint.py`` fills exactly those from the
config's CLIP file and refuses anything else left over.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ['FViTCheckpointError', 'detect_fvit_layout', 'convert_fvit_state_dict', 'fill_from_model',
           'upgrade_fvit_state_dict']

# (old prefix, attribute path of the new module relative to the pyramid neck / the neck after it) per
# layout; the image tower's prefix is found on the model (it depends on the CLIP wrapper's names).
_PYRAMID_RENAMES = {
    'clim_fvlm': (('backbone.interpolate1.', 'adapters.0.'), ('backbone.interpolate2.', 'adapters.1.')),
    'ovdet_backbone_adapters': (('backbone.adapters.', 'adapters.'),),
}
_OLD_FPN_PREFIX = 'neck.'
_HEAD_KEYS = {
    'fc_cls.weight': 'fc_cls.proj.weight',
    'fc_cls.bias': 'fc_cls.proj.bias',
    'cls_temp': 'fc_cls.temperature',
    'bg_embedding.weight': 'fc_cls.background.weight',
    'bg_embedding.bias': 'fc_cls.background.bias',
}


class FViTCheckpointError(KeyError):
    """A detector checkpoint does not fit the F-ViT model; the message lists the offending keys."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def detect_fvit_layout(state_dict: Mapping[str, torch.Tensor], prefix: str = '') -> str:
    """``'clim_fvlm'`` for CLIM's reference layout, ``'ovdet_backbone_adapters'`` for ours with the
    adapters in the backbone, else ``'ovdet'`` (keys under ``prefix``)."""
    if any(k.startswith((prefix + 'backbone.visual.', prefix + 'backbone.interpolate')) for k in state_dict):
        return 'clim_fvlm'
    if any(k.startswith(prefix + 'backbone.adapters.') for k in state_dict):
        return 'ovdet_backbone_adapters'
    return 'ovdet'


def _neck_renames(model: nn.Module, layout: str, source: str) -> list[tuple[str, str]]:
    """(old prefix, new prefix) pairs that move a pre-neck layout's adapters and FPN into ``model``'s
    ``neck=[SimplePyramid, FPN]``."""
    from ..necks import SimplePyramid

    neck = getattr(model, 'neck', None)
    if not (isinstance(neck, nn.Sequential) and len(neck) == 2 and isinstance(neck[0], SimplePyramid)):
        raise FViTCheckpointError(f'{source} ({layout} layout) holds the pyramid adapters outside the neck; '
                                  f'the model needs neck=[dict(type="SimplePyramid", ...), dict(type="FPN", ...)] '
                                  f'to take them (configs/_base_/models/fvit_vitb16.py)')
    renames = [(old, 'neck.0.' + new) for old, new in _PYRAMID_RENAMES[layout]]
    return renames + [(_OLD_FPN_PREFIX, 'neck.1.')]


def _renamed(key: str, renames: list[tuple[str, str]], model_keys: set[str]) -> str:
    for old, new in renames:
        if key.startswith(old):
            tail = key[len(old):]
            # The stride-8 adapter is one transposed conv: the reference may hold it bare or as a
            # 1-element Sequential ('interpolate2.0.weight'); ours is bare.
            if new + tail not in model_keys and tail.startswith('0.') and new + tail[2:] in model_keys:
                tail = tail[2:]
            return new + tail
    return key


def upgrade_fvit_state_dict(state_dict: dict[str, torch.Tensor], model: nn.Module, prefix: str = '',
                            source: str = 'the checkpoint') -> bool:
    """Rename, in place, an ``ovdet_backbone_adapters`` state dict's keys under ``prefix`` to ``model``'s
    (``backbone.adapters.*`` -> ``neck.0.adapters.*``, ``neck.*`` -> ``neck.1.*``).

    Returns:
        whether anything was renamed (False for any other layout, which is left alone).
    """
    if detect_fvit_layout(state_dict, prefix) != 'ovdet_backbone_adapters':
        return False
    renames = [(prefix + old, prefix + new)
               for old, new in _neck_renames(model, 'ovdet_backbone_adapters', source)]
    model_keys = {prefix + k for k in model.state_dict()}
    for key in [k for k in state_dict if k.startswith(prefix)]:
        new = _renamed(key, renames, model_keys)
        if new != key:
            state_dict[new] = state_dict.pop(key)
    return True


def _module_prefix(model: nn.Module, target: nn.Module) -> str:
    for name, module in model.named_modules():
        if module is target:
            return name + '.'
    raise ValueError('the CLIP image tower is not a submodule of the model')


def _head_prefix(key: str) -> tuple[str, str] | None:
    """Split a reference box-head key into (prefix up to 'bbox_head.', rest) if it is renamed."""
    marker = 'bbox_head.'
    i = key.find(marker)
    if i < 0:
        return None
    rest = key[i + len(marker):]
    return (key[:i + len(marker)], rest) if rest in _HEAD_KEYS else None


def convert_fvit_state_dict(state_dict: Mapping[str, torch.Tensor], model: nn.Module,
                            source: str = '<state dict>') -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map a detector state dict of any known layout onto ``model``'s key names, strictly.

    Args:
        state_dict: the checkpoint's state dict (``module.`` prefixes of DDP allowed).
        model: the F-ViT the weights are for (its keys and shapes are the target).
        source: where the weights came from, for messages.

    Returns:
        ``(converted, unfilled)``: the state dict in our key names, and the model keys it does not
        fill, sorted (for the reference layout: CLIP's text tower).

    Raises:
        FViTCheckpointError: a key that maps to no model key (unexpected), or a shape that differs;
            the message lists every one of them and names ``source``.
    """
    sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state_dict.items()}
    layout = detect_fvit_layout(sd)
    expected = model.state_dict()
    model_keys = set(expected)
    converted: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    if layout == 'ovdet_backbone_adapters':
        upgrade_fvit_state_dict(sd, model, source=source)
    if layout == 'clim_fvlm':
        renames = _neck_renames(model, layout, source)
        visual = _module_prefix(model, model.backbone.clip.visual)
        for key, value in sd.items():
            head = _head_prefix(key)
            if key.startswith('backbone.visual.'):
                new = visual + key[len('backbone.visual.'):]
            elif head is not None:
                new = head[0] + _HEAD_KEYS[head[1]]
                if not new.startswith('roi_head.'):
                    new = 'roi_head.' + new
            else:
                new = _renamed(key, renames, model_keys)
            if new not in model_keys:
                unexpected.append(key)
                continue
            # The reference's temperature is a 1-element tensor; ours a scalar parameter.
            converted[new] = value.reshape(expected[new].shape) if value.numel() == expected[new].numel() \
                else value
    else:
        for key, value in sd.items():
            (converted.__setitem__(key, value) if key in model_keys else unexpected.append(key))
    shapes = [f'{k}: file {tuple(v.shape)} vs model {tuple(expected[k].shape)}'
              for k, v in converted.items() if v.shape != expected[k].shape]
    if unexpected or shapes:
        lines = [f'{source} ({layout} layout) does not fit the F-ViT model:']
        if unexpected:
            lines.append(f'  unexpected keys ({len(unexpected)}): {", ".join(sorted(unexpected)[:40])}')
        if shapes:
            lines.append(f'  shape mismatches ({len(shapes)}): {", ".join(sorted(shapes)[:40])}')
        lines.append('  Is the config the one the checkpoint was trained with (CLIP size, head widths, '
                     'number of classes)?')
        raise FViTCheckpointError('\n'.join(lines))
    return converted, sorted(model_keys - set(converted))


def fill_from_model(converted: dict[str, torch.Tensor], unfilled: list[str], model: nn.Module,
                    allowed: set[str], source: str = '<state dict>') -> dict[str, torch.Tensor]:
    """Complete ``converted`` with ``model``'s own values for the ``unfilled`` keys, all of which must be
    in ``allowed``.

    Used for the parts a reference checkpoint does not carry but the model already holds from its
    config (CLIP's text tower, loaded from the config's CLIP file). Any other unfilled key is an error.

    Returns:
        a state dict with every key of ``model``.

    Raises:
        FViTCheckpointError: unfilled keys outside ``allowed`` (listed).
    """
    missing = [k for k in unfilled if k not in allowed]
    if missing:
        raise FViTCheckpointError(f'{source}: {len(missing)} model keys are missing from the checkpoint: '
                                  f'{", ".join(missing[:40])}')
    own = model.state_dict()
    return {**converted, **{k: own[k].detach().clone() for k in unfilled}}
