"""EVA-02 CLIP wherever a CLIP is used, on a tiny random-weight EVA in the release layout: CLIM training through
tools/train.py (with its region-recognition val loop) and the export it writes, F-ViT (CLIPSelf's EVA head:
no projection, text background) train step and predict, tools/gen_text_embeddings.py, the real EVA configs
(they build), and the CLIPSelf EVA config failing fast without its files."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, TINY_BPE_CFG
from mmdet.registry import MODELS
from mmengine.config import Config

import clim  # noqa: F401  (registers the models)
import ovdet  # noqa: F401
from clim.models import build_clip
from clim.models.eva_clip import EvaCLIPModel
from tests.helpers import REPO_ROOT, check_fvit_predicts, load_tool, run_tool, total_loss

SHAPES = ('circle', 'square', 'triangle', 'star', 'cross', 'ring', 'hexagon', 'crescent', 'arrow', 'heart')
EVA_CONFIGS = ['configs/fvit/fvit_eva_vitb16_ovcoco.py', 'configs/fvit/fvit_eva_vitl14_ovcoco.py',
               'configs/clipself/clipself_eva_vitb16_coco_patches.py',
               'configs/clipself/clipself_eva_vitb16_coco_proposals.py',
               'configs/clipself/clipself_eva_vitl14_coco_patches.py',
               'configs/clipself/clipself_eva_vitl14_coco_proposals.py',
               'configs/region_eval/region_eval_eva_vitb16_coco_clipself.py']


def _tiny_clip(path: Path) -> dict:
    # type CLIPModel on purpose: the base configs' type; the file makes it an EVA-02 CLIP.
    return dict(type='CLIPModel', model_cfg=TINY_BPE_CFG, pretrained=str(path))


@pytest.fixture(scope='module')
def caption_shapes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from ovd_demo.shapes import generate_shapes_dataset

    return generate_shapes_dataset(tmp_path_factory.mktemp('eva_shapes'), num_train=32, num_val=4,
                                   image_size=64, seed=0)


def test_clim_trains_evaluates_and_exports_eva(tiny_bpe_release_file, caption_shapes, tmp_path):
    config = tmp_path / 'clim_eva_tiny.py'
    config.write_text(f"_base_ = ['{REPO_ROOT / 'configs/tiny/clim_tiny_shapes.py'}']\n"
                      f'model = dict(clip=dict(_delete_=True, **{_tiny_clip(tiny_bpe_release_file)!r}))\n')
    work = tmp_path / 'work'
    root = caption_shapes['root'] + '/'
    res = run_tool(['tools/train.py', str(config), '--work-dir', str(work), '--cfg-options',
                    *[f'{k}.dataset.data_root={root}' for k in ('train_dataloader', 'val_dataloader',
                                                                  'test_dataloader')],
                    'train_cfg.max_epochs=1', 'train_cfg.val_interval=1'], cwd=REPO_ROOT)
    log = res.stdout + res.stderr
    loss = re.search(r'Epoch\(train\) \[1\]\[1/1\].*loss_contrast: (\d+\.\d+)', log)
    assert loss and np.isfinite(float(loss.group(1))), log[-3000:]
    assert re.search(r'region/box_top1_things: \d', log), log[-3000:]   # region eval on the EVA dense map

    latest = work / 'clip_latest.pt'
    blob = torch.load(latest, weights_only=True)
    assert blob['clip_arch']['type'] == 'EvaCLIPModel'
    original = EvaCLIPModel(model_cfg=TINY_BPE_CFG, pretrained=tiny_bpe_release_file).state_dict()
    changed = [k for k, v in blob['state_dict'].items() if not torch.equal(v, original[k])]
    # unlocked_groups=2: the last two blocks train (exported 0.7 * trained + 0.3 * original), nothing else.
    last_two = tuple(f"visual.trunk.blocks.{i}." for i in (TINY['depth'] - 2, TINY['depth'] - 1))
    assert changed and all(k.startswith(last_two) or k == 'logit_scale' for k in changed), changed
    # The export rebuilds through F-ViT's base CLIP config (model_name ViT-B-16, GELU).
    base_clip = Config.fromfile(str(REPO_ROOT / 'configs/_base_/models/fvit_vitb16.py')).clip_cfg.to_dict()
    rebuilt = build_clip(dict(base_clip, pretrained=str(latest)))
    assert type(rebuilt) is EvaCLIPModel
    assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in blob['state_dict'].items())


def _tiny_fvit(clip_cfg: dict, embeddings: Path, **head) -> torch.nn.Module:
    from mmdet.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/tiny/fvit_tiny_shapes.py')).model
    cfg.backbone.clip_cfg = clip_cfg
    cfg.backbone.out_indices = (0, 1, 1, 2)
    cfg.neck[0].in_channels = TINY['width']
    cfg.neck[1].in_channels = [TINY['width']] * 4
    cfg.roi_head.bbox_head.class_embeddings = str(embeddings)
    cfg.roi_head.bbox_head.update(head)
    return MODELS.build(cfg)


def test_fvit_with_clipself_eva_head_trains_and_predicts(tiny_bpe_release_file, tmp_path):
    """The EVA recipe's head: region embedding = the ReLU'd cls fc (D wide, no projection), background = the
    text embedding row of the class file; the frozen EVA's dense map feeds the test-time ensemble."""
    from mmdet.testing import demo_mm_inputs

    tool = load_tool('gen_text_embeddings')
    names = tmp_path / 'shapes.txt'
    names.write_text('\n'.join(SHAPES) + '\n')
    emb = tool.main(['--pretrained', str(tiny_bpe_release_file), '--model-cfg', json.dumps(TINY_BPE_CFG),
                     '--class-file', str(names), '--templates', 'short', '--background',
                     '--out', str(tmp_path / 'emb.npy')])
    table = np.load(emb)
    assert table.shape == (len(SHAPES) + 1, TINY['embed'])
    clip = build_clip(_tiny_clip(tiny_bpe_release_file)).eval()
    with torch.no_grad():
        expected = clip.encode_class_names(list(SHAPES) + ['background'], templates='short')
    np.testing.assert_allclose(table, expected.numpy(), rtol=1e-5, atol=1e-6)

    model = _tiny_fvit(_tiny_clip(tiny_bpe_release_file), emb, background='text', background_row=True,
                       projection=False, fc_out_channels=TINY['embed'])
    model.init_weights()
    backbone = model.backbone
    assert type(backbone.clip) is EvaCLIPModel and isinstance(model.roi_head.bbox_head.fc_cls.proj, torch.nn.Identity)
    before = {k: v.clone() for k, v in backbone.clip.state_dict().items()}
    model.train()
    packed = demo_mm_inputs(2, [[3, 64, 64]] * 2, num_classes=10, with_mask=False)
    for s in packed['data_samples']:
        s.gt_instances.labels = torch.zeros_like(s.gt_instances.labels)
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    total = total_loss(losses)
    assert torch.isfinite(total)
    total.backward()
    assert not any(p.requires_grad for p in backbone.clip.parameters())
    assert all(torch.equal(before[k], v) for k, v in backbone.clip.state_dict().items())

    check_fvit_predicts(model, clip, packed)


@pytest.mark.parametrize('path', EVA_CONFIGS)
def test_real_eva_configs_build_on_the_tiny_eva(path, tiny_bpe_release_file):
    """Each real EVA config parses and its model builds with the tiny EVA in place of the released one."""
    cfg = Config.fromfile(str(REPO_ROOT / path))
    clip = _tiny_clip(tiny_bpe_release_file)
    model_cfg = cfg.model
    if 'backbone' in model_cfg:
        from mmdet.utils import register_all_modules

        register_all_modules()
        assert model_cfg.backbone.clip_cfg.model_name.startswith('EVA02-')
        model_cfg.backbone.clip_cfg = clip
        model_cfg.backbone.out_indices = (0, 1, 1, 2)
        model_cfg.neck[0].in_channels = TINY['width']
        model_cfg.neck[1].in_channels = [TINY['width']] * 4
        model_cfg.neck[0].norm_cfg = model_cfg.neck[1].norm_cfg = model_cfg.roi_head.bbox_head.norm_cfg = \
            dict(type='BN')
        model_cfg.roi_head.bbox_head.update(class_embeddings=np.random.rand(66, TINY['embed']).astype(np.float32),
                                            fc_out_channels=TINY['embed'])
    else:
        assert model_cfg.clip.model_name.startswith('EVA02-') and model_cfg.clip.type == 'CLIP'
        model_cfg.clip = clip
    model = MODELS.build(model_cfg)
    built = model.backbone.clip if 'backbone' in model_cfg else model.clip
    assert type(built) is EvaCLIPModel


def test_clipself_eva_config_fails_fast_naming_the_weights(tmp_path):
    env_dir = tmp_path / 'empty_ckpt'
    env_dir.mkdir()
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, 'tools/train.py', 'configs/clipself/clipself_eva_vitb16_coco_patches.py',
                           '--work-dir', str(tmp_path / 'w')], cwd=REPO_ROOT, capture_output=True, text=True,
                          env=dict(os.environ, CLIM_CKPT_DIR=str(env_dir), PYTHONPATH=str(REPO_ROOT),
                                   OMP_NUM_THREADS='1'), timeout=600)
    assert proc.returncode != 0
    err = proc.stderr[-3000:]
    assert 'EVA02_CLIP_B_psz16_s8B.pt' in err and 'hf download QuanSun/EVA-CLIP' in err, err
