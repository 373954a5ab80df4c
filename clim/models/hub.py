"""Offline resolution of weights kept in ``ckpt/``: hub-cache directories, zoo entries and zoo names.

Nothing here downloads. Two on-disk layouts besides plain files are understood:

- a Hugging Face hub cache entry, ``models--<org>--<name>/`` with ``refs/main`` (the snapshot hash)
  and ``snapshots/<hash>/<files>`` (usually symlinks into ``blobs/``), as written by
  ``huggingface_hub`` / ``hf download --cache-dir ckpt``;
- a torch hub checkpoint, ``checkpoints/<file>.pth`` under the torch hub dir (``$TORCH_HOME/hub``), as
  written by torchvision's ``weights=...`` download.

The zoo table (:mod:`clim.models.zoo`, pure data) says where each entry is expected; the functions here look
on disk: :func:`find_entry` (by name, ``ckpt/...`` path or hub repo), :func:`locate_entry`,
:func:`resolve_entry` (with the download hint when missing), :func:`entry_build_cfg`.
:func:`resolve_pretrained` turns what a config puts in ``pretrained`` (a file, a hub-cache directory,
``hf-hub:org/name`` or a zoo name) into the weight file to read, and fails with the searched paths and the
download hint when it is missing.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError
from .zoo import (CLIPSEG_FILES, OPEN_CLIP_WEIGHT_FILES, TOKENIZER_FILES, ZOO, ZooEntry, hf_text_download,
                  hub_cache_dirname)

__all__ = [
    'HubCacheError', 'OPEN_CLIP_WEIGHT_FILES', 'ckpt_root', 'hub_cache_dirname', 'hub_cache_roots',
    'find_hub_cache', 'snapshot_dir', 'snapshot_file', 'resolve_pretrained', 'set_offline_env', 'hub_snapshot',
    'TOKENIZER_FILES', 'CLIPSEG_FILES', 'hf_text_download', 'hf_text_download_hint', 'norm_ckpt_path',
    'find_entry', 'entry_expected_path', 'entry_candidates', 'locate_entry', 'entry_missing_message',
    'resolve_entry', 'entry_build_cfg',
]

_HELP = 'See ckpt/README.md for the expected layout and download commands.'
_README = 'ckpt/README.md'


def hf_text_download_hint(repo_id: str) -> str:
    """:func:`hf_text_download` as an error-message hint."""
    return (f'Get it: {hf_text_download(repo_id)} (the text tower\'s config and tokenizer; the weights come '
            f'with the CLIP file). See ckpt/README.md.')


class HubCacheError(CheckpointError):
    """A hub-cache entry is missing or incomplete."""


def set_offline_env() -> None:
    """Default the hub libraries to offline mode (an explicit user setting wins)."""
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')


def ckpt_root() -> Path:
    """The weights folder: ``$CLIM_CKPT_DIR`` or ``./ckpt``."""
    return Path(os.environ.get('CLIM_CKPT_DIR', 'ckpt'))


def hub_cache_roots(extra: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """Where hub-cache entries are looked for, in order: ``extra``, ``ckpt/``, ``$HF_HUB_CACHE``,
    ``$HF_HOME/hub``. Only set environment variables count (no default ~/.cache: offline runs must
    not depend on a user's home)."""
    roots = [Path(p) for p in extra] + [ckpt_root()]
    if os.environ.get('HF_HUB_CACHE'):
        roots.append(Path(os.environ['HF_HUB_CACHE']))
    if os.environ.get('HF_HOME'):
        roots.append(Path(os.environ['HF_HOME']) / 'hub')
    out: list[Path] = []
    for r in roots:
        if r not in out:
            out.append(r)
    return out


def find_hub_cache(repo_id: str, roots: Sequence[str | os.PathLike] | None = None) -> Path | None:
    """The ``models--org--name`` directory of ``repo_id`` in the first root holding one, else None."""
    name = hub_cache_dirname(repo_id)
    for root in (hub_cache_roots() if roots is None else [Path(r) for r in roots]):
        if (Path(root) / name).is_dir():
            return Path(root) / name
    return None


def snapshot_dir(cache_dir: str | os.PathLike, revision: str = 'main') -> Path:
    """The snapshot folder of a ``models--org--name`` cache entry.

    ``refs/<revision>`` holds the commit hash naming ``snapshots/<hash>``; a revision that is itself a
    hash is used directly; without refs, a single snapshot is accepted.

    Raises:
        HubCacheError: no usable snapshot (the message lists what is there).
    """
    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        raise HubCacheError(f"hub cache entry '{cache_dir}' not found. {_HELP}")
    snaps = cache_dir / 'snapshots'
    ref = cache_dir / 'refs' / revision
    if ref.is_file():
        commit = ref.read_text().strip()
        if (snaps / commit).is_dir():
            return snaps / commit
        raise HubCacheError(f"hub cache entry '{cache_dir}': refs/{revision} points at snapshot {commit!r}, "
                            f"but '{snaps / commit}' does not exist (incomplete copy?). {_HELP}")
    if (snaps / revision).is_dir():
        return snaps / revision
    found = sorted(p for p in snaps.iterdir() if p.is_dir()) if snaps.is_dir() else []
    if len(found) == 1:
        return found[0]
    raise HubCacheError(f"hub cache entry '{cache_dir}' has no refs/{revision} and "
                        f"{len(found)} snapshots ({[p.name for p in found]}); expected "
                        f"refs/{revision} + snapshots/<hash>/. {_HELP}")


def snapshot_file(cache_dir: str | os.PathLike, filenames: str | Sequence[str], revision: str = 'main') -> Path:
    """The first of ``filenames`` present in the snapshot (symlinks into ``blobs/`` must resolve).

    Raises:
        HubCacheError: none present (or a dangling symlink), naming the snapshot and the files wanted.
    """
    names = [filenames] if isinstance(filenames, str) else list(filenames)
    snap = snapshot_dir(cache_dir, revision)
    for n in names:
        p = snap / n
        if p.is_file():
            return p
        if p.is_symlink():
            raise HubCacheError(f"'{p}' is a dangling link (its blob '{os.readlink(p)}' is missing: copy the "
                                f"whole models--* folder, blobs/ included). {_HELP}")
    have = sorted(p.name for p in snap.iterdir())
    raise HubCacheError(f"hub snapshot '{snap}' lacks {' / '.join(names)} (it has {have}). {_HELP}")


def hub_snapshot(repo_or_dir: str | os.PathLike, files: Sequence[Sequence[str]] = (), hint: str = '',
                 roots: Sequence[str | os.PathLike] | None = None) -> Path:
    """The local folder holding a hub repo's files, for libraries that read a folder (transformers'
    ``from_pretrained``, open_clip's HF text tower and tokenizer).

    Args:
        repo_or_dir: ``'org/name'`` (looked up in :func:`hub_cache_roots`) or an existing folder
            (a snapshot, or a plain ``save_pretrained`` folder), returned unchanged.
        files: files the folder must hold, each item a tuple of alternatives.
        hint: how to get the entry (appended to the error).
        roots: where to look for hub caches (default :func:`hub_cache_roots`).

    Raises:
        HubCacheError: no cache entry (the message lists the paths searched) or a file missing.
    """
    path = Path(repo_or_dir)
    if path.is_dir():
        if path.name.startswith('models--'):
            path = snapshot_dir(path)
        missing = [' / '.join(alt) for alt in files if not any((path / n).is_file() for n in alt)]
        if missing:
            raise HubCacheError(f"'{path}' lacks {', '.join(missing)}. {hint or _HELP}")
        return path
    repo_id = str(repo_or_dir).removeprefix('hf-hub:')
    roots = hub_cache_roots() if roots is None else [Path(r) for r in roots]
    cache = find_hub_cache(repo_id, roots)
    if cache is None:
        searched = [str(r / hub_cache_dirname(repo_id)) for r in roots]
        raise HubCacheError(f'{repo_id}: no hub cache entry (looked for {searched}). {hint or _HELP}')
    try:
        for alternatives in files:
            snapshot_file(cache, alternatives)
        return snapshot_dir(cache)
    except HubCacheError as e:
        raise HubCacheError(f'{repo_id}: {e} {hint}'.rstrip()) from e


# ------------------------------------------------------------------------------------------------
# zoo entries on disk (the table itself is clim.models.zoo)
# ------------------------------------------------------------------------------------------------
def norm_ckpt_path(value: str) -> str | None:
    """A config's path inside the weights folder, relative to it: ``'ckpt/x/y'`` / ``'./ckpt/x'`` /
    ``'<ckpt_root()>/x'`` -> ``'x/y'``; anything else None."""
    v = value.replace('\\', '/')
    while v.startswith('./'):
        v = v[2:]
    root = str(ckpt_root()).replace('\\', '/').rstrip('/')
    for prefix in ('ckpt/', root + '/'):
        if v.startswith(prefix):
            return v[len(prefix):]
    return None


def find_entry(name: str | None = None, path: str | None = None, hub_repo: str | None = None) -> ZooEntry | None:
    """The first zoo entry with this name / alias, whose expected location contains ``path`` (``ckpt/...``,
    or a path inside a hub-cache entry), or whose hub repo is ``hub_repo``; None if none."""
    rel = norm_ckpt_path(path) if path is not None else None
    for e in ZOO.values():
        if name is not None and e.is_called(name):
            return e
        if hub_repo is not None and e.hub_repo == hub_repo.strip('/'):
            return e
        if rel is not None and e.covers(rel):
            return e
    return None


def entry_expected_path(entry: ZooEntry, root: str | os.PathLike | None = None) -> Path:
    """Where ``entry``'s weights are expected (``root`` defaults to :func:`ckpt_root`)."""
    return Path(root if root is not None else ckpt_root()) / entry.path


def entry_candidates(entry: ZooEntry, root: str | os.PathLike | None = None) -> list[Path]:
    """Every location searched for ``entry``'s weights, in order (the expected path first; hub caches also
    in :func:`hub_cache_roots`, torch hub files under ``$TORCH_HOME/hub``)."""
    out = [entry_expected_path(entry, root)]
    if entry.fmt == 'hf_hub_cache':
        extra = [root] if root is not None else []
        out += [Path(r) / hub_cache_dirname(entry.hub_repo) for r in hub_cache_roots(extra)]
    elif entry.fmt == 'torch_hub' and os.environ.get('TORCH_HOME'):
        out.append(Path(os.environ['TORCH_HOME']) / 'hub' / entry.path)
    seen: list[Path] = []
    for p in out:
        if p not in seen:
            seen.append(p)
    return seen


def locate_entry(entry: ZooEntry, root: str | os.PathLike | None = None) -> Path | None:
    """The first of :func:`entry_candidates` that exists (a folder for hub caches, else a file), else None."""
    for p in entry_candidates(entry, root):
        if (p.is_dir() if entry.fmt == 'hf_hub_cache' else p.is_file()):
            return p
    return None


def entry_missing_message(entry: ZooEntry, root: str | os.PathLike | None = None) -> str:
    """What is missing, where it was looked for and how to get it."""
    searched = ', '.join(f"'{p}'" for p in entry_candidates(entry, root))
    what = 'hub cache folder' if entry.fmt == 'hf_hub_cache' else 'file'
    return (f"{entry.name} ({entry.title}): {what} not found; looked for {searched}. "
            f'Get it: {entry.download}. See {_README}.')


def resolve_entry(entry: ZooEntry, root: str | os.PathLike | None = None, open_clip_weights: bool = False) -> Path:
    """``entry``'s weights on disk: the file, or for hub caches the snapshot folder (checked to hold the
    entry's ``hub_files``) or, with ``open_clip_weights``, its open_clip weight file.

    Raises:
        CheckpointError: missing (message: searched paths + download hint); HubCacheError: incomplete.
    """
    found = locate_entry(entry, root)
    if found is None:
        raise CheckpointError(entry_missing_message(entry, root))
    if entry.fmt != 'hf_hub_cache':
        return found
    try:
        if open_clip_weights:
            return snapshot_file(found, OPEN_CLIP_WEIGHT_FILES)
        snap = snapshot_dir(found)
        for alternatives in entry.hub_files:
            snapshot_file(found, alternatives)
        return snap
    except HubCacheError as e:
        raise HubCacheError(f'{entry.name}: {e} Get it: {entry.download}.') from e


def entry_build_cfg(entry: ZooEntry, root: str | os.PathLike | None = None, **overrides: Any) -> dict:
    """``entry``'s registry config with the resolved weights (``pretrained``) and ``overrides`` merged.

    Raises:
        NotImplementedError: the entry has no loader yet; CheckpointError: weights missing (see
        :func:`resolve_entry`; not raised when ``overrides`` gives ``pretrained``).
    """
    if entry.build is None:
        needs = f" (needs {', '.join(entry.requires)})" if entry.requires else ''
        raise NotImplementedError(f'{entry.name}: no loader yet{needs}. {entry.notes}')
    cfg = copy.deepcopy(dict(entry.build))
    if 'pretrained' not in overrides:
        cfg['pretrained'] = str(resolve_entry(entry, root, open_clip_weights=entry.library == 'open_clip'))
    cfg.update(overrides)
    return cfg


def resolve_pretrained(pretrained: str | os.PathLike) -> str:
    """What ``CLIPModel(pretrained=...)`` reads, from what a config says.

    - an existing file: returned unchanged (every pre-existing use);
    - a hub-cache directory (``.../models--org--name``) or a snapshot directory: its open_clip weight
      file (``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``);
    - ``hf-hub:org/name``: that repo's cache entry in :func:`hub_cache_roots`, then as above;
    - a zoo name (``'metaclip-vit-b-16'``, see :mod:`clim.models.zoo`): its weights (:func:`resolve_entry`).

    A path that matches a zoo entry but is missing fails with the entry's download hint; any other
    missing path is returned unchanged (the checkpoint reader reports it).

    Raises:
        HubCacheError / CheckpointError: missing or incomplete, with paths searched and download hint.
    """
    text = str(pretrained)
    path = Path(text)
    if path.is_file():
        return text
    set_offline_env()
    if text.startswith('hf-hub:'):
        repo_id = text[len('hf-hub:'):]
        entry = find_entry(hub_repo=repo_id)
        cache = find_hub_cache(repo_id)
        if cache is None:
            searched = [str(r / hub_cache_dirname(repo_id)) for r in hub_cache_roots()]
            hint = entry_missing_message(entry) if entry else _HELP
            raise HubCacheError(f'{text}: no hub cache entry (looked for {searched}). {hint}')
        return str(snapshot_file(cache, OPEN_CLIP_WEIGHT_FILES))
    if path.is_dir():
        if path.name.startswith('models--'):
            return str(snapshot_file(path, OPEN_CLIP_WEIGHT_FILES))
        if path.parent.name == 'snapshots':
            for n in OPEN_CLIP_WEIGHT_FILES:
                if (path / n).is_file():
                    return str(path / n)
            raise HubCacheError(f"snapshot '{path}' lacks {' / '.join(OPEN_CLIP_WEIGHT_FILES)}. {_HELP}")
        return text
    entry = find_entry(name=text) or find_entry(path=text)
    if entry is not None:
        return str(resolve_entry(entry, open_clip_weights=True))
    return text
