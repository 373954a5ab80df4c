"""What a user sees: the OV-COCO metric names its protocol, and a bad image is named, not a TypeError."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ovdet.datasets.ov_coco import COCO_CATEGORIES, make_ov_coco_val
from tests.helpers import REPO_ROOT, load_tool


def _coco_val(holding_all: bool) -> dict:
    cats = [{'id': i, 'name': n} for i, n in COCO_CATEGORIES]
    images = [{'id': k, 'width': 64, 'height': 48} for k in (1, 2, 3)]
    anns = [{'id': 1, 'image_id': 1, 'category_id': 1, 'bbox': [0, 0, 10, 10], 'area': 100, 'iscrowd': 0},
            {'id': 2, 'image_id': 2, 'category_id': 17, 'bbox': [0, 0, 10, 10], 'area': 100, 'iscrowd': 0}]
    if holding_all:
        anns.append({'id': 3, 'image_id': 3, 'category_id': 5, 'bbox': [1, 1, 9, 9], 'area': 81, 'iscrowd': 0})
    else:  # image 3 holds only an unevaluated class (traffic light)
        anns.append({'id': 3, 'image_id': 3, 'category_id': 10, 'bbox': [1, 1, 9, 9], 'area': 81, 'iscrowd': 0})
    return {'images': images, 'annotations': anns, 'categories': cats}


@pytest.mark.parametrize('protocol', ['all', 'ovr'])
def test_metric_log_names_vocabulary_and_val_protocol(protocol: str) -> None:
    from ovdet.metrics import OVCocoMetric

    gt = make_ov_coco_val(_coco_val(holding_all=False), protocol=protocol)
    metric = OVCocoMetric()
    splits = metric._splits(gt)  # from the split tags of the prepared file
    classes80 = tuple(n for _, n in COCO_CATEGORIES)
    metric.dataset_meta = {'classes': classes80}
    line = metric.protocol_summary(gt, splits)
    assert 'test vocabulary 80 classes (65 evaluated: 48 base + 17 novel; 15 predicted but not evaluated)' in line
    n_img = 3 if protocol == 'all' else 2
    assert f"val protocol '{protocol}' (as the annotation file records)" in line and f'{n_img} images' in line
    metric.dataset_meta = {'classes': tuple(c['name'] for c in gt['categories'])}
    line = metric.protocol_summary(gt, splits)
    assert 'test vocabulary 65 classes (65 evaluated: 48 base + 17 novel)' in line and 'not evaluated' not in line


def test_val_protocol_is_inferred_for_untagged_files() -> None:
    from ovdet.metrics import OVCocoMetric

    metric = OVCocoMetric()
    for holding_all, expected in ((False, "'all' (inferred"), (True, "'ovr' (inferred")):
        gt = make_ov_coco_val(_coco_val(holding_all), protocol='all')
        gt.pop('ov_coco')
        assert expected in metric.protocol_summary(gt, metric._splits(gt))


def test_predictions_of_unevaluated_classes_are_dropped_by_the_metric() -> None:
    from ovdet.metrics import OVCocoMetric

    gt = make_ov_coco_val(_coco_val(holding_all=True), protocol='all')
    metric = OVCocoMetric()
    classes80 = tuple(n for _, n in COCO_CATEGORIES)
    metric.dataset_meta = {'classes': classes80}
    res = [{'img_id': 1, 'bboxes': np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float), 'scores': np.array([.9, .8]),
            'labels': np.array([classes80.index('person'), classes80.index('traffic light')])}]
    dets = metric.detections_array(res, gt)
    assert dets[:, 6].tolist() == [1.0]


def test_demo_names_an_undecodable_image(tmp_path: Path, capsys) -> None:
    demo = load_tool('demo')

    bad = tmp_path / 'photo.jpg'
    bad.write_text('this is not an image')
    code = demo.main([str(bad), '--config', 'unused.py', '--checkpoint', 'unused.pth'])
    err = capsys.readouterr().err
    assert code == 2 and str(bad) in err and 'could not be decoded' in err
    code = demo.main([str(tmp_path / 'missing.png'), '--config', 'unused.py', '--checkpoint', 'unused.pth'])
    assert code == 2 and 'image not found' in capsys.readouterr().err


def test_detect_api_names_an_undecodable_image(fvit_workspace: dict, fvit_trained: dict, tmp_path: Path) -> None:
    from ovdet.apis import ImageReadError, detect, load_detector

    model = load_detector(str(REPO_ROOT / 'configs' / 'tiny' / 'fvit_tiny_shapes.py'), str(fvit_trained['checkpoint']),
                          cfg_options={'model.backbone.clip_cfg.pretrained': str(fvit_workspace['clip_ckpt']),
                                       'model.roi_head.bbox_head.class_embeddings':
                                           str(fvit_workspace['embeddings'])})
    bad = tmp_path / 'empty.png'
    bad.write_bytes(b'')
    with pytest.raises(ImageReadError, match=r'empty\.png: could not be decoded'):
        detect(str(bad), model=model)
