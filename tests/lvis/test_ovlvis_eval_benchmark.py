"""benchmarks/ovlvis_eval.py still runs end to end at a tiny size and finds OVLVISMetric equal to lvis'
LVISEval (no timing asserted); its synthetic data has what the federated protocol needs."""
from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import numpy as np


def test_synthetic_lvis_data_is_seeded_and_federated() -> None:
    bench = importlib.import_module('benchmarks.ovlvis_eval')
    gt, preds = bench.make_eval_data(num_images=20, dets_per_image=40, seed=3, num_categories=30)
    again, preds2 = bench.make_eval_data(num_images=20, dets_per_image=40, seed=3, num_categories=30)
    assert gt == again
    assert all(np.array_equal(a['scores'], b['scores']) and a['masks'] == b['masks'] for a, b in zip(preds, preds2))
    assert {c['frequency'] for c in gt['categories']} == {'r', 'c', 'f'}
    assert any(im['neg_category_ids'] for im in gt['images'])
    assert any(im['not_exhaustive_category_ids'] for im in gt['images'])
    present = {(a['image_id'], a['category_id']) for a in gt['annotations']}
    for im in gt['images']:
        assert not {(im['id'], c) for c in im['neg_category_ids']} & present  # negatives are absent
    assert all(len(p['scores']) == len(p['masks']) == 40 for p in preds)
    assert all(m['size'] == [im['height'], im['width']] for p, im in zip(preds, gt['images']) for m in p['masks'])


def test_ovlvis_eval_benchmark_smoke(tmp_path: Path) -> None:
    bench = importlib.import_module('benchmarks.ovlvis_eval')
    assert bench.main(['--num-images', '10', '--dets-per-image', '30', '--num-categories', '24', '--repeats', '1',
                       '--warmup', '0', '--out-dir', str(tmp_path)]) == 0
    (out,) = tmp_path.glob('ovlvis_eval-*.json')
    res = json.loads(out.read_text())
    runs = {(r['iou_type'], r['run']): r for r in res['rows']}
    assert set(runs) == {(t, n) for t in ('segm', 'bbox') for n in ('lvis', 'OVLVISMetric')}
    assert all(r['match_1e-12'] and r['values_compared'] > 9 for r in runs.values()), runs
    assert math.isfinite(runs['segm', 'OVLVISMetric']['AP'])
    assert runs['segm', 'lvis']['AP'] != runs['bbox', 'lvis']['AP']
    assert out.with_suffix('.md').read_text().startswith('# ovlvis-eval')
