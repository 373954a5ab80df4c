"""BARON test fixtures: a workspace with generated shapes data, a tiny CLIP teacher checkpoint and its
class embeddings, laid out where configs/tiny/baron_tiny.py expects them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from baron_test_utils import TINY_CLIP_CFG, TINY_CONFIG


@pytest.fixture(scope='session')
def baron_workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``data/shapes/`` (8 train / 4 val images, 128 px), ``ckpt/tiny_clip.pt`` and
    ``data/shapes/shapes_tiny.npy`` under one root."""
    from clim.models import CLIPModel, save_clip_checkpoint
    from ovdet.datasets.synthetic import SHAPE_CLASSES, generate_shapes_dataset

    root = tmp_path_factory.mktemp('baron_ws')
    generate_shapes_dataset(root / 'data' / 'shapes', num_train=8, num_val=4, image_size=128, seed=0)
    torch.manual_seed(0)
    clip = CLIPModel(model_cfg=TINY_CLIP_CFG).eval()
    clip_ckpt = root / 'ckpt' / 'tiny_clip.pt'
    save_clip_checkpoint(clip_ckpt, clip, clip.clip_arch)
    with torch.no_grad():
        emb = clip.encode_class_names(list(SHAPE_CLASSES), templates='short')
    emb_path = root / 'data' / 'shapes' / 'shapes_tiny.npy'
    np.save(emb_path, emb.numpy())
    return dict(root=root, clip_ckpt=clip_ckpt, embeddings=emb_path)


@pytest.fixture
def tiny_cfg(baron_workspace: dict[str, Path]):
    """The tiny BARON config with absolute paths into the workspace."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.model.teacher.pretrained = str(baron_workspace['clip_ckpt'])
    cfg.model.roi_head.bbox_head.class_embeddings = str(baron_workspace['embeddings'])
    return cfg


@pytest.fixture(autouse=True)
def _mmdet_scope() -> None:
    import clim  # noqa: F401
    import ovdet  # noqa: F401
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')
