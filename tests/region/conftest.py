"""Fixtures for the region-evaluation protocol tests: a generated COCO-panoptic-format split."""
from __future__ import annotations

import pytest

import clim  # noqa: F401  (registers the transforms)
from region_test_utils import IMAGE1_SEGMENTS, grid_segments, write_panoptic


@pytest.fixture(scope='module')
def panoptic_split(tmp_path_factory) -> dict:
    """Image 1 (37 x 53 with crowd, tiny and stuff segments) and image 2 (100 x 110, 110 segments)."""
    return write_panoptic(tmp_path_factory.mktemp('panoptic'),
                          [(37, 53, IMAGE1_SEGMENTS), (100, 110, grid_segments(10, 11, 10))])
