"""Fixtures for the CLIP wrapper tests: tiny models and random-weight checkpoints written in each
real on-disk format (OpenAI TorchScript archive, open_clip state dict, CLIM export)."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from clim.models import CLIPModel, save_clip_checkpoint

from clip_test_utils import fp16_rounded, write_openai_archive

# A tiny Modified-ResNet CLIP (RN50-style attention pool) for the ResNet code paths.
TINY_RN_CFG: dict = dict(
    embed_dim=32,
    quick_gelu=False,
    vision_cfg=dict(image_size=64, layers=[1, 1, 1, 1], width=16, head_width=64, patch_size=None),
    text_cfg=dict(context_length=32, vocab_size=49408, width=64, heads=2, layers=2),
)


@pytest.fixture
def tiny_model(tiny_clip_cfg: dict) -> CLIPModel:
    """A random-weight tiny ViT CLIPModel in eval mode."""
    return CLIPModel(model_cfg=tiny_clip_cfg).eval()


@pytest.fixture
def tiny_rn_model() -> CLIPModel:
    """A random-weight tiny Modified-ResNet CLIPModel in eval mode."""
    return CLIPModel(model_cfg=copy.deepcopy(TINY_RN_CFG)).eval()


@pytest.fixture
def tiny_checkpoints(tmp_path: Path, tiny_clip_cfg: dict) -> dict:
    """The same random tiny weights (fp16-representable) in each format.

    Returns:
        ``{'state_dict': fp32 weights, 'cfg': the tiny config, 'openai': archive path,
        'open_clip': raw state-dict path, 'open_clip_wrapped': {'state_dict': ...} with module.
        prefixes, 'clim': CLIM export (quick_gelu=True)}``.
    """
    src = CLIPModel(model_cfg=tiny_clip_cfg)
    sd = fp16_rounded(src.clip.state_dict())
    vcfg, tcfg = tiny_clip_cfg['vision_cfg'], tiny_clip_cfg['text_cfg']
    paths = dict(state_dict=sd, cfg=tiny_clip_cfg)
    paths['openai'] = write_openai_archive(sd, tmp_path / 'tiny_openai.pt', vcfg['image_size'],
                                           tcfg['context_length'], tcfg['vocab_size'])
    torch.save(sd, tmp_path / 'tiny_open_clip.pt')
    paths['open_clip'] = tmp_path / 'tiny_open_clip.pt'
    torch.save({'epoch': 3, 'state_dict': {f'module.{k}': v for k, v in sd.items()}},
               tmp_path / 'tiny_open_clip_train.pt')
    paths['open_clip_wrapped'] = tmp_path / 'tiny_open_clip_train.pt'
    src.clip.load_state_dict(sd)
    cfg = copy.deepcopy(tiny_clip_cfg)
    cfg['quick_gelu'] = True
    paths['clim'] = save_clip_checkpoint(tmp_path / 'tiny_clim.pt', src,
                                         dict(model_name=None, model_cfg=cfg, quick_gelu=True),
                                         dict(epoch=1, note='test'))
    return paths
