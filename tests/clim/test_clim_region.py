"""Region recognition: ground-truth regions from COCO instances / panoptic files, and the mAcc metric."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clim.datasets import RegionRecognitionDataset
from clim.evaluation import RegionRecognition, RegionRecognitionMetric, mean_class_accuracy

PIPE = [dict(type='LoadRegionAnnotations'), dict(type='ResizeLongestSide', size=128),
        dict(type='PackRegionInputs', mask_stride=16)]


def test_mean_class_accuracy_by_hand():
    labels = np.array([0, 0, 0, 1, 2, 2])
    correct = np.array([1, 0, 0, 1, 0, 1], bool)
    # class 0: 1/3, class 1: 1, class 2: 1/2 -> mean 11/18
    assert mean_class_accuracy(labels, correct) == pytest.approx(100 * 11 / 18)
    assert mean_class_accuracy(labels, correct, np.array([1, 2, 7])) == pytest.approx(75.0)


def test_metric_things_and_stuff():
    metric = RegionRecognitionMetric()
    metric.dataset_meta = dict(isthing=(True, True, False))
    gt = torch.tensor([0, 1, 2, 2])
    box = torch.tensor([[0, 1, 2, 3, 4], [2, 0, 1, 3, 4], [2, 1, 0, 3, 4], [0, 1, 3, 4, 5]])
    metric.process({}, [dict(gt_labels=gt, pred_box_topk=box)])
    out = metric.compute_metrics(metric.results)
    assert out['box_top1_things'] == pytest.approx(50.0)  # class 0 right, class 1 wrong
    assert out['box_top5_things'] == pytest.approx(100.0)
    assert out['box_top1_stuff'] == pytest.approx(50.0)
    assert out['box_top5_stuff'] == pytest.approx(50.0)
    assert out['box_top1_all'] == pytest.approx(100 / 3 * 1.5)
    assert 'mask_top1_things' not in out


def test_instances_regions(clim_shapes: dict):
    ds = RegionRecognitionDataset(ann_file=clim_shapes['val_json'], img_prefix=clim_shapes['val_img_dir'],
                                  pipeline=PIPE)
    assert ds.metainfo['classes'][:3] == ('circle', 'square', 'triangle') and all(ds.metainfo['isthing'])
    item = ds[0]
    s = item['data_samples']
    ann = json.loads(Path(clim_shapes['val_json']).read_text())
    first = [a for a in ann['annotations'] if a['image_id'] == ann['images'][0]['id']]
    assert item['inputs'].shape == (3, 128, 128)  # 64 px image, longer side 128
    x, y, w, h = first[0]['bbox']
    torch.testing.assert_close(s.gt_bboxes[0], torch.tensor([x, y, x + w, y + h]) * 2.0)
    assert s.gt_labels.tolist() == [a['category_id'] - 1 for a in first]
    assert s.gt_masks.shape == (len(first), 8, 8) and s.gt_masks.dtype == torch.bool
    # each mask's cells lie inside its (cell-rounded) box
    for m, b in zip(s.gt_masks, s.gt_bboxes / 16):
        ys, xs = torch.nonzero(m, as_tuple=True)
        assert len(ys) and xs.min() >= int(b[0]) and xs.max() <= int(b[2]) and ys.min() >= int(b[1])


def test_panoptic_regions(tmp_path: Path):
    """Segments come from the PNG ids; categories' isthing splits things from stuff."""
    (tmp_path / 'img').mkdir()
    (tmp_path / 'pan').mkdir()
    Image.fromarray(np.full((32, 48, 3), 120, np.uint8)).save(tmp_path / 'img' / '1.jpg')
    ids = np.zeros((32, 48), np.int64)
    ids[:, :16] = 5                      # a thing on the left
    ids[:, 16:] = 256 * 3 + 7            # stuff elsewhere (id uses the G channel)
    png = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    Image.fromarray(png).save(tmp_path / 'pan' / '1.png')
    ann = dict(images=[dict(id=1, file_name='1.jpg', height=32, width=48)],
               annotations=[dict(image_id=1, file_name='1.png', segments_info=[
                   dict(id=5, category_id=1, bbox=[0, 0, 16, 32], iscrowd=0, area=512),
                   dict(id=256 * 3 + 7, category_id=184, bbox=[16, 0, 32, 32], iscrowd=0, area=1024),
                   dict(id=9, category_id=1, bbox=[0, 0, 4, 4], iscrowd=1, area=16)])],
               categories=[dict(id=1, name='person', isthing=1),
                           dict(id=184, name='sky-other-merged', isthing=0)])
    (tmp_path / 'pan.json').write_text(json.dumps(ann))
    ds = RegionRecognitionDataset(ann_file='pan.json', data_root=str(tmp_path), img_prefix='img',
                                  seg_prefix='pan', pipeline=[dict(type='LoadRegionAnnotations'),
                                                              dict(type='PackRegionInputs', mask_stride=16)])
    assert ds.metainfo['classes'] == ('person', 'sky') and ds.metainfo['isthing'] == (True, False)
    s = ds[0]['data_samples']
    assert s.gt_labels.tolist() == [0, 1]  # the crowd segment is left out
    assert s.gt_masks.shape == (2, 2, 3)
    assert s.gt_masks[0].tolist() == [[True, False, False]] * 2
    assert s.gt_masks[1].tolist() == [[False, True, True]] * 2


def test_region_model_scores_every_region(clim_shapes: dict, tiny_clip_cfg: dict):
    ds = RegionRecognitionDataset(ann_file=clim_shapes['val_json'], img_prefix=clim_shapes['val_img_dir'],
                                  pipeline=PIPE)
    model = RegionRecognition(clip=dict(type='CLIPModel', model_cfg=tiny_clip_cfg),
                              classifier=dict(with_crops=True, crop_size=64, templates='short'),
                              data_preprocessor=dict(type='CLIMDataPreprocessor', pad_size=128,
                                                     pad_size_divisor=16))
    model.eval()
    batch = [ds[0], ds[1]]
    data = model.data_preprocessor(dict(inputs=[b['inputs'] for b in batch],
                                        data_samples=[b['data_samples'] for b in batch]), False)
    assert data['inputs'].shape == (2, 3, 128, 128)
    out = model(**data, mode='predict')
    metric = RegionRecognitionMetric()
    metric.dataset_meta = ds.metainfo
    metric.process({}, out)
    for s in out:
        n = len(s.gt_labels)
        for kind in ('box', 'mask', 'crop'):
            topk = getattr(s, f'pred_{kind}_topk')
            assert topk.shape == (n, 5) and int(topk.max()) < 10
    res = metric.compute_metrics(metric.results)
    kinds, splits = ('box', 'mask', 'crop'), ('things', 'all')
    assert set(res) == {f'{k}_top{t}_{s}' for k in kinds for t in (1, 5) for s in splits}
