"""Caption data: reproducible caption choice, and the stated behaviour on bad data."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger

from clim.datasets import (CaptionDataset, CaptionEpochSampler, DataPreparationError, WebCaptionDataset,
                           load_caption_json)
from clim.method.data_preprocessor import CLIMDataPreprocessor
from clim_test_utils import REPO_ROOT, png_bytes, write_shard
from mmdet.registry import DATASETS

PIPELINE = [
    dict(type='LoadCaptionImage'),
    dict(type='CaptionRandomResizedCrop', size=64, scale=(0.9, 1.0)),
    dict(type='TokenizeCaption', context_length=32),
    dict(type='PackCaptionInputs'),
]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    @property
    def text(self) -> str:
        return '\n'.join(self.lines)


@pytest.fixture
def mmlog():
    """Warnings sent to MMEngine's current logger (not part of the logging hierarchy, so no caplog)."""
    logger = MMLogger.get_current_instance()
    handler = _Collect()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _dataset(root: Path, ann: str = 'annotations/captions_train.json', **kw) -> CaptionDataset:
    return CaptionDataset(ann_file=ann, data_root=str(root), img_prefix='images/train/', pipeline=PIPELINE,
                          **kw)


@pytest.fixture
def shapes_copy(clim_shapes: dict, tmp_path: Path) -> Path:
    """A private, modifiable copy of the first 6 train images and their captions."""
    root = tmp_path / 'shapes'
    (root / 'images' / 'train').mkdir(parents=True)
    (root / 'annotations').mkdir()
    data = json.loads(Path(clim_shapes['train_captions']).read_text())
    data['images'] = data['images'][:6]
    for im in data['images']:
        shutil.copy(Path(clim_shapes['train_img_dir']) / im['file_name'], root / 'images' / 'train')
    (root / 'annotations' / 'captions_train.json').write_text(json.dumps(data))
    return root


def test_sample_is_a_function_of_seed_epoch_index(clim_shapes: dict):
    root = Path(clim_shapes['root'])
    a, b = _dataset(root), _dataset(root)
    x, y = a[(3, 5)], b[(3, 5)]
    assert torch.equal(x['inputs'], y['inputs']) and x['inputs'].shape == (3, 64, 64)
    assert x['data_samples'].caption == y['data_samples'].caption
    assert x['data_samples'].text.shape == (32,)
    # an int index uses the epoch given by set_epoch
    b.set_epoch(3)
    assert torch.equal(b[5]['inputs'], x['inputs'])
    # over epochs the caption choice varies (5 distinct captions per image)
    captions = {a[(e, 5)]['data_samples'].caption for e in range(12)}
    assert len(captions) > 1
    assert captions <= set(a.get_data_info(5)['captions'])
    # another seed, another stream
    other = _dataset(root, seed=1)
    assert any(not torch.equal(other[(e, 5)]['inputs'], a[(e, 5)]['inputs']) for e in range(3))


def test_epoch_sampler_carries_the_epoch(clim_shapes: dict):
    ds = _dataset(Path(clim_shapes['root']))
    sampler = CaptionEpochSampler(ds, shuffle=True, seed=0)
    sampler.set_epoch(4)
    items = list(sampler)
    assert len(items) == len(ds) and all(e == 4 for e, _ in items)
    assert sorted(i for _, i in items) == list(range(len(ds)))
    # a DataLoader with workers gives the same samples as the main process
    loader = torch.utils.data.DataLoader(ds, batch_size=4, sampler=items[:8], num_workers=1,
                                         collate_fn=lambda b: b)
    first = next(iter(loader))
    for got, (e, i) in zip(first, items[:4]):
        assert torch.equal(got['inputs'], ds[(e, i)]['inputs'])


def test_coco_captions_layout_is_accepted(tmp_path: Path):
    p = tmp_path / 'captions.json'
    p.write_text(json.dumps({'images': [{'id': 1, 'file_name': 'a.jpg'}, {'id': 2, 'file_name': 'b.jpg'}],
                             'annotations': [{'image_id': 1, 'caption': 'one'},
                                             {'image_id': 1, 'caption': 'two'},
                                             {'image_id': 2, 'caption': '  '}]}))
    entries, dropped = load_caption_json(str(p))
    assert entries == [dict(img_id=1, file_name='a.jpg', captions=['one', 'two'])] and dropped == 1


def test_empty_captions_are_dropped_at_load_and_counted(shapes_copy: Path, mmlog):
    ann = shapes_copy / 'annotations' / 'captions_train.json'
    data = json.loads(ann.read_text())
    data['images'][1]['captions'] = []
    data['images'][2]['captions'] = ['', '   ']
    data['images'][3]['captions'] = ['', 'a red circle']
    ann.write_text(json.dumps(data))
    ds = _dataset(shapes_copy)
    assert len(ds) == 4 and ds.num_dropped_empty == 2
    assert ds.get_data_info(1)['captions'] == ['a red circle']
    assert 'dropped 2 of 6 images' in mmlog.text


@pytest.mark.parametrize('damage', ['corrupt', 'missing'])
def test_unreadable_image_is_skipped_named_and_counted(shapes_copy: Path, damage: str, mmlog):
    ds = _dataset(shapes_copy)
    bad = Path(ds.get_data_info(2)['img_path'])
    if damage == 'corrupt':
        bad.write_bytes(bad.read_bytes()[:60])  # truncated PNG
    else:
        bad.unlink()
    sample = ds[(0, 2)]
    # the next readable image takes the place; the skipped file is named and reported with the sample
    assert sample['data_samples'].img_path == ds.get_data_info(3)['img_path']
    assert sample['data_samples'].skipped_images == [str(bad)]
    assert str(bad) in mmlog.text
    assert ds[(0, 4)]['data_samples'].skipped_images == []
    # the data preprocessor counts skipped images into the training log
    hub = MessageHub.get_instance(f'clim-test-{damage}')
    MessageHub._instance_dict.move_to_end(hub.instance_name)
    pre = CLIMDataPreprocessor()
    batch = [sample, ds[(0, 4)]]
    pre(dict(inputs=[b['inputs'] for b in batch], data_samples=[b['data_samples'] for b in batch]), True)
    pre(dict(inputs=[b['inputs'] for b in batch], data_samples=[b['data_samples'] for b in batch]), True)
    assert MessageHub.get_current_instance() is hub
    assert hub.get_scalar('train/skipped_images').current() == 2


def test_many_unreadable_images_raise(shapes_copy: Path):
    ds = _dataset(shapes_copy, max_consecutive_failures=2)
    for i in range(6):
        Path(ds.get_data_info(i)['img_path']).write_bytes(b'not an image')
    with pytest.raises(RuntimeError, match='consecutive unreadable images'):
        ds[(0, 0)]


def test_malformed_json_names_file_and_problem(shapes_copy: Path):
    ann = shapes_copy / 'annotations' / 'captions_train.json'
    ann.write_text('{"images": [{"id": 1, "file_name": "x.png", "captions": ["a"]},]}')
    with pytest.raises(DataPreparationError, match=r'captions_train\.json.*not valid JSON.*line 1'):
        _dataset(shapes_copy)
    ann.write_text(json.dumps({'images': [{'id': 1, 'file_name': 'x.png', 'captions': 'a dog'}]}))
    with pytest.raises(DataPreparationError, match=r'captions_train\.json.*images\[0\].*list of strings'):
        _dataset(shapes_copy)
    ann.write_text(json.dumps([1, 2]))
    with pytest.raises(DataPreparationError, match=r'"images" list'):
        _dataset(shapes_copy)


def test_missing_paths_fail_before_training_and_point_at_readme(tmp_path: Path):
    with pytest.raises(FileNotFoundError) as e:
        _dataset(tmp_path / 'nowhere')
    msg = str(e.value)
    assert 'captions_train.json' in msg and 'images/train' in msg and 'data/README.md' in msg


def test_real_config_fails_fast_without_data(tmp_path: Path, monkeypatch):
    """configs/clim/clim_vitb16_coco.py without data/coco: the train dataset names every missing path."""
    cfg = Config.fromfile(str(REPO_ROOT / 'configs' / 'clim' / 'clim_vitb16_coco.py'))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        DATASETS.build(cfg.train_dataloader.dataset)
    msg = str(e.value)
    assert 'data/coco/annotations/clim_captions_train2017.json' in msg and 'data/coco/train2017' in msg
    assert 'data/README.md' in msg
    with pytest.raises(FileNotFoundError, match=r'panoptic_val2017\.json(.|\n)*data/README\.md'):
        DATASETS.build(cfg.val_dataloader.dataset)


# -- streaming shards ------------------------------------------------------------------------------
def test_webdataset_shards_skip_bad_samples(tmp_path: Path, mmlog):
    write_shard(tmp_path / 'shard-0.tar', [
        ('s0.png', png_bytes(10)), ('s0.json', json.dumps({'caption': 'a red star'}).encode()),
        ('s1.png', b'garbage'), ('s1.txt', b'broken image'),
        ('s2.png', png_bytes(200)), ('s2.json', json.dumps({'captions': ['', ' ']}).encode()),
    ])
    write_shard(tmp_path / 'shard-1.tar', [
        ('t0.png', png_bytes(90)), ('t0.txt', b'a blue ring'),
    ])
    ds = WebCaptionDataset(shards='shard-{0..1}.tar', data_root=str(tmp_path), num_samples=5,
                           pipeline=PIPELINE)
    assert len(ds) == 5
    items = list(ds)
    assert len(items) == 5  # epoch size fixed: the 2 good samples cycle
    caps = [it['data_samples'].caption for it in items]
    assert set(caps) == {'a red star', 'a blue ring'}
    skipped = sum((it['data_samples'].skipped_images for it in items), [])
    assert any(s.endswith('shard-0.tar:s1.png') for s in skipped)
    assert sum(it['data_samples'].dropped_no_caption for it in items) >= 1
    assert 'shard-0.tar:s1.png' in mmlog.text and 'no caption' in mmlog.text
    # same epoch, same stream; epochs reorder shards deterministically
    again = list(ds)
    assert [torch.equal(a['inputs'], b['inputs']) for a, b in zip(items, again)] == [True] * 5


def test_webdataset_missing_shards(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r'shard-7\.tar(.|\n)*data/README\.md'):
        WebCaptionDataset(shards='shard-{6..7}.tar', data_root=str(tmp_path), num_samples=4)
