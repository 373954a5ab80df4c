"""Fixtures for the weights-folder tests: an empty, isolated ckpt/ folder and random tiny weights."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from ckpt_test_utils import (TINY_BIOMEDCLIP_CFG, TINY_DINOV2_KWARGS, TINY_UNIMED_VISION, build_open_clip_reference,
                             tiny_clipseg, write_tiny_bert, write_tiny_biomedclip, write_tiny_clipseg,
                             write_tiny_unimed)


@pytest.fixture
def ckpt_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty weights folder as ``$CLIM_CKPT_DIR``; hub caches elsewhere are hidden, hubs offline."""
    root = tmp_path / 'ckpt'
    root.mkdir()
    monkeypatch.setenv('CLIM_CKPT_DIR', str(root))
    for var in ('HF_HOME', 'HF_HUB_CACHE', 'TORCH_HOME'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('TRANSFORMERS_OFFLINE', '1')
    return root


@pytest.fixture
def tiny_clip_state(tiny_clip_cfg: dict) -> tuple[dict, dict]:
    """``(open_clip state dict of random tiny ViT CLIP weights (fp16-representable), its config with
    quick_gelu=True)``."""
    from clim.models import CLIPModel

    cfg = copy.deepcopy(tiny_clip_cfg)
    cfg['quick_gelu'] = True
    sd = {k: (v.half().float() if v.is_floating_point() else v.clone())
          for k, v in CLIPModel(model_cfg=cfg).clip.state_dict().items()}
    return sd, cfg


@pytest.fixture
def tiny_dinov2_state() -> dict[str, torch.Tensor]:
    """Random tiny DINOv2 weights in the original release's key names (``mask_token`` included)."""
    import timm

    vit = timm.create_model('vit_base_patch14_dinov2', pretrained=False, num_classes=0, **TINY_DINOV2_KWARGS)
    sd = {k: v.clone() for k, v in vit.state_dict().items()}
    sd['mask_token'] = torch.zeros(1, TINY_DINOV2_KWARGS['embed_dim'])
    return sd


@pytest.fixture
def biomedbert(ckpt_dir: Path) -> Path:
    """The BiomedBERT hub entry (config + tokenizer, tiny) in ``ckpt_dir``; returns its snapshot folder."""
    entry = write_tiny_bert(ckpt_dir)
    return entry / 'snapshots' / (entry / 'refs' / 'main').read_text()


@pytest.fixture
def tiny_unimed(ckpt_dir: Path, biomedbert: Path) -> tuple:
    """``(upstream open_clip reference model, its model config)``; its weights written as
    ``ckpt/unimed_clip_vit_b16.pt`` in the release's training-checkpoint format."""
    from clim.models.zoo import UNIMED_VIT_B16_CFG

    cfg = copy.deepcopy(UNIMED_VIT_B16_CFG)
    cfg.update(embed_dim=32, vision_cfg=dict(TINY_UNIMED_VISION))
    ref = build_open_clip_reference(cfg, biomedbert)
    write_tiny_unimed(ckpt_dir / 'unimed_clip_vit_b16.pt', ref)
    return ref, cfg


@pytest.fixture
def tiny_biomedclip(ckpt_dir: Path, biomedbert: Path) -> tuple:
    """``(upstream open_clip reference model, hub-cache entry)`` of a tiny BiomedCLIP in ``ckpt_dir``."""
    ref = build_open_clip_reference(TINY_BIOMEDCLIP_CFG, biomedbert)
    return ref, write_tiny_biomedclip(ckpt_dir, ref)


@pytest.fixture(scope='session')
def tiny_clipseg_files(tmp_path_factory) -> Path:
    """A tiny random CLIPSeg saved by transformers (config, weights, tokenizer, preprocessor), once."""
    return tiny_clipseg(tmp_path_factory.mktemp('clipseg'))


@pytest.fixture
def tiny_clipseg_cache(ckpt_dir: Path, tiny_clipseg_files: Path) -> Path:
    """``ckpt/models--CIDAS--clipseg-rd64-refined`` holding the tiny CLIPSeg."""
    return write_tiny_clipseg(ckpt_dir, tiny_clipseg_files)
