"""Fixtures for the EVA-02 CLIP tests: a tiny EVA config on the real timm architecture function and
random-weight files in the EVA-CLIP release layout (key list from the spec, see eva_reference.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from eva_reference import random_release_state, release_shapes

# Real EVA02-B/16 construction (timm eva02_base_patch16_clip_224), shrunk: width 128 = 2 heads of 64 (the
# real head size, so the RoPE layout is the spec's 16 bands), 3 blocks (two with attention, one v2), 4x4 grid.
TINY = dict(width=128, depth=3, heads=2, patch=16, grid=4, embed=32, text_width=64, text_layers=1, context=16,
            vocab=100)
TINY_CFG: dict = dict(
    embed_dim=TINY['embed'],
    vision_cfg=dict(timm_model_name='eva02_base_patch16_clip_224', image_size=TINY['patch'] * TINY['grid'],
                    timm_kwargs=dict(img_size=TINY['patch'] * TINY['grid'], embed_dim=TINY['width'],
                                     depth=TINY['depth'], num_heads=TINY['heads'])),
    text_cfg=dict(context_length=TINY['context'], vocab_size=TINY['vocab'], width=TINY['text_width'], heads=1,
                  layers=TINY['text_layers']),
)


@pytest.fixture(scope='session')
def tiny_release_state() -> dict[str, torch.Tensor]:
    """Random weights of the tiny EVA CLIP under EVA-CLIP release names (rope buffers included)."""
    shapes = release_shapes(**{k: v for k, v in TINY.items() if k != 'heads'})
    return random_release_state(shapes)


@pytest.fixture(scope='session')
def tiny_release_file(tmp_path_factory: pytest.TempPathFactory, tiny_release_state: dict) -> Path:
    """The tiny release state dict saved as a bare ``torch.save`` file, like EVA02_CLIP_B_psz16_s8B.pt."""
    path = tmp_path_factory.mktemp('eva') / 'EVA02_CLIP_tiny.pt'
    torch.save(tiny_release_state, path)
    return path


# The tiny EVA with the real BPE vocabulary and the tiny CLIM configs' context length (32), so captions and
# prompts tokenized by open_clip's tokenizer index its text tower (CLIM / F-ViT / region-eval tests).
TINY_BPE = dict(TINY, vocab=49408, context=32)
TINY_BPE_CFG: dict = dict(TINY_CFG, text_cfg=dict(TINY_CFG['text_cfg'], context_length=32, vocab_size=49408))


@pytest.fixture(scope='session')
def tiny_bpe_release_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release-layout file of the tiny EVA with the real vocabulary (``TINY_BPE_CFG``)."""
    shapes = release_shapes(**{k: v for k, v in TINY_BPE.items() if k != 'heads'})
    path = tmp_path_factory.mktemp('eva_bpe') / 'EVA02_CLIP_tiny_bpe.pt'
    torch.save(random_release_state(shapes, seed=1), path)
    return path
