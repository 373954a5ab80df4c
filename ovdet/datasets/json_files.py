"""Reading and writing the annotation jsons of the data-preparation tools (OV-COCO, OV-LVIS).

Pure Python (no OpenMMLab import), so the prepare tools run before the stack is installed.
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ['PrepareError', 'load_coco_json', 'write_json']


class PrepareError(Exception):
    """A user-facing input problem (message names the file and the problem)."""


def load_coco_json(path: str | Path, role: str) -> dict:
    """Read a COCO json, turning every failure into a message that names the file and the problem."""
    p = Path(path)
    if not p.exists():
        raise PrepareError(f"{role} file not found: {p}")
    if p.is_dir():
        raise PrepareError(f"{role} path is a directory, expected a json file: {p}")
    try:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise PrepareError(f"{role} file {p} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
                           " (truncated download?)") from None
    except UnicodeDecodeError as e:
        raise PrepareError(f"{role} file {p} is not UTF-8 text ({e.reason}); is it compressed?") from None
    except OSError as e:
        raise PrepareError(f"{role} file {p} cannot be read: {e.strerror}") from None
    return data


def write_json(obj: dict, path: Path) -> None:
    """Write ``obj`` to ``path`` through a temporary file renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f)
    tmp.replace(path)  # never leave a half-written json under the final name


