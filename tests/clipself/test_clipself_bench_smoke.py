"""The clipself-step benchmark runs end to end at tiny sizes, on a tiny EVA-02 and a tiny OpenAI-style CLIP
(one timed run each; no timing asserts)."""
from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import pytest

# The real timm EVA02-B/16 construction shrunk (2 blocks, 2 heads of 64, a 2 x 2 grid at 32 px).
TINY_EVA_CFG = dict(
    embed_dim=32,
    vision_cfg=dict(timm_model_name='eva02_base_patch16_clip_224', image_size=32,
                    timm_kwargs=dict(img_size=32, embed_dim=128, depth=2, num_heads=2)),
    text_cfg=dict(context_length=16, vocab_size=100, width=64, heads=1, layers=1),
)


@pytest.mark.parametrize('which', ['eva', 'openai'])
def test_clipself_step_benchmark_smoke(which: str, tmp_path: Path, tiny_clip_cfg: dict) -> None:
    bench = importlib.import_module('benchmarks.clipself_step')
    model_cfg = TINY_EVA_CFG if which == 'eva' else tiny_clip_cfg
    payload = bench.main(['--model-cfg', json.dumps(model_cfg), '--image-size', '64', '--boxes', '3',
                          '--repeats', '1', '--warmup', '0', '--device', 'cpu', '--out-dir', str(tmp_path)])
    assert [r['step'] for r in payload['rows']] == ['clipself_step', 'plain_forward']
    assert all(r['images_per_s'] > 0 and r['peak_rss_mib'] > 0 for r in payload['rows'])
    config, summary = payload['config'], payload['summary']
    assert config['clip_class'] == ('EvaCLIPModel' if which == 'eva' else 'CLIPModel')
    assert config['crop_size'] == model_cfg['vision_cfg']['image_size'] and config['dense_map'] == [4, 4]
    # every block trains (the reference's lock), nothing else of the image tower
    assert config['unlocked_groups'] == (2 if which == 'eva' else 3) and config['trainable_params'] > 0
    assert math.isfinite(summary['first_loss']) and 0.0 < summary['first_loss'] < 2.0
    assert summary['ratio_step_over_plain_forward'] > 0 and summary['teacher_crops_s'] > 0
    doc = json.loads(next(tmp_path.glob('clipself-step-*.json')).read_text())
    assert doc['benchmark'] == 'clipself-step' and doc['config']['amp'] is False
