"""Errors the caption and region datasets raise, with messages that say what to do."""
from __future__ import annotations

__all__ = ['DATA_README', 'UnreadableImageError', 'DataPreparationError', 'check_paths', 'missing_path_error',
           'read_images_json']

DATA_README = 'data/README.md'


class UnreadableImageError(OSError):
    """An image file is missing, truncated or not decodable. Datasets catch it and skip the sample."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f'cannot read image {path}: {reason}')
        self.path = path
        self.reason = reason


class DataPreparationError(ValueError):
    """An annotation file is malformed (not JSON, or JSON of the wrong shape)."""


def read_images_json(path: str, fail) -> dict:
    """Read a json whose top level is an object with an ``"images"`` list.

    Args:
        path: the file.
        fail: ``fail(path, problem) -> Exception``, the caller's error with its expected-format hint.

    Raises:
        what ``fail`` returns: not JSON, not UTF-8, or no ``"images"`` list.
    """
    import json

    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise fail(path, f'not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})') from e
    except UnicodeDecodeError as e:
        raise fail(path, f'not UTF-8 text ({e})') from e
    if not isinstance(data, dict) or not isinstance(data.get('images'), list):
        raise fail(path, 'the top level must be an object with an "images" list')
    return data


def missing_path_error(kind: str, path: str, key: str) -> FileNotFoundError:
    """A FileNotFoundError naming the missing path and the config key that points at it."""
    return FileNotFoundError(
        f'{kind} not found: {path} (set by `{key}` in the dataset config). Prepare the data as described '
        f'in {DATA_README}, or point `data_root` / `{key}` at your copy.')


def check_paths(dataset: str, entries: list[tuple[str, str, str, bool]]) -> None:
    """Raise one FileNotFoundError listing every missing path.

    Args:
        dataset: the dataset class name (for the message).
        entries: ``(kind, path, config key, is_dir)`` per required path.
    """
    import os.path as osp
    missing = [(kind, path, key) for kind, path, key, is_dir in entries
               if not (osp.isdir(path) if is_dir else osp.isfile(path))]
    if not missing:
        return
    lines = [f'{dataset}: required data not found:']
    lines += [f'  - {kind}: {path}  (from `{key}`)' for kind, path, key in missing[:20]]
    if len(missing) > 20:
        lines.append(f'  ... and {len(missing) - 20} more')
    lines.append(f'Prepare the data as described in {DATA_README}, or point `data_root` and the keys above '
                 f'at your copy (e.g. --cfg-options train_dataloader.dataset.data_root=/path/to/data).')
    raise FileNotFoundError('\n'.join(lines))
