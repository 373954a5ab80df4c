"""Fixtures of the CLIPSelf tests: a tiny CLIPSelf model."""
from __future__ import annotations

import pytest

import clim  # noqa: F401  (registers everything)
from clipself_test_utils import build_tiny_clipself


@pytest.fixture
def tiny_clipself(tiny_clip_cfg: dict):
    """A tiny random-weight CLIPSelf (seed 0): 128 px student input, 64 px crops, all 3 blocks trainable."""
    return build_tiny_clipself(tiny_clip_cfg)
