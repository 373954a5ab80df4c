"""The clim-step benchmark still runs (one tiny iteration; no timing asserts)."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

STEPS = ['clim_text_full', 'clim_text_trimmed', 'clim_precomputed', 'plain', 'clim_precomputed_upstream_attention']


def test_clim_step_benchmark_smoke(tmp_path: Path, repo_root: Path, tiny_clip_cfg: dict) -> None:
    bench = importlib.import_module('benchmarks.clim_step')
    payload = bench.main(['--model-cfg', json.dumps(tiny_clip_cfg), '--batch', '29', '--mosaic-size', '64',
                          '--unlocked-groups', '2', '--repeats', '1', '--warmup', '0', '--device', 'cpu',
                          '--out-dir', str(tmp_path)])
    assert [r['step'] for r in payload['rows']] == STEPS
    assert all(r['images_per_s'] > 0 and r['peak_rss_mib'] > 0 for r in payload['rows'])
    summary = payload['summary']
    # The three CLIM variants score the same weights: the losses agree (trimmed vs full up to rounding).
    assert summary['loss_diff_trimmed_vs_full'] < 1e-4 and summary['loss_diff_precomputed_vs_trimmed'] < 1e-4
    assert summary['speedup_precomputed_over_text_full'] > 0 and summary['text_forward_trimmed_s'] > 0
    assert summary['speedup_folded_over_upstream_attention'] > 0
    assert payload['config']['caption_eot_max'] < payload['config']['context_length']
    doc = json.loads(next(tmp_path.glob('clim-step-*.json')).read_text())
    assert doc['benchmark'] == 'clim-step' and doc['config']['amp'] is False
