"""Helpers for the BARON tests (shared pieces live in tests/helpers.py)."""
from __future__ import annotations

from tests.helpers import REPO_ROOT, TINY_CLIP_CFG, run_tool  # noqa: F401

TINY_CONFIG = REPO_ROOT / 'configs' / 'tiny' / 'baron_kd_tiny_shapes.py'
