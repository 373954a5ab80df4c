"""Inference for people: tools/demo.py draws boxes for a custom vocabulary; ovdet.apis.detect."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from fvit_test_utils import REPO_ROOT, TINY_CONFIG, run_tool
from PIL import Image


def test_demo_writes_png_with_boxes_for_custom_vocabulary(fvit_workspace: dict, fvit_trained: dict,
                                                          tmp_path: Path) -> None:
    image = fvit_workspace['val_img_dir'] / '000001.png'
    out = tmp_path / 'result.png'
    proc = run_tool([str(REPO_ROOT / 'tools' / 'demo.py'), str(image), '--config', str(TINY_CONFIG),
                     '--checkpoint', str(fvit_trained['checkpoint']),
                     '--vocab', 'red circle, square, blue star',
                     '--out', str(out), '--score-thr', '0.0'], cwd=fvit_workspace['root'])
    boxes = re.findall(r'^\s+(red circle|square|blue star)\s+([0-9.]+)\s+\[([^\]]+)\]', proc.stdout, re.M)
    assert boxes, proc.stdout

    with Image.open(out) as im:
        assert im.format == 'PNG'
        drawn = np.asarray(im.convert('RGB')).astype(int)
    src = np.asarray(Image.open(image).convert('RGB')).astype(int)
    assert drawn.shape == src.shape
    # The top box's outline is painted over the image.
    x1, y1, x2, y2 = (int(round(float(v))) for v in boxes[0][2].split(','))
    h, w = src.shape[:2]
    x1, x2 = np.clip([x1, x2 - 1], 0, w - 1)
    y1, y2 = np.clip([y1, y2 - 1], 0, h - 1)
    edge = np.zeros((h, w), bool)
    edge[y1, x1:x2 + 1] = edge[y2, x1:x2 + 1] = True
    edge[y1:y2 + 1, x1] = edge[y1:y2 + 1, x2] = True
    changed = np.abs(drawn - src).sum(-1) > 30
    assert changed[edge].mean() > 0.5
    assert changed.mean() < 0.999


def test_detect_api_custom_vocabulary(fvit_workspace: dict, fvit_trained: dict) -> None:
    import mmcv

    from ovdet.apis import detect, load_detector, parse_vocabulary

    assert parse_vocabulary(' cat,  zebra ,, red   umbrella, cat') == ['cat', 'zebra', 'red umbrella']
    model = load_detector(str(TINY_CONFIG), str(fvit_trained['checkpoint']),
                          cfg_options={'model.backbone.clip_cfg.pretrained': str(fvit_workspace['clip_ckpt']),
                                       'model.roi_head.bbox_head.class_embeddings':
                                           str(fvit_workspace['embeddings'])})
    assert model.dataset_meta['classes'] == tuple(fvit_workspace['classes'])
    image = mmcv.imread(str(fvit_workspace['val_img_dir'] / '000002.png'))
    result = detect(image, 'circle, square', model=model)
    inst = result.pred_instances
    assert model.dataset_meta['classes'] == ('circle', 'square')
    assert not model.roi_head.bbox_head.base_mask.any()  # custom vocabulary: all novel
    assert len(inst) > 0 and int(inst.labels.max()) < 2
    assert inst.bboxes.shape[1] == 4 and float(inst.bboxes[:, 2].max()) <= image.shape[1] + 1e-3
    kept = detect(image, 'circle, square', model=model, base_classes=['square'], score_thr=0.2)
    assert model.roi_head.bbox_head.base_mask.tolist() == [False, True]
    assert bool((kept.pred_instances.scores >= 0.2).all())


def test_detect_api_draws_when_asked(fvit_workspace: dict, fvit_trained: dict, tmp_path: Path) -> None:
    from ovdet.apis import detect, load_detector

    clip = {'model.backbone.clip_cfg.pretrained': str(fvit_workspace['clip_ckpt'])}
    model = load_detector(str(TINY_CONFIG), str(fvit_trained['checkpoint']), cfg_options=clip)
    image = fvit_workspace['val_img_dir'] / '000004.png'
    out = tmp_path / 'drawn.png'
    result = detect(str(image), ['hexagon', 'heart'], model=model, out_file=str(out), draw_thr=0.0)
    assert len(result.pred_instances) > 0
    drawn = np.asarray(Image.open(out).convert('RGB')).astype(int)
    src = np.asarray(Image.open(image).convert('RGB')).astype(int)
    assert drawn.shape == src.shape and np.abs(drawn - src).sum() > 0


def test_checkpoint_is_self_contained(fvit_workspace: dict, fvit_trained: dict, tmp_path: Path) -> None:
    """Without the CLIP file and the embedding file, the checkpoint alone still detects a vocabulary."""
    import pytest
    import torch

    from ovdet.apis import detect, load_detector

    absent = {'model.backbone.clip_cfg.pretrained': str(tmp_path / 'absent.pt'),
              'model.roi_head.bbox_head.class_embeddings': str(tmp_path / 'absent.npy')}
    model = load_detector(str(TINY_CONFIG), str(fvit_trained['checkpoint']), cfg_options=absent)
    reference = torch.load(fvit_workspace['clip_ckpt'], weights_only=True)['state_dict']
    for key, value in model.backbone.clip.clip.state_dict().items():
        assert torch.equal(value, reference[key]), key
    image = str(fvit_workspace['val_img_dir'] / '000003.png')
    with pytest.raises(ValueError, match='no vocabulary'):
        detect(image, model=model)
    assert len(detect(image, ['heart', 'cross'], model=model).pred_instances) > 0
