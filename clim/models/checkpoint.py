"""Reading and writing CLIP weights, offline, in every on-disk format the project meets.

Formats read by :func:`load_clip_state`:

- ``openai``: OpenAI's released ``.pt`` files (TorchScript archives, read with ``torch.jit.load``) or
  plain state dicts carrying OpenAI's extra keys (``input_resolution``, ``context_length``,
  ``vocab_size``). OpenAI trained with QuickGELU, so these report ``quick_gelu=True``.
- ``open_clip``: a raw state dict (``torch.save`` or ``.safetensors``), or a training checkpoint
  holding it under ``state_dict`` (``module.`` prefixes of DDP are stripped). Such files do not
  record the activation: ``quick_gelu`` is reported as ``None``.
- ``clim``: our exports, ``{'state_dict', 'clip_arch', 'meta'}`` (see docs/design.md), whose
  architecture (activation included) is read from the file.

Everything but TorchScript is read with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    'CheckpointError', 'OPENAI_EXTRA_KEYS', 'load_clip_state', 'save_clip_checkpoint', 'check_state_dict',
    'infer_model_cfg', 'is_torchscript_archive',
]

# Keys only OpenAI's released files carry (TorchScript attributes saved as tensors).
OPENAI_EXTRA_KEYS = ('input_resolution', 'context_length', 'vocab_size')
# Derived buffers some writers persist; never learned, always rebuilt by the model.
_DERIVED_KEYS = ('attn_mask',)
_HELP = 'See ckpt/README.md for the expected files and how to obtain and verify them.'
_EXPECTED = ("an OpenAI CLIP .pt (TorchScript archive or state dict), an open_clip state dict "
             "(raw or under 'state_dict') or a CLIM export ({'state_dict', 'clip_arch', 'meta'})")


class CheckpointError(RuntimeError):
    """A CLIP checkpoint is missing, unreadable or does not match the model."""


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a TorchScript zip archive (``code/`` + ``constants.pkl`` records) as
    opposed to a ``torch.save`` zip file. Raises ``zipfile.BadZipFile`` on a truncated zip."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return any(n.endswith('/constants.pkl') or '/code/' in n for n in names)


def _strip_module_prefix(sd: Mapping[str, Any]) -> dict[str, Any]:
    if sd and all(k.startswith('module.') for k in sd):
        return {k[len('module.'):]: v for k, v in sd.items()}
    return dict(sd)


def load_clip_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read CLIP weights from any supported file.

    Args:
        path: the checkpoint file.

    Returns:
        ``(state_dict, arch_info)``: the file's key names -> tensors (dtype as stored: OpenAI files
        are partly fp16), and ``arch_info`` = ``{'format': 'openai'|'open_clip'|'clim',
        'quick_gelu': bool | None (None: the file does not say), 'model_name': str | None,
        'model_cfg': dict | None, 'type': str | None (the CLIP class a CLIM export records),
        'meta': dict}``.

    Raises:
        CheckpointError: missing, truncated or unrecognised file (the message names the path,
            what was expected and points at ckpt/README.md).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"CLIP checkpoint '{path}' not found: expected {_EXPECTED}. {_HELP}")
    info: dict[str, Any] = dict(format='open_clip', quick_gelu=None, model_name=None, model_cfg=None, type=None,
                                meta={})
    try:
        torchscript = is_torchscript_archive(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"CLIP checkpoint '{path}' is truncated or corrupt ({e}); "
                              f'expected {_EXPECTED}. {_HELP}') from e
    if path.suffix == '.safetensors':
        try:
            from safetensors.torch import load_file
            sd = load_file(str(path), device='cpu')
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f"could not read CLIP checkpoint '{path}' ({type(e).__name__}: {e}); "
                                  f'the file may be truncated. {_HELP}') from e
    elif torchscript:
        try:
            sd = dict(torch.jit.load(str(path), map_location='cpu').state_dict())
        except Exception as e:  # noqa: BLE001 - torch raises many types for broken archives
            raise CheckpointError(f"CLIP checkpoint '{path}' looks like a TorchScript archive but could not "
                                  f'be read ({type(e).__name__}: {e}); the file may be truncated. '
                                  f'{_HELP}') from e
        info.update(format='openai', quick_gelu=True)
    else:
        try:
            obj = torch.load(str(path), map_location='cpu', weights_only=True)
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f"could not read CLIP checkpoint '{path}' ({type(e).__name__}: {e}). "
                                  f'The file may be truncated or not a weights-only checkpoint; '
                                  f'expected {_EXPECTED}. {_HELP}') from e
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"CLIP checkpoint '{path}' holds a {type(obj).__name__}, "
                                  f'expected {_EXPECTED}. {_HELP}')
        if 'state_dict' in obj and isinstance(obj['state_dict'], Mapping):
            if 'clip_arch' in obj:
                arch = dict(obj['clip_arch'])
                info.update(format='clim', quick_gelu=arch.get('quick_gelu'),
                            model_name=arch.get('model_name'), model_cfg=arch.get('model_cfg'),
                            type=arch.get('type'), meta=dict(obj.get('meta') or {}))
            sd = dict(obj['state_dict'])
        elif any(isinstance(obj.get(k), Mapping) for k in ('model', 'module')):
            # EVA-CLIP release variants wrap the state dict under 'model' or 'module'.
            sd = dict(next(obj[k] for k in ('model', 'module') if isinstance(obj.get(k), Mapping)))
        else:
            sd = dict(obj)
    sd = _strip_module_prefix(sd)
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad or not sd:
        raise CheckpointError(f"CLIP checkpoint '{path}' is not a state dict of tensors (non-tensor entries: "
                              f'{bad[:5]}); expected {_EXPECTED}. {_HELP}')
    if any(k in sd for k in OPENAI_EXTRA_KEYS):
        if info['format'] != 'clim':
            info.update(format='openai', quick_gelu=True)
        for k in OPENAI_EXTRA_KEYS:
            sd.pop(k, None)
    return sd, info


def check_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                     path: str | os.PathLike = '<memory>') -> dict[str, torch.Tensor]:
    """Compare a state dict with a model's and raise if anything differs.

    Args:
        model: the open_clip model to be loaded.
        state_dict: candidate weights (open_clip key names).
        path: the file the weights came from (for the message).

    Returns:
        The state dict, with derived buffers (``attn_mask``) the model does not persist removed and a
        scalar/1-element ``logit_scale`` reshaped to the model's.

    Raises:
        CheckpointError: listing every missing key, unexpected key and shape mismatch.
    """
    expected = model.state_dict()
    sd = {k: v for k, v in state_dict.items() if not (k in _DERIVED_KEYS and k not in expected)}
    for k in ('logit_scale', 'logit_bias'):
        if k in sd and k in expected and sd[k].numel() == expected[k].numel() == 1:
            sd[k] = sd[k].reshape(expected[k].shape)
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    shapes = sorted(f'{k}: file {tuple(sd[k].shape)} vs model {tuple(expected[k].shape)}'
                    for k in set(sd) & set(expected) if sd[k].shape != expected[k].shape)
    if missing or unexpected or shapes:
        def fmt(items: list[str]) -> str:
            return ', '.join(items[:50]) + (f' ... (+{len(items) - 50} more)' if len(items) > 50 else '')
        lines = [f"CLIP checkpoint '{path}' does not match the model architecture:"]
        if missing:
            lines.append(f'  missing keys ({len(missing)}): {fmt(missing)}')
        if unexpected:
            lines.append(f'  unexpected keys ({len(unexpected)}): {fmt(unexpected)}')
        if shapes:
            lines.append(f'  shape mismatches ({len(shapes)}): {fmt(shapes)}')
        lines.append(f'  Check model_name / model_cfg against the file. {_HELP}')
        raise CheckpointError('\n'.join(lines))
    return sd


def infer_model_cfg(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Guess an open_clip model config from a standard CLIP state dict (OpenAI layout).

    Args:
        state_dict: open_clip / OpenAI key names.

    Returns:
        ``{'embed_dim', 'vision_cfg', 'text_cfg'}`` (``quick_gelu`` is left to the caller).
    """
    sd = state_dict
    try:
        if 'visual.proj' in sd:
            width = sd['visual.conv1.weight'].shape[0]
            patch = sd['visual.conv1.weight'].shape[-1]
            layers = len({k.split('.')[3] for k in sd if k.startswith('visual.transformer.resblocks.')})
            grid = round((sd['visual.positional_embedding'].shape[0] - 1) ** 0.5)
            vision_cfg: dict[str, Any] = dict(image_size=patch * grid, layers=layers, width=width,
                                              patch_size=patch, head_width=64)
            mlp = sd['visual.transformer.resblocks.0.mlp.c_fc.weight'].shape[0]
            if mlp != 4 * width:
                vision_cfg['mlp_ratio'] = mlp / width
        else:
            counts = [len({k.split('.')[2] for k in sd if k.startswith(f'visual.layer{b}.')})
                      for b in (1, 2, 3, 4)]
            width = sd['visual.layer1.0.conv1.weight'].shape[0]
            grid = round((sd['visual.attnpool.positional_embedding'].shape[0] - 1) ** 0.5)
            vision_cfg = dict(image_size=grid * 32, layers=counts, width=width, patch_size=None)
        text_width = sd['ln_final.weight'].shape[0]
        text_cfg = dict(context_length=sd['positional_embedding'].shape[0],
                        vocab_size=sd['token_embedding.weight'].shape[0], width=text_width,
                        heads=text_width // 64,
                        layers=len({k.split('.')[2] for k in sd if k.startswith('transformer.resblocks.')}))
        return dict(embed_dim=sd['text_projection'].shape[1], vision_cfg=vision_cfg, text_cfg=text_cfg)
    except KeyError as e:
        raise CheckpointError(f'cannot infer the CLIP architecture from the state dict (no key {e}); pass '
                              f'model_name or model_cfg. {_HELP}') from e


def _plain(obj: Any) -> Any:
    """Recursively convert to tensors / str / numbers / bool / None / dicts / lists only."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f'cannot store a {type(obj).__name__} in a weights-only checkpoint')


def save_clip_checkpoint(path: str | os.PathLike, model: nn.Module, clip_arch: Mapping[str, Any],
                         meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``{'state_dict', 'clip_arch', 'meta'}`` atomically (temporary file + ``os.replace``).

    Args:
        path: destination file.
        model: a :class:`~clim.models.CLIPModel` or an open_clip ``CLIP`` (its state dict is saved in
            open_clip key names, tensors detached and moved to CPU).
        clip_arch: ``{'model_name': str | None, 'model_cfg': dict | None, 'quick_gelu': bool}``.
        meta: free-form provenance (plain types only).

    Returns:
        The written path.
    """
    clip = getattr(model, 'clip', model)
    if 'quick_gelu' not in clip_arch or clip_arch['quick_gelu'] is None:
        raise ValueError("clip_arch must say the activation explicitly ('quick_gelu': bool)")
    state = {k: v.detach().cpu().clone() for k, v in clip.state_dict().items()}
    obj = dict(state_dict=state, clip_arch=_plain(dict(clip_arch)), meta=_plain(dict(meta or {})))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
    try:
        with open(tmp, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
