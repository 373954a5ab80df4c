"""The demo pipeline (``ovd_demo``) end to end at smoke size: every stage runs, results are reported,
and a second run reuses every finished stage."""
from __future__ import annotations

import json
import math
from pathlib import Path

from PIL import Image


def test_demo_pipeline_smoke(tmp_path: Path) -> None:
    from ovd_demo.pipeline import DemoPipeline
    from ovd_demo.report import format_summary
    from ovd_demo.settings import DemoSettings

    messages: list[str] = []
    settings = DemoSettings.preset('smoke')
    settings.vocab = 'star, blue ring'
    summary = DemoPipeline(tmp_path, settings, log=messages.append).run()

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
    _check_dense_modes(summary, table)
    _check_picture(summary, settings)

    # Second run: everything comes from the stage cache, results unchanged.
    again = DemoPipeline(tmp_path, settings, log=messages.append).run()
    assert all(again['reused'].values())
    assert again['ov'] == summary['ov'] and again['region'] == summary['region']
    # A changed vocabulary re-runs only the inference stage.
    settings.vocab = 'arrow'
    third = DemoPipeline(tmp_path, settings, log=messages.append).run()
    assert [k for k, v in third['reused'].items() if not v] == ['inference']


def _check_dense_modes(summary: dict, table: str) -> None:
    """Region mAcc and the most-predicted-class share of every dense mode, before and after CLIM, in the table."""
    modes = summary['region_modes']
    assert list(modes) == ['v2', 'v1', 'plain']
    assert modes['v2'] == summary['region']
    for mode, result in modes.items():
        for stage in ('before_clim', 'after_clim'):
            metrics = result[stage]
            assert 0.0 <= metrics['region/box_top1_all'] <= 100.0 and 0.0 <= metrics['region/mask_top1_all'] <= 100.0
            # at least one box in C: the most predicted class has at least 1 / C of the boxes
            share = metrics['region_share/box_top_class_share']
            assert 100.0 / len(summary['classes']) <= share <= 100.0, (mode, stage, share)
            assert 0 <= metrics['region_share/box_top_class'] < len(summary['classes'])
            assert ('region/crop_top1_all' in metrics) == (mode == 'v2')  # crops do not use the dense map
        if mode != 'v2':
            assert f'region mAcc box_top1, dense mode {mode} (before -> after CLIM)' in table
            assert f'region mAcc mask_top1, dense mode {mode} (before -> after CLIM)' in table
        after = modes[mode]['after_clim']
        name = summary['classes'][int(after['region_share/box_top_class'])]
        row = next((line for line in table.splitlines()
                    if line.startswith(f'boxes given the most predicted class, {mode} (before -> after CLIM)')), None)
        assert row is not None and row.endswith(f'{after["region_share/box_top_class_share"]:3.0f}% {name}'), row
    # v1 pools regions differently from v2: the two modes are separate runs, not one copied
    keys = ('region/box_top1_all', 'region/mask_top1_all', 'region_share/box_top_class_share')
    assert [modes['v1']['before_clim'][k] for k in keys] != [modes['v2']['before_clim'][k] for k in keys]


def _check_picture(summary: dict, settings) -> None:
    """The grid holds one enlarged panel per val image (up to ``picture_images``), in file order."""
    import numpy as np

    from ovd_demo.picture import LAYOUT, grid_layout
    from ovd_demo.shapes import SHAPE_NOVEL_CLASSES

    picture = summary['picture']
    n = min(settings.picture_images, settings.num_val)
    assert picture['panels'] == n == 4
    grid = np.asarray(Image.open(picture['png']).convert('RGB'))
    size, corners = grid_layout(n)
    assert (grid.shape[1], grid.shape[0]) == size == tuple(picture['size'])
    assert size[0] >= n * LAYOUT['panel']  # readable: one row of 4 panels, each 3x the 128 px image
    val_dir = Path(summary['inference']['image']).parent
    side = LAYOUT['panel']
    for name, (x0, y0) in zip(picture['images'], corners):
        image = Image.open(val_dir / name).convert('RGB')
        scale = side / max(image.size)
        enlarged = np.asarray(image.resize((round(image.width * scale), round(image.height * scale)), Image.NEAREST))
        panel = grid[y0:y0 + enlarged.shape[0], x0:x0 + enlarged.shape[1]]
        # boxes and labels cover a minority of the pixels; the rest is this image, enlarged
        assert (panel == enlarged).all(-1).mean() > 0.5, name
    assert picture['images'] == sorted(p.name for p in val_dir.iterdir())[:n]
    novel = set(SHAPE_NOVEL_CLASSES)
    assert all(b['novel'] == (b['label'] in novel) for boxes in picture['truth'] for b in boxes)
    assert any(b['novel'] for boxes in picture['truth'] for b in boxes), 'the smoke val split shows a novel object'
    assert all(d['novel'] == (d['label'] in novel) and d['score'] >= LAYOUT['score_thr']
               for dets in picture['drawn_detections'] for d in dets)
