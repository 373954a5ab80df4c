"""Fixtures for the weights-folder tests: an empty, isolated ckpt/ folder and random tiny weights."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from ckpt_test_utils import TINY_DINOV2_KWARGS


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
