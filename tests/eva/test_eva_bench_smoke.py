"""benchmarks/dense.py on an EVA-02 CLIP: the v2 dense map next to upstream timm's Eva forward at each size
(one tiny iteration; no timing asserts)."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

from conftest import TINY, TINY_CFG


def test_dense_benchmark_runs_eva_next_to_timm(tmp_path: Path) -> None:
    bench = importlib.import_module('benchmarks.dense')
    payload = bench.main(['--model-cfg', json.dumps(TINY_CFG), '--sizes', '64', '96', '--repeats', '1',
                          '--warmup', '0', '--device', 'cpu', '--out-dir', str(tmp_path)])
    assert [r['dense_shape'] for r in payload['results']] == [[1, TINY['embed'], 4, 4], [1, TINY['embed'], 6, 6]]
    assert all(r['ratio'] > 0 for r in payload['results'])
    # the baseline really is timm's Eva built for the size, carrying the benchmarked model's weights
    clip = bench.build_clip(dict(model_cfg=TINY_CFG))
    plain = bench._plain_model(bench.parse_args([]), 96, clip)
    assert type(plain.visual).__name__ == 'Eva' and tuple(plain.visual.patch_embed.grid_size) == (6, 6)
    assert (plain.visual.blocks[0].attn.q_proj.weight == clip.visual.trunk.blocks[0].attn.q_proj.weight).all()
