"""The demo's stage cache: each stage runs once per key and its JSON result is kept on disk."""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def stage_key(obj: Any) -> str:
    """A short hash of any JSON-able value (dict keys sorted): what a stage's result depends on."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class StageCache:
    """Runs a stage once per key and remembers its result (JSON) and duration.

    ``run(name, key_parts, fn)`` calls ``fn(<root>/<name>)`` -> a JSON-able dict, unless
    ``<root>/<name>/stage.json`` holds a record of the same key; returns the record
    ``{'key', 'seconds', 'result', 'reused'}``. Records are written atomically.
    """

    def __init__(self, root: Path, log: Callable[[str], None] = print) -> None:
        self.root = root
        self.log = log
        self.records: dict[str, dict] = {}

    def run(self, name: str, key_parts: Any, fn: Callable[[Path], dict]) -> dict:
        key = stage_key(key_parts)
        stage_dir = self.root / name
        record_file = stage_dir / 'stage.json'
        if record_file.is_file():
            record = json.loads(record_file.read_text())
            if record.get('key') == key:
                record['reused'] = True
                self.records[name] = record
                self.log(f'[{name}] reused from {stage_dir} (finished in {record["seconds"]:.0f} s earlier)')
                return record
        stage_dir.mkdir(parents=True, exist_ok=True)
        self.log(f'[{name}] running ...')
        start = time.perf_counter()
        result = fn(stage_dir)
        record = {'key': key, 'seconds': time.perf_counter() - start, 'result': result, 'reused': False}
        tmp = record_file.with_suffix('.json.tmp')
        tmp.write_text(json.dumps(record, indent=2, default=str))
        os.replace(tmp, record_file)
        self.records[name] = record
        self.log(f'[{name}] done in {record["seconds"]:.0f} s')
        return record
