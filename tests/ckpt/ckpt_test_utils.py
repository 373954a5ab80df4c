"""Writers of random-weight files in each zoo model's real on-disk layout (tests only)."""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

# A small DINOv2 (timm vit_base_patch14_dinov2 kwargs): same key names and code paths as ViT-B/14.
TINY_DINOV2_KWARGS = dict(img_size=56, embed_dim=64, depth=4, num_heads=2)
COMMIT = '0123456789abcdef0123456789abcdef01234567'


class _Node(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def write_torchscript_state(state_dict: Mapping[str, torch.Tensor], path: Path, extra: Mapping | None = None) -> Path:
    """A TorchScript archive whose state dict is ``state_dict`` (+ ``extra`` buffers), fp16 floats, as
    OpenAI's released CLIP ``.pt`` files."""
    root = _Node()
    entries = dict(state_dict)
    entries.update(extra or {})
    for key, value in entries.items():
        *parents, leaf = key.split('.')
        mod = root
        for name in parents:
            if name not in mod._modules:
                mod.add_module(name, _Node())
            mod = mod._modules[name]
        value = value.detach().clone()
        if value.is_floating_point():
            mod.register_parameter(leaf, nn.Parameter(value.half(), requires_grad=False))
        else:
            mod.register_buffer(leaf, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(root), str(path))
    return path


def write_hub_cache(cache_root: Path, repo_id: str, files: Mapping[str, bytes | Mapping | str],
                    commit: str = COMMIT) -> Path:
    """A huggingface_hub cache entry: ``models--org--name/{blobs/<sha256>, refs/main,
    snapshots/<commit>/<file> -> ../../blobs/<sha256>}``. ``files`` values: bytes, a dict (written as
    JSON) or a path to copy."""
    entry = cache_root / ('models--' + repo_id.replace('/', '--'))
    (entry / 'blobs').mkdir(parents=True, exist_ok=True)
    (entry / 'refs').mkdir(exist_ok=True)
    snap = entry / 'snapshots' / commit
    snap.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, Mapping):
            data = json.dumps(content, indent=2).encode()
        elif isinstance(content, (str, os.PathLike)):
            data = Path(content).read_bytes()
        else:
            data = bytes(content)
        sha = hashlib.sha256(data).hexdigest()
        (entry / 'blobs' / sha).write_bytes(data)
        link = snap / name
        link.parent.mkdir(parents=True, exist_ok=True)
        rel = os.path.relpath(entry / 'blobs' / sha, link.parent)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(rel)
    (entry / 'refs' / 'main').write_text(commit)  # huggingface_hub writes the hash without a newline
    return entry


def state_bytes(state_dict: Mapping[str, torch.Tensor], fmt: str) -> bytes:
    """Serialize a state dict as ``'safetensors'`` or ``'torch'`` bytes."""
    if fmt == 'safetensors':
        from safetensors.torch import save
        return save({k: v.contiguous() for k, v in state_dict.items()})
    import io
    buf = io.BytesIO()
    torch.save(dict(state_dict), buf)
    return buf.getvalue()
