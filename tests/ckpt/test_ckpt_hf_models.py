"""The three rows that need transformers: UniMed-CLIP ViT-B/16, BiomedCLIP (open_clip models with a Hugging
Face BERT text tower) and CLIPSeg. Random tiny weights in each release's on-disk format load through the
registry, offline from ckpt/, and give the outputs of the upstream library on the same weights."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS

from ckpt_test_utils import BIOMEDBERT, BIOMEDCLIP_REPO

import clim  # noqa: F401  (registers the models)
from clim.models import CheckpointError, CLIPSegModel, HFTextCLIPModel
from clim.models.hub import HubCacheError

PROMPTS = ['a photo of the cat', 'chest x ray', 'brain scan of a dog']
# open_clip's own loading of an hf-hub model folder: argv = snapshot, work folder (images.pt in, upstream.pt out).
UPSTREAM_BIOMEDCLIP = f"""
import sys, torch, open_clip
snap, work = sys.argv[1], sys.argv[2]
model = open_clip.create_model('local-dir:' + snap, pretrained_text=False).eval()
tokens = open_clip.get_tokenizer('local-dir:' + snap)({PROMPTS!r})
images = torch.load(work + '/images.pt')
with torch.no_grad():
    out = dict(tokens=tokens, image=model.encode_image(images, normalize=True),
               text=model.encode_text(tokens, normalize=True))
torch.save(out, work + '/upstream.pt')
"""


def _images(size: tuple[int, int], n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, *size)


def _check_dense_interface(model: HFTextCLIPModel, size: int, grid: int) -> None:
    images = _images((size, size))
    boxes = [torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 1.0, 1.0]]), torch.tensor([[0.1, 0.1, 0.9, 0.6]])]
    with torch.no_grad():
        dense = model.dense_features(images)
        assert dense.shape == (2, model.embed_dim, grid, grid)
        torch.testing.assert_close(dense.norm(dim=1), torch.ones(2, grid, grid))
        assert model.region_features(images, boxes).shape == (3, model.embed_dim)
        maps, final = model.vit_tokens(images, (0, -1))
        assert [m.shape for m in maps] == [(2, model.vision_width, grid, grid)] * 2
        torch.testing.assert_close(model.project_dense(final), dense)
        # off the native size: positional embeddings are resized
        assert model.encode_image(_images((size + 32, size - 16))).shape == (2, model.embed_dim)
        assert model.dense_features(_images((size + 32, size - 16))).shape == (2, model.embed_dim,
                                                                                grid + 2, grid - 1)
        names = model.encode_class_names(['cat', 'dog'], templates='short')
    assert names.shape == (2, model.embed_dim)


def _check_text_matches(model: HFTextCLIPModel, ref: torch.nn.Module) -> None:
    tokens = model.tokenize(PROMPTS)
    assert tokens.shape == (3, 256) and tokens.dtype == torch.long
    # BERT WordPiece: [CLS] ... [SEP] then [PAD] (ids of the tiny vocabulary: 4, 5, 0)
    assert tokens[:, 0].tolist() == [4] * 3 and (tokens == 5).sum(dim=1).tolist() == [1] * 3
    with torch.no_grad():
        ours = model.encode_text(tokens)
        torch.testing.assert_close(ours, ref.encode_text(tokens, normalize=True))
        # dropping all-padding columns changes nothing (the HF encoder masks padding)
        torch.testing.assert_close(model._encode_text_trimmed(tokens), ours, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# UniMed-CLIP
# ------------------------------------------------------------------------------------------------
def test_unimed_training_checkpoint_matches_open_clip(tiny_unimed) -> None:
    ref, cfg = tiny_unimed
    model = MODELS.build(dict(type='ZooModel', name='unimed-clip-vit-b-16', model_cfg=cfg)).eval()
    assert isinstance(model, HFTextCLIPModel) and model.quick_gelu and model.context_length == 256
    assert type(model.visual.transformer.resblocks[0].mlp.gelu).__name__ == 'QuickGELU'
    images = _images((64, 64))
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(images), ref.encode_image(images, normalize=True))
        # v2 dense features come from the standard open_clip ViT code path
        assert model.dense_features(images, mode='plain').shape == (2, 32, 4, 4)
        assert model.region_features(images, [torch.tensor([[0.0, 0.0, 32.0, 48.0]])] * 2, normalized=False,
                                     mode='v1').shape == (2, 32)
    _check_text_matches(model, ref)
    _check_dense_interface(model, 64, 4)
    with pytest.raises(NotImplementedError, match='Hugging Face'):
        model.encode_pseudo_words(torch.zeros(1, 3, 32), [2])
    model.lock_text_tower()
    assert not any(p.requires_grad for p in model.clip.text.parameters()) and model.logit_scale.requires_grad


def test_unimed_key_names_are_checked(tiny_unimed) -> None:
    """Without the text_encoder. -> text. mapping nothing of the text tower would load: refused, listed."""
    _, cfg = tiny_unimed
    with pytest.raises(CheckpointError) as e:
        MODELS.build(dict(type='ZooModel', name='unimed-clip-vit-b-16', model_cfg=cfg, key_map={}))
    msg = str(e.value)
    assert 'missing keys' in msg and 'text.proj.0.weight' in msg and 'text_encoder.proj.0.weight' in msg


def test_unimed_without_quick_gelu_differs(tiny_unimed) -> None:
    """The activation is part of the architecture: GELU on the same weights gives other embeddings."""
    ref, cfg = tiny_unimed
    model = MODELS.build(dict(type='ZooModel', name='unimed-clip-vit-b-16', model_cfg=cfg, quick_gelu=False))
    images = _images((64, 64))
    with torch.no_grad():
        assert not torch.allclose(model.eval().encode_image(images), ref.encode_image(images, normalize=True))


# ------------------------------------------------------------------------------------------------
# BiomedCLIP
# ------------------------------------------------------------------------------------------------
def test_biomedclip_hub_cache_matches_open_clip(ckpt_dir: Path, tiny_biomedclip, tmp_path: Path) -> None:
    ref, entry = tiny_biomedclip
    builds = [dict(type='ZooModel', name='biomedclip'), dict(type='HFTextCLIPModel', pretrained=str(entry)),
              dict(type='HFTextCLIPModel', pretrained=f'hf-hub:{BIOMEDCLIP_REPO}')]
    images = _images((160, 160))
    for how in builds:
        model = MODELS.build(how).eval()
        assert isinstance(model, HFTextCLIPModel) and Path(model.pretrained).name == 'open_clip_pytorch_model.bin'
        with torch.no_grad():
            torch.testing.assert_close(model.encode_image(images), ref.encode_image(images, normalize=True))
    _check_text_matches(model, ref)

    # Upstream open_clip loading the same snapshot by itself (its own config and weight reading; the BERT
    # name resolved by huggingface_hub in the same cache, offline) gives the same embeddings. A fresh
    # process: huggingface_hub reads HF_HUB_CACHE / HF_HUB_OFFLINE once, at import.
    snapshot = next((entry / 'snapshots').iterdir())
    torch.save(images, tmp_path / 'images.pt')
    env = dict(os.environ, HF_HUB_CACHE=str(ckpt_dir), HF_HUB_OFFLINE='1', OMP_NUM_THREADS='2')
    subprocess.run([sys.executable, '-c', UPSTREAM_BIOMEDCLIP, str(snapshot), str(tmp_path)], env=env, check=True,
                   timeout=300, capture_output=True)
    out = torch.load(tmp_path / 'upstream.pt', weights_only=True)
    torch.testing.assert_close(model.tokenize(PROMPTS), out['tokens'])
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(images), out['image'])
        torch.testing.assert_close(model.encode_text(out['tokens']), out['text'])


def test_biomedclip_timm_tower_dense_features(tiny_biomedclip) -> None:
    ref, _ = tiny_biomedclip
    model = MODELS.build(dict(type='ZooModel', name='biomedclip')).eval()
    assert model.stride == 16 and model.image_size == (160, 160) and model.vision_width == 64
    images = _images((160, 160))
    trunk = ref.visual.trunk
    with torch.no_grad():
        # 'plain' = timm's own forward, projected per patch token
        tokens = trunk.forward_features(images)[:, 1:]
        expected = F.normalize(ref.visual.head(trunk.fc_norm(tokens)), dim=-1).transpose(1, 2).reshape(2, 32, 10, 10)
        torch.testing.assert_close(model.dense_features(images, mode='plain'), expected)
        # the any-size image path equals upstream at the native size
        torch.testing.assert_close(model.image_tower.encode_any_size(images), ref.encode_image(images))
        # v2: the last block's value path only -> different from plain, same shape
        assert not torch.allclose(model.dense_features(images), expected)
    _check_dense_interface(model, 160, 10)
    assert len(model.image_groups()) == 2 + len(trunk.blocks)
    model.lock_image_tower(2)
    assert [p.requires_grad for p in model.visual.parameters()].count(True) == \
        sum(len(list(b.parameters())) for b in model.visual.trunk.blocks[-2:])
    with pytest.raises(NotImplementedError, match='timm ViT'):
        model.mask_attention_pool(images, [torch.ones(1, 10, 10, dtype=torch.bool)] * 2)


def test_text_tower_entry_missing_names_path_and_command(ckpt_dir: Path, tiny_biomedclip, biomedbert: Path) -> None:
    shutil.rmtree(ckpt_dir / ('models--' + BIOMEDBERT.replace('/', '--')))
    for name in ('biomedclip', 'unimed-clip-vit-b-16'):
        if name == 'unimed-clip-vit-b-16':
            (ckpt_dir / 'unimed_clip_vit_b16.pt').write_bytes(b'')  # present: the text entry is what is missing
        with pytest.raises(HubCacheError) as e:
            MODELS.build(dict(type='ZooModel', name=name))
        msg = str(e.value)
        assert str(ckpt_dir / 'models--microsoft--BiomedNLP-BiomedBERT-base-uncased-abstract') in msg
        assert f'hf download {BIOMEDBERT} config.json vocab.txt tokenizer_config.json --cache-dir ckpt' in msg


@pytest.mark.parametrize('name,path,hint', [
    ('unimed-clip-vit-b-16', 'unimed_clip_vit_b16.pt', 'github.com/mbzuai-oryx/UniMed-CLIP'),
    ('biomedclip', 'models--microsoft--BiomedCLIP-PubMedBERT_256-vit_base_patch16_224',
     f'hf download {BIOMEDCLIP_REPO} --cache-dir ckpt'),
    ('clipseg-rd64-refined', 'models--CIDAS--clipseg-rd64-refined', 'hf download CIDAS/clipseg-rd64-refined'),
])
def test_missing_weights_name_path_and_hint(ckpt_dir: Path, name: str, path: str, hint: str) -> None:
    with pytest.raises(CheckpointError) as e:
        MODELS.build(dict(type='ZooModel', name=name))
    assert str(ckpt_dir / path) in str(e.value) and hint in str(e.value) and 'ckpt/README.md' in str(e.value)


# ------------------------------------------------------------------------------------------------
# CLIPSeg
# ------------------------------------------------------------------------------------------------
def test_clipseg_matches_transformers(tiny_clipseg_cache: Path, tiny_clipseg_files: Path) -> None:
    from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

    model = MODELS.build(dict(type='ZooModel', name='clipseg-rd64-refined', prompt_batch=2))
    assert isinstance(model, CLIPSegModel) and model.image_size == 64
    pixels = torch.rand(2, 3, 80, 100) * 255
    with torch.no_grad():
        logits = model(pixels, PROMPTS)
    assert logits.shape == (2, 3, 64, 64)

    ref = CLIPSegForImageSegmentation.from_pretrained(str(tiny_clipseg_files)).eval()
    enc = CLIPSegProcessor.from_pretrained(str(tiny_clipseg_files))(text=PROMPTS, padding=True, return_tensors='pt')
    tokens = model.tokenize(PROMPTS)
    assert torch.equal(tokens['input_ids'], enc['input_ids'])
    pv = model.preprocess(pixels)
    with torch.no_grad():
        for b in range(2):
            expected = ref(input_ids=enc['input_ids'], attention_mask=enc['attention_mask'],
                           pixel_values=pv[b:b + 1].expand(3, -1, -1, -1)).logits
            torch.testing.assert_close(logits[b], expected)
    # the statistics are the snapshot's (ImageNet's), not CLIP's
    torch.testing.assert_close(model.image_mean, torch.tensor([0.485, 0.456, 0.406]))


def test_clipseg_incomplete_snapshot(ckpt_dir: Path, tiny_clipseg_cache: Path) -> None:
    snap = next((tiny_clipseg_cache / 'snapshots').iterdir())
    (snap / 'vocab.json').unlink()
    (snap / 'tokenizer.json').unlink(missing_ok=True)
    with pytest.raises(HubCacheError, match='tokenizer.json / vocab.txt / vocab.json.*hf download CIDAS'):
        MODELS.build(dict(type='ZooModel', name='clipseg-rd64-refined'))


def test_pool_logits_by_hand() -> None:
    from clim.evaluation import pool_logits

    logits = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 10.0], [0.0, 0.0]]])     # (C=2, 2, 2)
    masks = torch.tensor([[[True, True], [False, False]], [[False, False], [True, True]],
                          [[False, False], [False, False]]])
    torch.testing.assert_close(pool_logits(logits, masks, 'mean'), torch.tensor([[1.5, 5.0], [3.5, 0.0], [0.0, 0.0]]))
    torch.testing.assert_close(pool_logits(logits, masks, 'max'), torch.tensor([[2.0, 10.0], [4.0, 0.0], [0.0, 0.0]]))
    # masks at a coarser grid are resampled (nearest): one cell covers the whole 2x2 map
    torch.testing.assert_close(pool_logits(logits, torch.ones(1, 1, 1, dtype=torch.bool)), torch.tensor([[2.5, 2.5]]))


def test_clipseg_region_eval_config_end_to_end(tiny_clipseg_cache: Path, synthetic_dataset: dict, repo_root: Path,
                                               tmp_path: Path) -> None:
    """configs/region_eval/region_eval_clipseg_coco.py through mmengine's Runner on a generated COCO-format split."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(repo_root / 'configs/region_eval/region_eval_clipseg_coco.py'))
    ds = cfg.test_dataloader.dataset
    ds.update(data_root='', ann_file=synthetic_dataset['val_json'], img_prefix=synthetic_dataset['val_img_dir'],
              seg_prefix='')  # instances json: no panoptic PNGs
    ds.pipeline[1].size = 128
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False, batch_size=2)
    cfg.model.data_preprocessor.pad_size = 128
    cfg.work_dir = str(tmp_path / 'work')
    cfg.default_hooks.pop('checkpoint', None)
    runner = Runner.from_cfg(cfg)
    clipseg = runner.model.clipseg
    assert isinstance(clipseg, CLIPSegModel) and str(tiny_clipseg_cache) in clipseg.pretrained
    metrics = runner.test()
    for kind in ('box', 'mask'):
        for k in (1, 5):
            assert 0.0 <= metrics[f'region/{kind}_top{k}_things'] <= 100.0
    assert not any(k.startswith('region/crop') for k in metrics)


@pytest.mark.parametrize('reduce', ['mean', 'max'])
def test_clipseg_region_scores_follow_the_maps(tiny_clipseg_cache: Path, monkeypatch: pytest.MonkeyPatch,
                                               reduce: str) -> None:
    """Boxes and masks of an image smaller than the padded batch are scored on the maps CLIPSeg gives for
    that image (its unpadded extent resized to S x S): maps drawn by hand decide the classes."""
    from mmengine.structures import BaseDataElement

    from clim.evaluation import CLIPSegRegionRecognition

    model = CLIPSegRegionRecognition(clipseg=dict(type='ZooModel', name='clipseg-rd64-refined'), reduce=reduce,
                                     map_stride=4, mask_stride=16).eval()
    s = model.clipseg.image_size                                                # 64

    def fake_segment(pixel_values: torch.Tensor, prompts=None, conditional=None) -> torch.Tensor:
        assert pixel_values.shape == (1, 3, s, s) and conditional.shape[0] == 3
        maps = torch.zeros(1, 3, s, s)
        maps[0, 0] = 1.0                          # class 0: a little everywhere
        maps[0, 1, : s // 2, : s // 2] = 10.0     # class 1: the top-left quarter of the image
        maps[0, 2, s // 2:, s // 2:] = 10.0       # class 2: the bottom-right quarter
        return maps

    monkeypatch.setattr(model.clipseg, 'segment', fake_segment)
    # a 48 x 32 image in a 96 x 64 batch: mistaking the padded extent for the image would move the maps
    sample = BaseDataElement(metainfo=dict(classes=('a', 'b', 'c'), img_shape=(32, 48)))
    sample.gt_bboxes = torch.tensor([[0.0, 0.0, 24.0, 16.0], [24.0, 16.0, 48.0, 32.0], [0.0, 0.0, 48.0, 32.0]])
    masks = torch.zeros(3, 2, 3, dtype=torch.bool)                          # the image's 16 px grid
    masks[0, 0, 0] = True
    masks[1, 1, 2] = True
    masks[2, 1, 0] = True                                                   # bottom-left: only class 0
    sample.gt_masks = masks
    inputs = torch.zeros(1, 3, 64, 96)                                      # padded batch
    out = model(inputs, [sample], mode='predict')[0]
    assert out.pred_box_topk[:, 0].tolist()[:2] == [1, 2] and out.pred_box_topk.shape == (3, 3)
    assert out.pred_mask_topk[:, 0].tolist() == [1, 2, 0]
