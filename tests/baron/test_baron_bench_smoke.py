"""The baron-step benchmark still runs on the tiny preset (one iteration; no timing asserts)."""
from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import torch


def test_baron_step_benchmark_smoke(tmp_path: Path, repo_root: Path) -> None:
    bench = importlib.import_module('benchmarks.baron_step')
    threads = torch.get_num_threads()
    try:
        payload = bench.main(['--preset', 'tiny', '--image-size', '96', '--batch', '1', '--repeats', '1',
                              '--warmup', '0', '--threads', '1', '--out-dir', str(tmp_path)])
    finally:
        torch.set_num_threads(threads)  # --threads is process-wide
    # the KD branch runs in the baron step only: the plain step is the detection branch alone
    keys = payload['loss_keys']
    assert {'loss_bag', 'loss_single'} <= set(keys['baron'])
    assert not {'loss_bag', 'loss_single'} & set(keys['plain']) and 'loss_cls' in keys['plain']
    # the timed teacher call cropped what the KD branch cropped: one spanned box per bag group
    stats = payload['bag_stats']
    assert payload['teacher_crops'] == stats['groups'] > 0 and stats['sequences'] >= stats['groups']
    assert all(t['median_s'] > 0 for t in payload['timings'].values())
    assert math.isfinite(payload['ratio']) and payload['ratio'] > 0
    doc = json.loads(next(tmp_path.glob('baron-step-*.json')).read_text())
    assert doc['benchmark'] == 'baron-step' and doc['batch'] == 1 and 'cpu' in doc['machine']
