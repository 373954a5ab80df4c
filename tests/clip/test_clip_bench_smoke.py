"""The dense benchmark still runs (one tiny iteration; no timing asserts)."""
from __future__ import annotations

import importlib
import json
from pathlib import Path


def test_dense_benchmark_smoke(tmp_path: Path, repo_root: Path, tiny_clip_cfg: dict) -> None:
    bench = importlib.import_module('benchmarks.dense')
    payload = bench.main(['--model-cfg', json.dumps(tiny_clip_cfg), '--sizes', '64', '96', '--repeats', '1',
                          '--warmup', '0', '--device', 'cpu', '--out-dir', str(tmp_path)])
    assert [r['dense_shape'] for r in payload['results']] == [[1, 32, 4, 4], [1, 32, 6, 6]]
    doc = json.loads(next(tmp_path.glob('dense-*.json')).read_text())
    assert doc['benchmark'] == 'dense' and 'cpu' in doc['machine'] and doc['results'][0]['ratio'] > 0
    assert next(tmp_path.glob('dense-*.md')).read_text().startswith('| size')


def test_fvit_infer_benchmark_reports_stage_shares(tmp_path: Path, repo_root: Path) -> None:
    bench = importlib.import_module('benchmarks.fvit_infer')
    assert bench.main(['--fvit-config', str(repo_root / 'configs' / 'tiny' / 'fvit_tiny_shapes.py'), '--size', '64',
                       '--repeats', '1', '--warmup', '0', '--device', 'cpu', '--skip-baseline',
                       '--out-dir', str(tmp_path)]) == 0
    doc = json.loads(next(tmp_path.glob('fvit-infer-*.json')).read_text())
    stages = doc['stages']
    assert list(stages) == [*bench.FVIT_STAGES, 'other']
    # every named stage ran (its methods were called) and the shares add up to the whole call
    assert all(stages[s]['median_s'] > 0 for s in bench.FVIT_STAGES), stages
    assert abs(sum(v['share'] for v in stages.values()) - 1.0) < 1e-6
