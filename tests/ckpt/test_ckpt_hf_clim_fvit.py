"""CLIM and F-ViT on the Hugging Face text-tower CLIPs (UniMed-CLIP: open_clip ViT; BiomedCLIP: timm ViT), with
the tiny random-weight fixtures of tests/ckpt in each release's on-disk format:

- CLIM takes caption tokens from the model's own tokenizer (BERT WordPiece, 256), never the pipeline's BPE;
- one CLIM training run per model through tools/train.py ends with an export that records its class and
  reloads, through the registry paths the configs use, to exactly the exported weights;
- F-ViT builds on either tower (and on the export, from the real F-ViT config) and takes a training step
  that leaves the CLIP untouched.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.structures import BaseDataElement

import clim  # noqa: F401  (registers the models)
import ovdet  # noqa: F401
from clim.models import CLIPModel, HFTextCLIPModel
from clim.models.hf_clip import export_clip_type
from tests.helpers import REPO_ROOT, check_fvit_predicts, run_tool, total_loss

CAPTION = 'a photo of the cat'
SHAPES = ('circle', 'square', 'triangle', 'star', 'cross', 'ring', 'hexagon', 'crescent', 'arrow', 'heart')
REAL_CONFIGS = {'unimed': ('configs/clim/clim_unimed_vitb16_coco.py', 'configs/fvit/fvit_unimed_vitb16_ovcoco.py',
                           'unimed-clip-vit-b-16'),
                'biomedclip': ('configs/clim/clim_biomedclip_vitb16_coco.py',
                               'configs/fvit/fvit_biomedclip_vitb16_ovcoco.py', 'biomedclip')}


@pytest.fixture(params=['unimed', 'biomedclip'])
def hf_clip(request: pytest.FixtureRequest) -> dict:
    """``{'kind', 'ref' (upstream open_clip model on the same weights), 'zoo' (ZooModel config of the tiny
    model in ckpt/), 'bert' (BiomedBERT snapshot folder)}`` for each HF text-tower model."""
    kind = request.param
    bert = request.getfixturevalue('biomedbert')
    if kind == 'unimed':
        ref, cfg = request.getfixturevalue('tiny_unimed')
        zoo = dict(type='ZooModel', name='unimed-clip-vit-b-16', model_cfg=cfg)
    else:
        ref, _ = request.getfixturevalue('tiny_biomedclip')
        zoo = dict(type='ZooModel', name='biomedclip')
    return dict(kind=kind, ref=ref, zoo=zoo, bert=bert)


def _direct_text_features(ref: torch.nn.Module, bert_dir: Path, caption: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids (1, 256), feature (1, D))`` of ``caption`` from transformers' tokenizer and the text tower's BERT
    called directly: [CLS] of the last hidden state, the tower's projection, L2-normalized."""
    from transformers import AutoTokenizer

    enc = AutoTokenizer.from_pretrained(str(bert_dir))(caption, padding='max_length', max_length=256,
                                                       truncation=True, return_tensors='pt')
    ids = enc['input_ids']
    with torch.no_grad():
        hidden = ref.text.transformer(input_ids=ids, attention_mask=enc['attention_mask']).last_hidden_state
        return ids, F.normalize(ref.text.proj(hidden[:, 0]), dim=-1)


# ------------------------------------------------------------------------------------------------
# caption tokens and text features
# ------------------------------------------------------------------------------------------------
def test_clim_text_features_are_hf_tokenizer_plus_text_tower(hf_clip: dict) -> None:
    model = MODELS.build(dict(type='CLIM', clip=hf_clip['zoo'], train_image_size=128, unlocked_groups=2))
    assert isinstance(model.clip, HFTextCLIPModel)
    ids, expected = _direct_text_features(hf_clip['ref'], hf_clip['bert'], CAPTION)
    # The pipeline's BPE ids (what TokenizeCaption writes) are ignored: the caption is tokenized by the model.
    from clim.datasets.transforms import get_tokenizer
    sample = BaseDataElement(metainfo=dict(caption=CAPTION))
    sample.text = get_tokenizer(256)([CAPTION])[0]
    tokens = model.caption_tokens([sample])
    assert torch.equal(tokens, ids) and tokens.shape == (1, 256)
    torch.testing.assert_close(model.text_features(tokens), expected)
    # the training forward pairs images with exactly these text features
    images = torch.randint(0, 256, (29, 3, 64, 64), dtype=torch.uint8)
    samples = []
    for i in range(29):
        s = BaseDataElement(metainfo=dict(caption=CAPTION if i == 3 else f'chest x ray {i}'))
        s.text = torch.zeros(32, dtype=torch.long)
        samples.append(s)
    data = model.data_preprocessor(dict(inputs=list(images), data_samples=samples), True)
    with torch.no_grad():
        img, txt = model(**data, mode='tensor')
    assert img.shape == txt.shape == (29, model.clip.embed_dim)
    torch.testing.assert_close(txt[3:4], expected)
    with pytest.raises(ValueError, match="no 'caption'"):
        model.caption_tokens([BaseDataElement(metainfo={})])


def test_openai_style_clim_still_takes_pipeline_tokens(tiny_clip_cfg: dict) -> None:
    """The BPE path is unchanged: a CLIPModel's CLIM uses the pipeline's ``text`` as given."""
    model = MODELS.build(dict(type='CLIM', clip=dict(type='CLIPModel', model_cfg=tiny_clip_cfg),
                              train_image_size=128, unlocked_groups=2))
    sample = BaseDataElement(metainfo=dict(caption='not these words'))
    sample.text = torch.arange(32)
    assert torch.equal(model.caption_tokens([sample]), torch.arange(32)[None])


# ------------------------------------------------------------------------------------------------
# CLIM training through tools/train.py, export, reload
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def caption_shapes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """32 train images (one 2x2 + 3x3 + 4x4 mosaic group + 3 singles) and 4 val images, 64 px."""
    from ovd_demo.shapes import generate_shapes_dataset

    return generate_shapes_dataset(tmp_path_factory.mktemp('hf_clim_shapes'), num_train=32, num_val=4,
                                   image_size=64, seed=0)


def _tiny_clim_config(path: Path, kind: str, clip: dict) -> Path:
    """A config inheriting configs/tiny/clim_tiny_shapes.py (itself on the real CLIM bases) with the HF CLIP. UniMed
    takes the real config's caption pipeline (no TokenizeCaption) at 64 px; BiomedCLIP keeps the tiny
    config's, whose BPE TokenizeCaption the model must ignore."""
    lines = [f"_base_ = ['{REPO_ROOT / 'configs/tiny/clim_tiny_shapes.py'}']",
             f'model = dict(clip=dict(_delete_=True, **{clip!r}))']
    if kind == 'unimed':
        pipeline = Config.fromfile(str(REPO_ROOT / REAL_CONFIGS[kind][0])).train_dataloader.dataset.pipeline
        assert [t['type'] for t in pipeline] == ['LoadCaptionImage', 'CaptionRandomResizedCrop', 'PackCaptionInputs']
        pipeline = [dict(t, size=64) if t['type'] == 'CaptionRandomResizedCrop' else dict(t) for t in pipeline]
        lines.append(f'train_dataloader = dict(dataset=dict(pipeline={pipeline!r}))')
    path.write_text('\n'.join(lines) + '\n')
    return path


def test_clim_trains_and_exports_hf_clip(hf_clip: dict, caption_shapes: dict, tmp_path: Path) -> None:
    kind, ref = hf_clip['kind'], hf_clip['ref']
    clip_cfg = {k: v for k, v in hf_clip['zoo'].items() if k != 'type'}
    config = _tiny_clim_config(tmp_path / f'clim_{kind}_tiny.py', kind, dict(type='ZooModel', **clip_cfg))
    work = tmp_path / 'work'
    root = caption_shapes['root'] + '/'
    res = run_tool(['tools/train.py', str(config), '--work-dir', str(work), '--cfg-options',
                    *[f'{k}.dataset.data_root={root}' for k in ('train_dataloader', 'val_dataloader',
                                                                  'test_dataloader')],
                    'train_cfg.max_epochs=1', 'train_cfg.val_interval=1'], cwd=REPO_ROOT)
    log = res.stdout + res.stderr
    assert re.search(r'Epoch\(train\) \[1\]\[1/1\].*loss_contrast: \d', log), log[-3000:]
    assert ('TokenizeCaption output is ignored' in log) == (kind == 'biomedclip')
    assert re.search(r'region/box_top1_things: \d', log)

    latest = work / 'clip_latest.pt'
    blob = torch.load(latest, weights_only=True)
    assert blob['clip_arch']['type'] == 'HFTextCLIPModel' == export_clip_type(latest)
    assert blob['clip_arch']['model_cfg']['text_cfg']['hf_model_name'].startswith('microsoft/')  # portable
    exported = blob['state_dict']
    original = ref.state_dict()
    # CLIM changed the unlocked image blocks (0.7 trained + 0.3 original) and nothing of the text tower.
    changed = [k for k in exported if not torch.equal(exported[k], original[k])]
    assert changed and all(k.startswith('visual.') or k == 'logit_scale' for k in changed), changed

    # Reload through what configs use: the zoo by file, the zoo entry + pretrained (the real F-ViT config
    # with the export), and a plain CLIPModel config (F-ViT's base clip_cfg) naming the export.
    fvit_clip = Config.fromfile(str(REPO_ROOT / REAL_CONFIGS[kind][1])).model.backbone.clip_cfg.to_dict()
    assert fvit_clip == dict(type='ZooModel', name=REAL_CONFIGS[kind][2])
    base_clip = Config.fromfile(str(REPO_ROOT / 'configs/_base_/models/fvit_vitb16.py')).clip_cfg.to_dict()
    # (the last: a CLIPModel config switched to the zoo, e.g. region_eval_vitb16_coco.py's model_name='ViT-B-16')
    for how in (dict(type='ZooModel', pretrained=str(latest)), dict(fvit_clip, pretrained=str(latest)),
                dict(base_clip, type='ZooModel', pretrained=str(latest))):
        model = MODELS.build(how)
        assert type(model) is HFTextCLIPModel
        state = model.clip.state_dict()
        assert state.keys() == exported.keys() and all(torch.equal(state[k], v) for k, v in exported.items())
    backbone = MODELS.build(dict(type='CLIPViTBackbone', clip_cfg=dict(base_clip, pretrained=str(latest)),
                                 out_indices=(0, 1, 1, 2)))
    pyramid = MODELS.build(dict(type='SimplePyramid', in_channels=backbone.out_channels, norm_cfg=dict(type='BN')))
    state = backbone.clip.clip.state_dict()
    assert all(torch.equal(state[k], v) for k, v in exported.items())
    with torch.no_grad():
        maps = pyramid.eval()(backbone(torch.randn(1, 3, 64, 64)))
    assert [tuple(m.shape[-2:]) for m in maps] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    with pytest.raises(NotImplementedError, match='standard open_clip'):  # why the dispatch is needed
        CLIPModel(pretrained=str(latest))


# ------------------------------------------------------------------------------------------------
# F-ViT on either tower
# ------------------------------------------------------------------------------------------------
def _tiny_fvit(clip_cfg: dict, embeddings: Path) -> torch.nn.Module:
    from mmdet.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/tiny/fvit_tiny_shapes.py')).model
    cfg.backbone.clip_cfg = clip_cfg
    cfg.roi_head.bbox_head.class_embeddings = str(embeddings)
    return MODELS.build(cfg)


def test_fvit_train_step_and_predict_on_hf_clip(hf_clip: dict, tmp_path: Path) -> None:
    from mmdet.testing import demo_mm_inputs

    clip = MODELS.build(copy.deepcopy(hf_clip['zoo'])).eval()
    with torch.no_grad():
        np.save(tmp_path / 'emb.npy', clip.encode_class_names(list(SHAPES), templates='short').numpy())
    model = _tiny_fvit(copy.deepcopy(hf_clip['zoo']), tmp_path / 'emb.npy')
    model.init_weights()
    backbone = model.backbone
    assert backbone.clip.is_vit and backbone.out_channels == 64
    clip_before = {k: v.clone() for k, v in backbone.clip.state_dict().items()}
    assert all(torch.equal(clip_before[k], v) for k, v in clip.state_dict().items())  # same weights as the zoo's

    model.train()
    packed = demo_mm_inputs(2, [[3, 64, 64]] * 2, num_classes=10, with_mask=False)
    for s in packed['data_samples']:
        s.gt_instances.labels = torch.zeros_like(s.gt_instances.labels)  # a base class ('circle')
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    total = total_loss(losses)
    assert torch.isfinite(total)
    params = [p for p in model.parameters() if p.requires_grad]
    assert not any(p.requires_grad for p in backbone.clip.parameters())
    opt = torch.optim.SGD(params, lr=0.1)
    total.backward()
    assert all(p.grad is not None for p in model.neck[0].adapters.parameters())
    opt.step()
    assert all(torch.equal(clip_before[k], v) for k, v in backbone.clip.state_dict().items())

    # test time: one ViT pass gives the pyramid and the CLIP dense map (the model's v2 dense features)
    check_fvit_predicts(model, clip, packed)


# ------------------------------------------------------------------------------------------------
# dispatch leaves the open_clip path alone; the catalog lists the new configs
# ------------------------------------------------------------------------------------------------
def test_clip_cfg_dispatch_only_touches_hf_exports(ckpt_dir: Path, tiny_clip_state: tuple, tmp_path: Path) -> None:
    from ckpt_test_utils import write_torchscript_state

    from clim.models import save_clip_checkpoint
    from clim.models.factory import clip_cfg_for

    sd, cfg = tiny_clip_state
    clip = CLIPModel(model_cfg=cfg)
    export = save_clip_checkpoint(tmp_path / 'clip_latest.pt', clip, clip.clip_arch)
    openai = write_torchscript_state(sd, ckpt_dir / 'ViT-B-16.pt', extra={'input_resolution': torch.tensor(64)})
    assert export_clip_type(export) == 'CLIPModel' and 'type' not in torch.load(export, weights_only=True)['clip_arch']
    for path in (export, openai, ckpt_dir / 'absent.pt'):
        given = dict(type='CLIPModel', model_name='ViT-B-16', quick_gelu=True, pretrained=str(path))
        assert clip_cfg_for(given) == given and export_clip_type(path) in (None, 'CLIPModel')
    assert export_clip_type(openai) is None
    with pytest.raises(ValueError, match='zoo name or'):
        MODELS.build(dict(type='ZooModel'))


def test_check_ckpt_lists_the_hf_configs(repo_root: Path) -> None:
    from clim.models import zoo_report

    usage = zoo_report.configs_using()
    for clim_cfg, fvit_cfg, name in REAL_CONFIGS.values():
        assert {clim_cfg, fvit_cfg} <= set(usage[name]), usage[name]
        for path in (clim_cfg, fvit_cfg):
            entries, other = zoo_report.config_references(str(repo_root / path))
            assert [e.name for e in entries] == [name] and not other
