"""The embedded demo pipeline end to end at smoke size: every stage runs, results are reported,
and a second run reuses every finished stage."""
from __future__ import annotations

import json
import math
from pathlib import Path

from PIL import Image


def test_demo_pipeline_smoke(tmp_path: Path) -> None:
    from ovdet.embedded import DemoSettings, EmbeddedPipeline, format_summary

    messages: list[str] = []
    settings = DemoSettings.preset('smoke')
    settings.vocab = 'star, blue ring'
    summary = EmbeddedPipeline(tmp_path, settings, log=messages.append).run()

    for stage in ('before_clim', 'after_clim'):
        assert 0.0 <= summary['region'][stage]['region/box_top1_all'] <= 100.0
        assert all(math.isfinite(v) for v in summary['region'][stage].values()), summary['region'][stage]
    for key in ('ov_coco/novel_ap50', 'ov_coco/base_ap50', 'ov_coco/all_ap50', 'chance/novel_ap50'):
        value = summary['ov'][key]
        # finite: the smoke val split holds novel and base objects, so every mean has ground truth
        assert math.isfinite(value) and 0.0 <= value <= 1.0, (key, value)
    png = Path(summary['inference']['png'])
    image = Image.open(summary['inference']['image'])
    assert Image.open(png).size == image.size
    assert summary['inference']['vocabulary'] == ['star', 'blue ring']
    assert all(d['label'] in ('star', 'blue ring') for d in summary['inference']['detections'])
    assert not any(summary['reused'].values())
    table = format_summary(summary)
    assert 'novel AP50' in table and 'region mAcc box_top1' in table
    # The comparison detector runs the same recipe on the pre-trained (not CLIM-refined) CLIP.
    assert set(summary['ov_without_clim']) == set(summary['ov'])
    assert 'novel AP50 without CLIM' in table
    clip_of = {name: json.loads((tmp_path / name / 'stage.json').read_text())['result']['options'][
        'model.backbone.clip_cfg.pretrained'] for name in ('fvit', 'fvit_without_clim')}
    assert Path(clip_of['fvit']).parent.name == 'clim'
    assert Path(clip_of['fvit_without_clim']).parent.name == 'pretrain'

    # Second run: everything comes from the stage cache, results unchanged.
    again = EmbeddedPipeline(tmp_path, settings, log=messages.append).run()
    assert all(again['reused'].values())
    assert again['ov'] == summary['ov'] and again['region'] == summary['region']
    # A changed vocabulary re-runs only the inference stage.
    settings.vocab = 'arrow'
    third = EmbeddedPipeline(tmp_path, settings, log=messages.append).run()
    assert [k for k, v in third['reused'].items() if not v] == ['inference']
