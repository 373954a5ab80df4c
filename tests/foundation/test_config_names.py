"""Configs live in one folder per method and follow one naming order; old paths still resolve.

The order is ``<method>_<backbone>_<data>[_<variant>]`` (README, "Layout"). ``configs/renamed.json``
maps every path a config had before the move to its current one; tools/train.py and tools/test.py accept
the old paths with a notice.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = REPO_ROOT / 'configs'
# the folder a config lives in -> the methods its file names may start with
FOLDER_METHODS = {
    'clim': ('clim_',),
    'clipself': ('clipself_',),
    'region_eval': ('region_eval_',),
    'fvit': ('fvit_',),
    'baron': ('baron_kd_',),
    'tiny': ('clim_', 'clipself_', 'region_eval_', 'fvit_', 'baron_kd_', 'clip_pretrain_'),
    'demo': ('clim_', 'fvit_', 'clip_pretrain_', 'region_eval_'),
}


def _renamed() -> dict[str, str]:
    table = json.loads((CONFIGS / 'renamed.json').read_text())
    return {old: new for old, new in table.items() if not old.startswith('_')}


def test_every_runnable_config_sits_in_its_method_folder() -> None:
    misplaced = []
    for path in sorted(CONFIGS.rglob('*.py')):
        rel = path.relative_to(CONFIGS)
        if rel.parts[0] == '_base_':
            continue
        folder = rel.parts[0] if len(rel.parts) > 1 else ''
        methods = FOLDER_METHODS.get(folder)
        if methods is None or not path.name.startswith(methods):
            misplaced.append(str(rel))
    assert not misplaced, f'configs outside their method folder or naming order: {misplaced}'


def test_renamed_table_points_from_gone_paths_to_existing_configs() -> None:
    table = _renamed()
    assert table, 'configs/renamed.json lists no renames'
    for old, new in table.items():
        assert not (REPO_ROOT / old).exists(), f'{old} is listed as renamed but still exists'
        assert (REPO_ROOT / new).is_file(), f'{old} -> {new}: the new config does not exist'


def test_docs_name_no_old_config_path() -> None:
    table = _renamed()
    docs = [REPO_ROOT / 'README.md', REPO_ROOT / 'ckpt' / 'README.md', REPO_ROOT / 'data' / 'README.md',
            *sorted((REPO_ROOT / 'docs').glob('*.md'))]
    stale = [(doc.name, old) for doc in docs for old in table if old in doc.read_text()]
    assert not stale, f'documents still name old config paths: {stale}'


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_tools_accept_an_old_config_path_with_a_notice(tool: str) -> None:
    old, new = 'configs/tiny/fvit_tiny.py', 'configs/tiny/fvit_tiny_shapes.py'
    assert _renamed()[old] == new
    env = {k: v for k, v in os.environ.items() if k not in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')}
    env['OMP_NUM_THREADS'] = '1'
    # --launcher pytorch outside torchrun stops the tool right after it read the config, before any build
    args = [sys.executable, f'tools/{tool}', old] + (['unused.pth'] if tool == 'test.py' else [])
    proc = subprocess.run(args + ['--launcher', 'pytorch'], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert f'note: {old} was renamed to {new}; using it' in proc.stderr, proc.stderr
    assert '--launcher pytorch needs the environment torchrun sets' in proc.stderr, proc.stderr
    assert 'Traceback' not in proc.stderr
    proc = subprocess.run([sys.executable, f'tools/{tool}', 'configs/tiny/no_such_config.py']
                          + (['unused.pth'] if tool == 'test.py' else []),
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and 'configs/tiny/no_such_config.py does not exist' in proc.stderr, proc.stderr
