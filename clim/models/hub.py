"""Offline resolution of weights kept in ``ckpt/``: hub-cache directories and zoo names.

Nothing here downloads. Two on-disk layouts besides plain files are understood:

- a Hugging Face hub cache entry, ``models--<org>--<name>/`` with ``refs/main`` (the snapshot hash)
  and ``snapshots/<hash>/<files>`` (usually symlinks into ``blobs/``), as written by
  ``huggingface_hub`` / ``hf download --cache-dir ckpt``;
- a torch hub checkpoint, ``checkpoints/<file>.pth`` under the torch hub dir (``$TORCH_HOME/hub``), as
  written by torchvision's ``weights=...`` download.

:func:`resolve_pretrained` turns what a config puts in ``pretrained`` (a file, a hub-cache directory,
``hf-hub:org/name`` or a zoo name, see :mod:`clim.models.zoo`) into the weight file to read, and fails
with the searched paths and the download hint when it is missing.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .checkpoint import CheckpointError

__all__ = [
    'HubCacheError', 'OPEN_CLIP_WEIGHT_FILES', 'ckpt_root', 'hub_cache_dirname', 'hub_cache_roots',
    'find_hub_cache', 'snapshot_dir', 'snapshot_file', 'resolve_pretrained', 'set_offline_env', 'hub_snapshot',
    'TOKENIZER_FILES', 'CLIPSEG_FILES', 'hf_text_download', 'hf_text_download_hint',
]

# open_clip's weight-file names in a hub repo, preferred first (open_clip.pretrained: HF_WEIGHTS_NAME
# and its safetensors alternative).
OPEN_CLIP_WEIGHT_FILES = ('open_clip_model.safetensors', 'open_clip_pytorch_model.bin')
_HELP = 'See ckpt/README.md for the expected layout and download commands.'
# A tokenizer folder holds one of these (fast tokenizer, WordPiece vocab, BPE vocab).
TOKENIZER_FILES = ('tokenizer.json', 'vocab.txt', 'vocab.json')
# What a CLIPSeg snapshot must hold: config, weights, tokenizer (preprocessor_config.json is optional).
CLIPSEG_FILES = (('config.json',), ('model.safetensors', 'pytorch_model.bin'), TOKENIZER_FILES)


def hf_text_download(repo_id: str) -> str:
    """The command that puts a text model's config and tokenizer (not its weights) into ``ckpt/``."""
    return f'hf download {repo_id} config.json vocab.txt tokenizer_config.json --cache-dir ckpt'


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


def hub_cache_dirname(repo_id: str) -> str:
    """``'org/name'`` -> ``'models--org--name'`` (huggingface_hub's cache folder name)."""
    return 'models--' + repo_id.strip('/').replace('/', '--')


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


def resolve_pretrained(pretrained: str | os.PathLike) -> str:
    """What ``CLIPModel(pretrained=...)`` reads, from what a config says.

    - an existing file: returned unchanged (every pre-existing use);
    - a hub-cache directory (``.../models--org--name``) or a snapshot directory: its open_clip weight
      file (``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``);
    - ``hf-hub:org/name``: that repo's cache entry in :func:`hub_cache_roots`, then as above;
    - a zoo name (``'metaclip-vit-b-16'``, see :mod:`clim.models.zoo`): its expected location.

    A path that matches a zoo entry but is missing fails with the entry's download hint; any other
    missing path is returned unchanged (the checkpoint reader reports it).

    Raises:
        HubCacheError / CheckpointError: missing or incomplete, with paths searched and download hint.
    """
    from . import zoo  # local: zoo imports this module

    text = str(pretrained)
    path = Path(text)
    if path.is_file():
        return text
    set_offline_env()
    if text.startswith('hf-hub:'):
        repo_id = text[len('hf-hub:'):]
        entry = zoo.find_entry(hub_repo=repo_id)
        cache = find_hub_cache(repo_id)
        if cache is None:
            searched = [str(r / hub_cache_dirname(repo_id)) for r in hub_cache_roots()]
            hint = entry.missing_message() if entry else _HELP
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
    entry = zoo.find_entry(name=text) or zoo.find_entry(path=text)
    if entry is not None:
        return str(entry.resolve(open_clip_weights=True))
    return text
