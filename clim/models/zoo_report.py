"""Checks and reports over the model zoo (:mod:`clim.models.zoo`, the table; :mod:`clim.models.hub` finds the
files): presence, size and format of each entry's weights, and which configs reference which entry. Used by
``tools/check_ckpt.py``; nothing here builds a model or downloads.
"""
from __future__ import annotations

import functools
import json
import os
import struct
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError, is_torchscript_archive
from .hub import (TOKENIZER_FILES, HubCacheError, ckpt_root, entry_expected_path, entry_missing_message, find_entry,
                  hf_text_download_hint, hub_cache_roots, hub_snapshot, locate_entry, norm_ckpt_path, resolve_entry,
                  snapshot_file)
from .zoo import ZOO, ZooEntry

__all__ = ['check_entry', 'config_references', 'configs_using', 'list_configs']

REPO_ROOT = Path(__file__).resolve().parents[2]  # the default configs/ folder is this repo's


# ------------------------------------------------------------------------------------------------
# checks
# ------------------------------------------------------------------------------------------------
def _dir_size(p: Path) -> int:
    """Bytes of a file, or of a hub-cache folder (its blobs/ when present: snapshots link into it)."""
    if p.is_file():
        return p.stat().st_size
    base = p / 'blobs' if (p / 'blobs').is_dir() else p
    return sum(f.stat().st_size for f in base.rglob('*') if f.is_file())


def _state_keys(path: Path) -> list[str]:
    """Top-level tensor keys of a weights file, read cheaply (mmap / safetensors header)."""
    import torch

    if path.suffix == '.safetensors':
        with open(path, 'rb') as f:
            (n,) = struct.unpack('<Q', f.read(8))
            header = json.loads(f.read(n))
        return [k for k in header if k != '__metadata__']
    if is_torchscript_archive(path):
        return list(torch.jit.load(str(path), map_location='cpu').state_dict())
    obj = torch.load(str(path), map_location='cpu', weights_only=True, mmap=zipfile.is_zipfile(path))
    if not isinstance(obj, Mapping):
        raise CheckpointError(f'holds a {type(obj).__name__}, not a state dict')
    for k in ('state_dict', 'model'):
        if k in obj and isinstance(obj[k], Mapping):
            obj = obj[k]
            break
    keys = [str(k) for k in obj]
    if keys and all(k.startswith('module.') for k in keys):
        keys = [k[len('module.'):] for k in keys]
    return keys


def check_entry(entry: ZooEntry, root: str | os.PathLike | None = None, deep: bool = True) -> dict[str, Any]:
    """Presence, size and format of one entry's weights.

    Returns:
        ``{'name', 'path' (expected), 'found' (path or None), 'status': 'present' | 'missing' | 'bad',
        'size_mb', 'size_ok' (bool | None), 'format', 'detail'}``. ``bad``: present but unreadable /
        wrong format / incomplete hub snapshot (``detail`` says why).
    """
    res: dict[str, Any] = dict(name=entry.name, path=str(entry_expected_path(entry, root)), found=None,
                               status='missing', size_mb=None, size_ok=None, format=entry.fmt, detail='')
    found = locate_entry(entry, root)
    if found is None:
        res['detail'] = entry_missing_message(entry, root)
        return res
    res['found'] = str(found)
    res['size_mb'] = round(_dir_size(found) / 2 ** 20, 1)
    if entry.size_mb:
        res['size_ok'] = res['size_mb'] >= 0.9 * entry.size_mb
    try:
        if entry.fmt == 'hf_hub_cache':
            snap = resolve_entry(entry, root)
            files = [snapshot_file(found, alt) for alt in entry.hub_files]
            for f in snap.glob('*.json'):
                json.loads(f.read_text())
            weights = [f for f in files if f.suffix in ('.bin', '.safetensors', '.pt', '.pth')]
            detail = f'snapshot {snap.name[:12]}: ' + ', '.join(f.name for f in files)
        else:
            weights = [found]
            detail = ''
            if entry.fmt == 'torchscript':
                detail = 'TorchScript archive' if is_torchscript_archive(found) else 'state dict (not TorchScript)'
        if deep:
            for w in weights:
                keys = _state_keys(w)
                lacking = [k for k in entry.keys if k not in keys]
                if not keys or lacking:
                    raise CheckpointError(f'{w.name}: {len(keys)} tensors, lacks expected keys {lacking}')
                detail += f'{"; " if detail else ""}{w.name}: {len(keys)} tensors'
        res.update(status='present', detail=detail)
    except Exception as e:  # noqa: BLE001 - any read failure is reported, not raised
        res.update(status='bad', detail=f'{type(e).__name__}: {e}')
        return res
    # Other hub entries it reads (a text tower's config + tokenizer): without them it cannot be built.
    for repo in entry.extra_hub:
        roots = hub_cache_roots([root]) if root is not None else None
        try:
            snap = hub_snapshot(repo, [('config.json',), TOKENIZER_FILES], hf_text_download_hint(repo), roots=roots)
            res['detail'] += f'; {repo}: snapshot {snap.name[:12]}'
        except HubCacheError as e:
            res.update(status='missing', detail=f'{res["detail"]}; but it also needs {e}')
    return res


# ------------------------------------------------------------------------------------------------
# configs
# ------------------------------------------------------------------------------------------------
def _walk(obj: Any, key: str = '') -> Iterator[tuple[str, str]]:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _walk(v, str(k))
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _walk(v, key)
    elif isinstance(obj, str):
        yield key, obj


def config_references(cfg: Any) -> tuple[list[ZooEntry], list[str]]:
    """Zoo entries a config needs, and other ``ckpt/...`` paths it names.

    Args:
        cfg: an mmengine ``Config``, a dict, or a config file path.

    Returns:
        ``(entries, other_paths)``: entries referenced by path (``ckpt/...``), ``hf-hub:`` id or by name
        (``ZooModel(name=...)`` / ``pretrained=<name>``); ``ckpt/`` paths no entry covers.
    """
    if isinstance(cfg, (str, os.PathLike)):
        from mmengine.config import Config
        cfg = Config.fromfile(str(cfg), import_custom_modules=False)
    data = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)
    if 'model' in data:
        # Only what gets built or loaded: top-level helper variables (e.g. a base config's `clip_cfg`
        # that a child overrides inside `model`) are not requirements.
        data = {k: data[k] for k in ('model', 'load_from') if data.get(k) is not None}
    entries: list[ZooEntry] = []
    other: list[str] = []
    for key, value in _walk(data):
        entry = None
        if value.startswith('hf-hub:'):
            entry = find_entry(hub_repo=value[len('hf-hub:'):])
        elif key in ('name', 'pretrained', 'zoo', 'checkpoint'):
            entry = find_entry(name=value)
        if entry is None:
            entry = find_entry(path=value)
        if entry is not None:
            if entry not in entries:
                entries.append(entry)
        elif norm_ckpt_path(value) is not None and value not in other:
            other.append(value)
    return entries, other


@functools.lru_cache(maxsize=256)
def _config_entry_names(path: str, mtime_ns: int, root: str) -> tuple[str, ...]:
    """Names of the entries a config file references (cached per file version and weights folder)."""
    return tuple(e.name for e in config_references(path)[0])


def list_configs(config_dir: str | os.PathLike | None = None) -> list[Path]:
    """Every config file under ``configs/`` (``_base_`` fragments excluded)."""
    root = Path(config_dir) if config_dir else REPO_ROOT / 'configs'
    return sorted(p for p in root.rglob('*.py') if '_base_' not in p.parts)


def configs_using(config_dir: str | os.PathLike | None = None,
                  configs: Sequence[str | os.PathLike] | None = None) -> dict[str, list[str]]:
    """Zoo name -> the configs (paths relative to the repo when inside it) that reference it.
    Configs that fail to parse are skipped."""
    usage: dict[str, list[str]] = {name: [] for name in ZOO}
    for path in (configs if configs is not None else list_configs(config_dir)):
        path = Path(path)
        try:
            names = _config_entry_names(str(path.resolve()), path.stat().st_mtime_ns, str(ckpt_root()))
        except Exception:  # noqa: BLE001, S112 - a broken config is not this tool's concern
            continue
        try:
            shown = str(path.resolve().relative_to(REPO_ROOT))
        except ValueError:
            shown = str(path)
        for name in names:
            usage[name].append(shown)
    return usage


