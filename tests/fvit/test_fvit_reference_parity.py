"""F-ViT computes what CLIM's reference computes (../shared/spec/detectors.md, F-ViT section).

Hand computations for the CLIP background column and the fusion, the box head's structure and init,
the reference-exact data pipeline (float32, its pad value, pad then flip), and the named deviations
differing from the reference config exactly where docs/reference_parity.md says.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fvit_test_utils import REPO_ROOT

CONFIGS = REPO_ROOT / 'configs' / 'fvit'
REFERENCE = CONFIGS / 'fvit_vitb16_clim_ovcoco.py'

C, D = 3, 4
WEIGHTS = [1.0, 0.0, 1.0]  # class 1 is novel


def _toy_embeddings() -> np.ndarray:
    e = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0.6, 0.8, 0, 0]], dtype=np.float32)
    return e


def _toy_head(**kwargs):
    from ovdet.models import TextEmbeddingBBoxHead

    cfg = dict(class_embeddings=_toy_embeddings(), num_classes=C, class_weights=WEIGHTS, in_channels=4,
               roi_feat_size=2, num_shared_convs=0, num_shared_fcs=1, fc_out_channels=8)
    cfg.update(kwargs)
    return TextEmbeddingBBoxHead(**cfg)


def _softmax(xs: list[float]) -> list[float]:
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def _hand_scores(logits: list[float], feat: list[float], bg: list[float] | None, alpha=0.1, beta=0.8,
                 temp=75.0) -> list[float]:
    """Scalar arithmetic only: the spec's ensemble for one region."""
    det = _softmax(logits)
    rows = [list(r) for r in _toy_embeddings()] + [bg if bg is not None else [0.0] * D]

    def unit(v):
        n = math.sqrt(sum(x * x for x in v))
        return [x / n for x in v] if n > 0 else list(v)

    f = unit(feat)
    clip = _softmax([temp * sum(a * b for a, b in zip(f, unit(r))) for r in rows])
    base = [w > 0 for w in WEIGHTS] + [True]  # the background trains (weight 0.6): base
    return [det[j] ** (1 - (alpha if base[j] else beta)) * clip[j] ** (alpha if base[j] else beta)
            for j in range(C + 1)]


@pytest.mark.parametrize('background', ['learned', 'zero', 'text'])
def test_fused_scores_with_background_column_equal_hand_computation(background: str) -> None:
    bg_text = [0.0, 0.0, 0.6, 0.8]
    kwargs = dict(background=background)
    if background == 'text':
        kwargs.update(class_embeddings=np.vstack([_toy_embeddings(), [bg_text]]).astype(np.float32),
                      background_row=True)
    head = _toy_head(**kwargs)
    logits = torch.tensor([[2.0, -1.0, 0.5, 1.0], [0.1, 0.2, 0.3, -0.5]])
    feats = torch.tensor([[0.02, 0.01, 0.03, 0.02], [0.9, 0.3, 0.1, 0.0]])
    scores = head.class_scores(logits, feats)
    if background == 'learned':
        bg = head.classifier.background.weight[:, 0] + head.classifier.background.bias
        bg = bg.tolist()
    else:
        bg = bg_text if background == 'text' else None
    for i in range(2):
        expected = _hand_scores(logits[i].tolist(), feats[i].tolist(), bg)
        assert scores[i].tolist() == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_background_column_changes_the_class_scores() -> None:
    """The CLIP softmax with a background column is not the class-only softmax (the old behaviour)."""
    head = _toy_head(background='text', background_row=True,
                     class_embeddings=np.vstack([_toy_embeddings(), [[0, 0, 1, 0]]]).astype(np.float32))
    logits = torch.zeros(1, C + 1)
    feats = torch.tensor([[0.1, 0.1, 1.0, 0.0]])  # closest to the background row
    scores = head.class_scores(logits, feats)[0]
    det = 1.0 / (C + 1)
    class_only = _softmax([75 * v for v in (F.normalize(feats, dim=-1) @ torch.from_numpy(
        _toy_embeddings()).t())[0].tolist()])
    novel_old = det ** 0.2 * class_only[1] ** 0.8
    assert scores[1].item() < 0.5 * novel_old
    assert scores[C].item() > scores[:C].max().item()


def test_head_structure_and_background_init() -> None:
    from mmengine.config import Config

    from ovdet.models import TextEmbeddingBBoxHead

    cfg = Config.fromfile(str(REFERENCE)).model.roi_head.bbox_head
    cfg = dict(cfg)
    cfg.pop('type')
    cfg.update(class_embeddings=np.eye(80, 512, dtype=np.float32), in_channels=8, conv_out_channels=8,
               fc_out_channels=32, norm_cfg=dict(type='BN', requires_grad=True))
    head = TextEmbeddingBBoxHead(**cfg)
    head.init_weights()
    assert len(head.shared_convs) == 4 and len(head.shared_fcs) == 2
    assert len(head.cls_fcs) == 1 and len(head.reg_fcs) == 1
    assert head.fc_cls.proj.in_features == 32 and head.fc_reg.in_features == 32
    bg = head.classifier.background
    assert isinstance(bg, torch.nn.Linear) and bg.bias is not None
    bound = math.sqrt(6.0 / (1 + 512))  # Xavier-uniform for a (512, 1) weight
    w = bg.weight.detach()
    assert w.abs().max() <= bound and w.std() > 0.5 * bound / math.sqrt(3)  # not Normal(0, 0.01)
    assert torch.equal(bg.bias.detach(), torch.zeros(512))


def test_old_checkpoints_without_background_bias_still_load() -> None:
    head = _toy_head()
    sd = {k: v for k, v in head.state_dict().items() if k != 'fc_cls.background.bias'}
    sd['fc_cls.background.weight'] = torch.ones(D, 1)
    other = _toy_head()
    other.load_state_dict(sd, strict=True)
    assert torch.equal(other.classifier.background.bias, torch.zeros(D))


def _flat(d, prefix=''):
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flat(v, f'{prefix}{k}.'))
    elif isinstance(d, (list, tuple)) and d and all(isinstance(x, dict) for x in d):
        for i, v in enumerate(d):
            out.update(_flat(v, f'{prefix}{i}.'))
    else:
        out[prefix[:-1]] = d
    return out


def _computation(name: str) -> dict:
    """What a config computes: model, data, optimisation (helper variables left out)."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(CONFIGS / name)).to_dict()
    keys = ('model', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'optim_wrapper',
            'param_scheduler', 'auto_scale_lr', 'train_cfg', 'val_evaluator', 'test_evaluator')
    return _flat({k: cfg[k] for k in keys})


def test_reference_config_is_the_reference() -> None:
    from mmengine.config import Config

    cfg = Config.fromfile(str(REFERENCE))
    assert cfg.model.backbone.clip_cfg.quick_gelu is False  # the reference's plain-GELU quirk
    head = cfg.model.roi_head.bbox_head
    assert head.num_classes == 80 and len(head.class_weights) == 80 and sum(head.class_weights) == 48
    assert head.class_embeddings.endswith('ov_coco_80_vitb16_vild.npy')
    assert (head.num_cls_fcs, head.num_reg_fcs, head.background) == (1, 1, 'learned')
    classes = cfg.test_dataloader.dataset.metainfo.classes
    assert len(classes) == 80 and classes == cfg.train_dataloader.dataset.metainfo.classes
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.auto_scale_lr.enable
    assert cfg.train_dataloader.batch_sampler.type == 'AspectRatioBatchSampler'
    train = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert train.index('Pad') < train.index('RandomFlip')
    for pipe in (cfg.train_dataloader.dataset.pipeline, cfg.test_dataloader.dataset.pipeline):
        steps = {t.type: t for t in pipe}
        assert steps['LoadImageFromFile'].to_float32 is True
        assert steps['Pad'].pad_val == dict(img=(122.7709383, 116.7460125, 104.09373615))


@pytest.mark.parametrize('name,expected', [
    ('fvit_vitb16_clim_ovcoco_quickgelu.py', {'model.backbone.clip_cfg.quick_gelu'}),
    ('fvit_vitb16_clim_ovcoco_65cls.py', {
        'model.roi_head.bbox_head.class_embeddings', 'model.roi_head.bbox_head.num_classes',
        'model.roi_head.bbox_head.class_weights', 'train_dataloader.dataset.metainfo.classes',
        'val_dataloader.dataset.metainfo.classes', 'test_dataloader.dataset.metainfo.classes'}),
    ('fvit_vitb16_clim_ovcoco_zeropad.py', {
        f'{loader}.dataset.pipeline.{i}.pad_val.img' for loader, i in (
            ('train_dataloader', 5), ('val_dataloader', 2), ('test_dataloader', 2))}),
    ('fvit_vitb16_ovcoco.py', {'model.backbone.clip_cfg.pretrained'}),
])
def test_named_deviations_differ_exactly_where_the_table_says(name: str, expected: set[str]) -> None:
    ref, other = _computation(REFERENCE.name), _computation(name)
    differ = {k for k in set(ref) | set(other) if ref.get(k, '<absent>') != other.get(k, '<absent>')}
    assert differ == expected
    table = (REPO_ROOT / 'docs' / 'reference_parity.md').read_text()
    assert name in table


def test_reference_pipeline_pads_with_the_quirky_value_then_flips(tmp_path) -> None:
    """Padded pixels normalize to about (-0.27, 0, +0.27); a flipped image carries its pad on the left."""
    import mmcv
    from mmcv.transforms import Compose
    from mmdet.registry import MODELS
    from mmengine.config import Config

    cfg = Config.fromfile(str(REFERENCE))
    img = np.full((40, 64, 3), 200, dtype=np.uint8)
    path = tmp_path / 'im.png'
    mmcv.imwrite(img, str(path))
    steps = [t for t in cfg.test_dataloader.dataset.pipeline if t.type != 'LoadAnnotations']
    data = Compose(steps)(dict(img_path=str(path), img_id=0))
    x = data['inputs']
    assert x.dtype == torch.float32 and tuple(x.shape) == (3, 640, 640)
    pre = MODELS.build(cfg.model.data_preprocessor)
    out = pre(dict(inputs=[x], data_samples=[data['data_samples']]), training=False)['inputs'][0]
    pad = out[:, -1, -1]  # bottom rows are padding (640 x 400 image)
    assert pad.tolist() == pytest.approx([(104.09373615 - 122.7709383) / 68.5005327, 0.0,
                                          (122.7709383 - 104.09373615) / 70.32316305], abs=1e-5)
    assert pad[0] < -0.25 and pad[2] > 0.25

    # Training order: pad, then flip (prob 1 here): the padding of a wide image moves to the left.
    train = [dict(t) for t in cfg.train_dataloader.dataset.pipeline
             if t.type not in ('RandomResize', 'RandomCrop', 'FilterAnnotations', 'LoadAnnotations')]
    for t in train:
        if t['type'] == 'RandomFlip':
            t['prob'] = 1.0
    tall = np.full((64, 40, 3), 200, dtype=np.uint8)
    mmcv.imwrite(tall, str(path))
    flipped = Compose(train)(dict(img_path=str(path), img_id=0))['inputs']
    assert tuple(flipped.shape) == (3, 640, 640)
    assert torch.all(flipped[:, :, :600] == flipped[:, 0:1, 0:1]) and torch.all(flipped[:, :64, 600:] == 200)
