"""OVLVISMetric equals the official lvis package's own LVISEval on seeded random ground truth and
detections (boxes and masks), and the numpy-2 patch it needs is needed."""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from lvis_test_utils import random_detections

KEYS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf')


def _reference(gt_path, dets: list[dict], iou_type: str, monkeypatch, img_ids=None, max_dets: int = 300) -> dict:
    """LVISEval straight from the lvis package, numpy's alias restored by hand (not by our shim)."""
    from pycocotools import mask as mask_utils

    import lvis.eval
    from lvis import LVIS, LVISEval, LVISResults

    monkeypatch.setattr(lvis.eval, 'np', np)
    monkeypatch.setattr(np, 'float', float, raising=False)
    results = []
    for d in dets:
        for i in range(len(d['scores'])):
            x1, y1, x2, y2 = (float(v) for v in d['bboxes'][i])
            r = {'image_id': d['img_id'], 'category_id': int(d['cat_ids'][i]), 'bbox': [x1, y1, x2 - x1, y2 - y1],
                 'score': float(d['scores'][i])}
            if iou_type == 'segm':
                rle = mask_utils.encode(np.asfortranarray(d['masks'][i].astype(np.uint8)))
                rle['counts'] = rle['counts'].decode()
                r['segmentation'] = rle
            results.append(r)
    gt = LVIS(str(gt_path))
    ev = LVISEval(gt, LVISResults(gt, results, max_dets=max_dets), iou_type)
    if img_ids is not None:
        ev.params.img_ids = sorted(img_ids)
    ev.params.max_dets = max_dets
    ev.run()
    monkeypatch.undo()
    return {k: float(v) for k, v in ev.results.items()}


def _run_metric(gt_path, gt: dict, dets: list[dict], classes: list[str], **kwargs) -> dict:
    from ovdet.metrics import OVLVISMetric

    name_of = {c['id']: c['name'] for c in gt['categories']}
    label_of = {n: i for i, n in enumerate(classes)}
    metric = OVLVISMetric(ann_file=str(gt_path), **kwargs)
    metric.dataset_meta = {'classes': tuple(classes)}
    samples = [{'img_id': d['img_id'],
                'pred_instances': {'bboxes': torch.from_numpy(d['bboxes']), 'scores': torch.from_numpy(d['scores']),
                                   'labels': torch.tensor([label_of[name_of[int(c)]] for c in d['cat_ids']],
                                                          dtype=torch.long),
                                   'masks': torch.from_numpy(d['masks'])}} for d in dets]
    for i in range(0, len(samples), 3):
        metric.process({}, samples[i:i + 3])
    return metric.evaluate(len(samples))


def _assert_same(ours: dict, ref: dict, iou_type: str) -> None:
    for k in KEYS:
        mine, theirs = ours[f'ov_lvis/{iou_type}_{k}'], ref[k]
        if theirs == -1:
            assert math.isnan(mine), (k, mine)
        else:
            assert mine == pytest.approx(theirs, abs=1e-12), (iou_type, k, mine, theirs)


@pytest.mark.parametrize('seed', [0, 1])
def test_metric_equals_lvis_eval_boxes_and_masks(random_gt_file, monkeypatch, seed: int) -> None:
    gt_path, gt = random_gt_file
    dets = random_detections(np.random.default_rng(seed), gt)
    # Label order differs from the file's category order: the metric must map labels by name.
    classes = [c['name'] for c in gt['categories']][::-1]
    ours = _run_metric(gt_path, gt, dets, classes)
    for iou_type in ('bbox', 'segm'):
        ref = _reference(gt_path, dets, iou_type, monkeypatch)
        assert ref['APr'] > 0 and ref['APf'] > 0  # the data exercise every group
        _assert_same(ours, ref, iou_type)
    assert ours['ov_lvis/segm_APr'] != ours['ov_lvis/bbox_APr']


def test_metric_keeps_300_per_image_and_scores_only_processed_images(random_gt_file, monkeypatch) -> None:
    gt_path, gt = random_gt_file
    rng = np.random.default_rng(5)
    dets = random_detections(rng, gt, max_per_image=340)
    assert max(len(d['scores']) for d in dets) > 300
    dets = dets[: len(dets) - 4]  # four GT images never processed: not counted as misses
    classes = [c['name'] for c in gt['categories']]
    ours = _run_metric(gt_path, gt, dets, classes, metric='bbox')
    ref = _reference(gt_path, dets, 'bbox', monkeypatch, img_ids=[d['img_id'] for d in dets])
    _assert_same(ours, ref, 'bbox')


def test_federated_rules_drop_unverifiable_detections(random_gt_file) -> None:
    gt_path, gt = random_gt_file
    dets = random_detections(np.random.default_rng(3), gt)
    classes = [c['name'] for c in gt['categories']]
    base = _run_metric(gt_path, gt, dets, classes, metric='bbox')
    # Confident whole-image boxes of a class neither annotated in the image nor on its negative list
    # carry no information under the federated protocol: the numbers must not move.
    present = {(a['image_id'], a['category_id']) for a in gt['annotations']}
    extra = []
    for d, im in zip(dets, gt['images']):
        unknown = [c['id'] for c in gt['categories'] if (im['id'], c['id']) not in present
                   and c['id'] not in im['neg_category_ids']]
        k = len(unknown)
        box = np.tile(np.array([[0, 0, im['width'], im['height']]], np.float32), (k, 1))
        extra.append({**d, 'bboxes': np.concatenate([d['bboxes'], box]),
                      'scores': np.concatenate([d['scores'], np.full(k, 0.999, np.float32)]),
                      'cat_ids': np.concatenate([d['cat_ids'], np.asarray(unknown, np.int64)]),
                      'masks': np.concatenate([d['masks'], np.ones((k, im['height'], im['width']), bool)])})
    assert sum(len(e['scores']) - len(d['scores']) for e, d in zip(extra, dets)) > 0
    again = _run_metric(gt_path, gt, extra, classes, metric='bbox')
    assert again.keys() == base.keys()
    for k, v in base.items():
        assert again[k] == v or (math.isnan(v) and math.isnan(again[k])), k


def test_no_detections_gives_zero_ap(random_gt_file) -> None:
    gt_path, gt = random_gt_file
    empty = [{'img_id': im['id'], 'bboxes': np.zeros((0, 4), np.float32), 'scores': np.zeros(0, np.float32),
              'cat_ids': np.zeros(0, np.int64), 'masks': np.zeros((0, im['height'], im['width']), bool)}
             for im in gt['images']]
    out = _run_metric(gt_path, gt, empty, [c['name'] for c in gt['categories']])
    assert out['ov_lvis/segm_APr'] == 0.0 and out['ov_lvis/bbox_AP'] == 0.0


def test_lvis_053_needs_the_numpy_patch_on_numpy2(random_gt_file, monkeypatch) -> None:
    """Evidence for the patch: unpatched, LVISEval.accumulate fails on numpy >= 1.24 (np.float)."""
    if hasattr(np, 'float'):
        pytest.skip('this numpy still has np.float')
    import lvis.eval
    from lvis import LVIS, LVISEval, LVISResults

    gt_path, gt = random_gt_file
    monkeypatch.setattr(lvis.eval, 'np', np)  # undo our shim, if an earlier test installed it
    lvis_gt = LVIS(str(gt_path))
    a = gt['annotations'][0]
    ev = LVISEval(lvis_gt, LVISResults(lvis_gt, [{'image_id': a['image_id'], 'category_id': a['category_id'],
                                                  'bbox': a['bbox'], 'score': 0.9}]), 'bbox')
    ev.evaluate()
    with pytest.raises(AttributeError, match="'float'"):
        ev.accumulate()


def test_bad_annotation_files_are_named(tmp_path) -> None:
    from ovdet.datasets.ov_lvis import LVISFormatError
    from ovdet.metrics import OVLVISMetric

    with pytest.raises(FileNotFoundError, match='nope.json'):
        OVLVISMetric(ann_file=str(tmp_path / 'nope.json'))
    coco = tmp_path / 'coco.json'
    coco.write_text('{"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}')
    with pytest.raises(LVISFormatError, match='coco.json.*frequency'):
        OVLVISMetric(ann_file=str(coco))


@pytest.mark.parametrize('lvis_first', [False, True])
def test_importing_lvis_leaves_the_root_logger_alone(lvis_first: bool) -> None:
    """lvis/__init__.py calls logging.basicConfig (a root handler, level WARNING). In a fresh interpreter: our
    packages then mmdet.evaluation (which imports lvis) leave the root logger as it was; if lvis came first,
    importing our metrics removes the handler it added."""
    import subprocess
    import sys

    code = ('import logging, sys\n'
            'root = logging.getLogger()\n'
            'root.setLevel(logging.INFO)\n'
            + ('import lvis\nassert root.handlers\nroot.setLevel(logging.INFO)\n' if lvis_first else '')
            + 'import clim, ovdet  # noqa\n'
            'import mmdet.evaluation  # noqa\n'
            'from ovdet.metrics.ov_lvis_metric import import_lvis\n'
            'import_lvis()\n'
            'assert "lvis" in sys.modules\n'
            'print("ROOT", len(root.handlers), root.level)\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, n_handlers, level = [ln for ln in proc.stdout.splitlines() if ln.startswith('ROOT')][-1].split()
    assert (int(n_handlers), int(level)) == (0, logging.INFO), f'root logger: {n_handlers} handlers, level {level}'


def test_metric_runs_where_logger_warn_is_gone(random_gt_file, monkeypatch) -> None:
    """Python 3.13 removed Logger.warn, which LVISResults calls on every in-memory result list."""
    monkeypatch.delattr(logging.Logger, 'warn', raising=False)
    gt_path, gt = random_gt_file
    dets = random_detections(np.random.default_rng(2), gt)
    out = _run_metric(gt_path, gt, dets, [c['name'] for c in gt['categories']], metric='bbox')
    assert math.isfinite(out['ov_lvis/bbox_APr'])
