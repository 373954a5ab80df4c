"""tools/prepare_ov_lvis.py, OVLVISDataset (coco_url paths, masks, clear errors) and the repeat-factor
sampling of the OV-LVIS dataset config."""
from __future__ import annotations

import importlib.util
import json
import math
from collections import Counter
from pathlib import Path

import pytest

from lvis_test_utils import REPO_ROOT, RARE_SHAPES, TINY_LVIS_CONFIG

TOOL = REPO_ROOT / 'tools' / 'prepare_ov_lvis.py'


def _tool():
    # In-process (the CLI itself runs once, in the workspace fixture): each start imports the stack.
    spec = importlib.util.spec_from_file_location('_prepare_ov_lvis', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_prepare_removes_only_rare_annotations(lvis_workspace: dict) -> None:
    src = json.loads(lvis_workspace['train_json'].read_text())
    ann_dir = lvis_workspace['lvis_root'] / 'annotations'
    out = json.loads((ann_dir / 'lvis_v1_train_base.json').read_text())
    rare = {c['id'] for c in src['categories'] if c['frequency'] == 'r'}
    assert {c['name'] for c in src['categories'] if c['id'] in rare} == set(RARE_SHAPES)
    assert any(a['category_id'] in rare for a in src['annotations'])  # there was something to remove
    assert out['annotations'] == [a for a in src['annotations'] if a['category_id'] not in rare]
    # Images (with their neg / not-exhaustive lists) and categories (with their counts) untouched.
    assert out['images'] == src['images'] and out['categories'] == src['categories']
    info = json.loads((ann_dir / 'lvis_v1_train_base_cat_info.json').read_text())
    assert [c['id'] for c in info] == [c['id'] for c in src['categories']]
    for c, s in zip(info, src['categories']):
        assert c['image_count'] == (0 if s['id'] in rare else s['image_count'])
    names = (ann_dir / 'lvis_v1_classes.txt').read_text().split('\n')[:-1]
    assert names == [c['name'] for c in sorted(src['categories'], key=lambda c: c['id'])]
    n_removed = sum(a['category_id'] in rare for a in src['annotations'])
    log = lvis_workspace['prepare_log']
    assert f"r: 3 cats, {n_removed} anns" in log and "r: 3 cats, 0 anns" in log


@pytest.mark.parametrize('content, message', [
    (None, 'file not found: .*missing.json'),
    ('{"images": [', 'lvis.json is not valid JSON'),
    ('{"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}', 'lvis.json.*frequency'),
    ('{"images": [{"id": 1}], "annotations": [], "categories": [{"id": 1, "name": "a", "frequency": "r"}]}',
     'lvis.json: image 1 has no .neg_category_ids'),
])
def test_prepare_names_the_bad_file(tmp_path: Path, capsys, content: str | None, message: str) -> None:
    import re

    path = tmp_path / ('missing.json' if content is None else 'lvis.json')
    if content is not None:
        path.write_text(content)
    assert _tool().main(['--train', str(path), '--out-dir', str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not (tmp_path / 'out' / 'lvis_v1_train_base.json').exists()


def _dataset(lvis_workspace: dict, split: str, **kw):
    from mmdet.registry import DATASETS
    from mmengine.config import Config

    cfg = Config.fromfile(str(TINY_LVIS_CONFIG))
    ds_cfg = cfg.train_dataloader.dataset.dataset if split == 'train' else cfg.val_dataloader.dataset
    ds_cfg.data_root = str(lvis_workspace['lvis_root']) + '/'
    ds_cfg.update(kw)
    return DATASETS.build(ds_cfg)


def test_dataset_resolves_coco_url_into_both_coco_folders(lvis_workspace: dict) -> None:
    val = _dataset(lvis_workspace, 'val')
    raw = json.loads(lvis_workspace['val_json'].read_text())
    url_of = {im['id']: im['coco_url'] for im in raw['images']}
    folders = set()
    for i in range(len(val)):
        info = val.get_data_info(i)
        rel = Path(info['img_path']).relative_to(lvis_workspace['lvis_root'] / 'images')
        assert url_of[info['img_id']].endswith('/' + str(rel))
        assert Path(info['img_path']).is_file()
        folders.add(rel.parts[0])
    assert folders == {'train2017', 'val2017'}
    assert set(val.metainfo['novel_classes']) == set(RARE_SHAPES)
    assert len(val.metainfo['classes']) == 10


def test_dataset_pipeline_loads_masks(lvis_workspace: dict) -> None:
    train = _dataset(lvis_workspace, 'train')
    sample = train[0]
    inst = sample['data_samples'].gt_instances
    assert len(inst) > 0 and inst.masks.masks.shape[0] == len(inst)
    assert inst.masks.masks.any()
    # Rare classes have no boxes left in the base-only train set.
    rare_labels = {train.metainfo['classes'].index(n) for n in RARE_SHAPES}
    assert all(not (set(train.get_cat_ids(i)) & rare_labels) for i in range(len(train)))


def test_dataset_errors_name_the_file(lvis_workspace: dict, tmp_path: Path) -> None:
    from ovdet.datasets.ov_lvis import LVISFormatError

    with pytest.raises(FileNotFoundError, match='no_such.json'):
        _dataset(lvis_workspace, 'val', ann_file=str(tmp_path / 'no_such.json'))
    coco = tmp_path / 'coco_style.json'
    coco.write_text(json.dumps({'images': [], 'annotations': [], 'categories': [{'id': 1, 'name': 'x'}]}))
    with pytest.raises(LVISFormatError, match='coco_style.json'):
        _dataset(lvis_workspace, 'val', ann_file=str(coco))


def test_repeat_factor_sampling_follows_the_spec(lvis_workspace: dict) -> None:
    from mmdet.registry import DATASETS
    from mmengine.config import Config

    thr = 0.6  # high enough for the tiny set to repeat some images
    cfg = Config.fromfile(str(TINY_LVIS_CONFIG)).train_dataloader.dataset
    cfg.dataset.data_root = str(lvis_workspace['lvis_root']) + '/'
    cfg.oversample_thr = thr
    repeated = DATASETS.build(cfg)
    repeated.full_init()
    # Expected, from the prepared json alone: f(c) over the images that keep an annotation.
    data = json.loads((lvis_workspace['lvis_root'] / 'annotations' / 'lvis_v1_train_base.json').read_text())
    cats_of: dict[int, set] = {}
    for a in data['annotations']:
        cats_of.setdefault(a['image_id'], set()).add(a['category_id'])
    n = len(cats_of)
    freq = Counter(c for cs in cats_of.values() for c in cs)
    r = {c: max(1.0, math.sqrt(thr / (k / n))) for c, k in freq.items()}
    expected = {i: math.ceil(max(r[c] for c in cs)) for i, cs in cats_of.items()}
    got = Counter(repeated.get_data_info(i)['img_id'] for i in range(len(repeated)))
    assert dict(got) == expected
    assert max(expected.values()) > 1
