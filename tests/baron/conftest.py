"""BARON test fixtures: a workspace with generated shapes data, a tiny CLIP teacher checkpoint and its
"attn12" class embeddings, laid out where configs/tiny/baron_kd_tiny_shapes.py expects them."""
from __future__ import annotations

from pathlib import Path

import pytest

from baron_test_utils import TINY_CONFIG
from tests.helpers import make_tiny_detector_workspace


@pytest.fixture(scope='session')
def baron_workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``data/shapes/`` (8 train / 4 val images, 128 px), ``ckpt/tiny_clip.pt`` and
    ``data/shapes/shapes_tiny_attn12.npy`` (``ws['attn12']``) under one root."""
    return make_tiny_detector_workspace(tmp_path_factory.mktemp('baron_ws'))


@pytest.fixture
def tiny_cfg(baron_workspace: dict[str, Path]):
    """The tiny BARON config with absolute paths into the workspace."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.model.teacher.pretrained = str(baron_workspace['clip_ckpt'])
    cfg.model.roi_head.bbox_head.class_embeddings = str(baron_workspace['attn12'])
    return cfg


@pytest.fixture(autouse=True)
def _mmdet_scope() -> None:
    import clim  # noqa: F401
    import ovdet  # noqa: F401
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')
