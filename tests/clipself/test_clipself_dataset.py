"""CLIPSelfDataset with the real pipelines on generated data: what an item holds, determinism per
(epoch, index), proposals read from the json, bad input (missing files, malformed json, unreadable
images) handled as the caption data does."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from clim.datasets import CLIPSelfDataset, DataPreparationError
from clipself_test_utils import CROP_SIZE, DET_SIZE, REPO_ROOT, write_image
from mmdet.registry import DATASETS


def _dataset(config: str, root: str, **overrides) -> CLIPSelfDataset:
    cfg = Config.fromfile(str(REPO_ROOT / 'configs' / 'tiny' / config)).train_dataloader.dataset
    cfg.data_root = root
    cfg.update(overrides)
    return DATASETS.build(cfg)


def test_patch_items_follow_the_tiny_config(synthetic_dataset: dict):
    ds = _dataset('clipself_tiny_shapes_patches.py', synthetic_dataset['root'] + '/')
    images = json.loads(Path(synthetic_dataset['train_all_json']).read_text())['images']
    assert len(ds) == len(images)
    item = ds[(0, 3)]
    inputs, s = item['inputs'], item['data_samples']
    assert inputs.shape == (3, DET_SIZE, DET_SIZE) and inputs.dtype == torch.uint8
    m, n = s.metainfo['grid']
    k = min(m * n, 20)
    assert s.boxes.shape == (k, 4) and s.crops.shape == (k, 3, CROP_SIZE, CROP_SIZE)
    # boxes are normalized to the padded square: the 64 px image is resized to 128 and fills it
    assert float(s.boxes.min()) >= 0.0 and float(s.boxes.max()) <= 1.0 + 1e-6
    assert s.metainfo['img_path'].endswith(images[3]['file_name'])
    assert s.metainfo['skipped_images'] == []
    again = ds[(0, 3)]['data_samples']
    assert torch.equal(again.boxes, s.boxes) and torch.equal(again.crops, s.crops)
    other_epochs = [ds[(e, 3)]['data_samples'].boxes for e in range(1, 6)]
    assert any(b.shape != s.boxes.shape or not torch.equal(b, s.boxes) for b in other_epochs)


def test_proposal_items_read_the_json_boxes(synthetic_dataset: dict):
    ds = _dataset('clipself_tiny_shapes_proposals.py', synthetic_dataset['root'] + '/')
    data = json.loads(Path(synthetic_dataset['train_all_json']).read_text())
    first = data['images'][0]
    want = sorted(tuple(a['bbox']) for a in data['annotations'] if a['image_id'] == first['id'])
    got = sorted(map(tuple, ds.get_data_info(0)['proposals'].tolist()))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    s = ds[(0, 0)]['data_samples']
    kept = [b for b in want if 64 <= b[2] * b[3] <= 1024 ** 2][:20]
    # 64 px image -> 128: scale 2, normalized by 128, i.e. original pixels / 64
    expect = sorted((x / 64, y / 64, (x + w) / 64, (y + h) / 64) for x, y, w, h in kept)
    assert 1 <= len(want) <= 20 and kept  # the shapes images hold objects of 16+ px sides
    np.testing.assert_allclose(sorted(map(tuple, s.boxes.tolist())), expect, atol=1e-6)
    assert s.crops.shape[0] == s.boxes.shape[0]


def test_missing_files_name_the_path_and_the_data_readme(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r'(?s)instances_train_all\.json.*data/README\.md'):
        _dataset('clipself_tiny_shapes_patches.py', str(tmp_path) + '/')


def test_malformed_json_is_a_data_error(synthetic_dataset: dict, tmp_path: Path):
    root = tmp_path / 'shapes'
    shutil.copytree(synthetic_dataset['root'], root)
    ann = root / 'annotations' / 'instances_train_all.json'
    ann.write_text('{"images": [{"file_name": "a.png"}]}')
    with pytest.raises(DataPreparationError, match=r'images\[0\] needs "id"'):
        _dataset('clipself_tiny_shapes_patches.py', str(root) + '/')
    ann.write_text('{"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 1}]}')
    with pytest.raises(DataPreparationError, match=r'annotations\[0\] needs "image_id" and a "bbox"'):
        _dataset('clipself_tiny_shapes_proposals.py', str(root) + '/')


def test_unreadable_images_are_skipped_and_reported(synthetic_dataset: dict, tmp_path: Path):
    root = tmp_path / 'shapes'
    shutil.copytree(synthetic_dataset['root'], root)
    images = json.loads((root / 'annotations' / 'instances_train_all.json').read_text())['images']
    bad = root / 'images' / 'train' / images[1]['file_name']
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    ds = _dataset('clipself_tiny_shapes_patches.py', str(root) + '/')
    s = ds[(0, 1)]['data_samples']
    assert s.metainfo['skipped_images'] == [str(bad)]
    assert s.metainfo['img_path'].endswith(images[2]['file_name'])  # the next image takes its place


def test_images_of_other_shapes_are_letterboxed(tmp_path: Path):
    (tmp_path / 'img').mkdir()
    write_image(tmp_path / 'img' / 'wide.png', 96, 48)
    (tmp_path / 'ann.json').write_text(json.dumps(dict(
        images=[dict(id=7, file_name='wide.png')], annotations=[dict(image_id=7, bbox=[12, 6, 24, 12])])))
    ds = _dataset('clipself_tiny_shapes_proposals.py', str(tmp_path) + '/', ann_file='ann.json', img_prefix='img/')
    item = ds[(0, 0)]
    # 96 x 48 -> 128 x 64, padded black below; the box scales by 128 / 96 and is normalized by 128
    assert (item['inputs'][:, 64:] == 0).all() and item['inputs'][:, :64].float().mean() > 0
    np.testing.assert_allclose(item['data_samples'].boxes.numpy(), [[12 / 96, 6 / 96, 36 / 96, 18 / 96]],
                               atol=1e-6)


def test_a_proposal_batch_trains_the_tiny_config_model(synthetic_dataset: dict):
    """The proposals config end to end at step level: its dataset's items, collated as the dataloader does,
    go through the config's CLIPSelf train step: a finite loss, moved blocks, an untouched teacher."""
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import OptimWrapper

    from mmdet.registry import MODELS

    cfg = Config.fromfile(str(REPO_ROOT / 'configs' / 'tiny' / 'clipself_tiny_shapes_proposals.py'))
    ds = _dataset('clipself_tiny_shapes_proposals.py', synthetic_dataset['root'] + '/')
    batch = pseudo_collate([ds[(0, i)] for i in range(2)])
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    teacher = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    before = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
    optim = OptimWrapper(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3))
    loss = float(model.train_step(batch, optim)['loss_cosine'])
    assert np.isfinite(loss) and 0.0 < loss < 2.0
    after = dict(model.named_parameters())
    assert sum(not torch.equal(after[k], v) for k, v in before.items()) >= 5
    assert all(torch.equal(model.teacher.state_dict()[k], v) for k, v in teacher.items())
