"""The tiny CLIM config trains end to end through tools/train.py and its region mAcc is computed;
tools/test.py evaluates the exported CLIP, with the numbers the last val loop gave."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from clim.models import CLIPModel
from clim_test_utils import run_tool


def test_tiny_clim_trains_exports_and_evaluates(clim_shapes: dict, tmp_path: Path):
    root = clim_shapes['root'] + '/'
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    data_opts = [f'{k}.dataset.data_root={root}' for k in loaders]
    work = tmp_path / 'work'
    res = run_tool(['tools/train.py', 'configs/tiny/clim_tiny_shapes.py', '--work-dir', str(work),
                    '--cfg-options', *data_opts])
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    log = res.stdout + res.stderr
    for epoch in (1, 2):
        assert (work / f'clip_epoch_{epoch}.pt').is_file()
    assert re.search(r'Epoch\(train\) \[2\]\[2/2\].*loss_contrast: \d', log)
    assert 'skipped_images: 0' in log
    # the val loop's region recognition, on the ensembled weights
    scalars = [json.loads(line) for f in work.glob('*/vis_data/scalars.json')
               for line in f.read_text().splitlines()]
    val = [s for s in scalars if 'region/box_top1_things' in s]
    assert val and 0.0 <= val[-1]['region/box_top1_things'] <= 100.0 and 'region/mask_top5_all' in val[-1]

    latest = work / 'clip_latest.pt'
    clip = CLIPModel(pretrained=str(latest))
    assert clip.quick_gelu is False and clip.embed_dim == 32
    blob = torch.load(latest, weights_only=True)
    assert blob['meta']['epoch'] == 2 and blob['meta']['alpha'] == 0.7

    res = run_tool(['tools/test.py', 'configs/tiny/region_eval_tiny_shapes_clim_ovd.py',
                    '--work-dir', str(tmp_path / 'eval'),
                    '--cfg-options', f'model.clip.pretrained={latest}',
                    f'test_dataloader.dataset.data_root={root}'])
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert re.search(r"'region/box_top1_things': \d", res.stdout)
    assert re.search(r"'region/crop_top5_all': \d", res.stdout)
    # The val loop of the last epoch scored the ensembled weights, i.e. exactly the exported file.
    tested = {k: float(v) for k, v in re.findall(r"'(region/\w+)': ([0-9.eE+-]+|nan)", res.stdout)}
    assert len(tested) >= 6 and all(math.isfinite(v) and 0.0 <= v <= 100.0 for v in tested.values()), tested
    last_val = val[-1]
    shared = [k for k in tested if k in last_val]
    assert len(shared) >= 6, (tested, last_val)
    for k in shared:
        assert last_val[k] == pytest.approx(tested[k], abs=1e-4), (k, last_val[k], tested[k])
