"""Fixtures for the CLIM tests: a shapes dataset large enough for one mosaic group, a tiny CLIM model."""
from __future__ import annotations

import pytest

import clim  # noqa: F401  (registers everything)
from clim_test_utils import build_tiny_clim


@pytest.fixture(scope='session')
def clim_shapes(tmp_path_factory) -> dict:
    """A generated shapes benchmark with 64 train images (>= 29 for one mosaic group) and 8 val
    images, 64 x 64. Read-only: copy what you want to modify. Same keys as ``generate_shapes_dataset``."""
    from ovd_demo.shapes import generate_shapes_dataset
    return generate_shapes_dataset(tmp_path_factory.mktemp('clim_shapes'), num_train=64, num_val=8,
                                   image_size=64, seed=0)


@pytest.fixture
def tiny_clim(tiny_clip_cfg: dict):
    """A tiny random-weight CLIM model (seed 0): 64 px images, mosaics resized to 128, 2 unlocked groups."""
    return build_tiny_clim(tiny_clip_cfg)
