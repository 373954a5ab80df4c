"""Helpers for the F-ViT tests (shared pieces live in tests/helpers.py)."""
from __future__ import annotations

from pathlib import Path

from tests.helpers import REPO_ROOT, TINY_CLIP_CFG, run_tool  # noqa: F401

TINY_CONFIG = REPO_ROOT / 'configs' / 'tiny' / 'fvit_tiny_shapes.py'
STEP_LR = 0.05  # the SGD step of the distributed-equivalence test


def tiny_fvit_config(workspace_root: Path):
    """configs/tiny/fvit_tiny_shapes.py with absolute paths into a ``make_tiny_detector_workspace`` root."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.model.backbone.clip_cfg.pretrained = str(workspace_root / 'ckpt' / 'tiny_clip.pt')
    cfg.model.roi_head.bbox_head.class_embeddings = str(workspace_root / 'data' / 'shapes' / 'shapes_tiny.npy')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(workspace_root / 'data' / 'shapes') + '/'
    return cfg


def build_tiny_fvit(cfg, seed: int = 0):
    """The tiny F-ViT of ``cfg`` (same weights for the same seed), in train mode."""
    import torch
    from mmdet.registry import MODELS

    torch.manual_seed(seed)
    return MODELS.build(cfg.model)


def tiny_train_batch(cfg, n: int = 2, seed: int = 0) -> dict:
    """The first ``n`` training samples through the config's train pipeline (its random resize / crop /
    flip seeded), collated as the dataloader does; every process gets the same batch."""
    import random

    import numpy as np
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate

    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    random.seed(seed)
    np.random.seed(seed)
    return pseudo_collate([dataset[i] for i in range(n)])


def to_pre_neck_layout(state_dict: dict) -> dict:
    """Our F-ViT keys as they were before the pyramid adapters moved into the neck:
    ``neck.0.adapters.*`` -> ``backbone.adapters.*``, ``neck.1.*`` (the FPN) -> ``neck.*``."""
    renames = (('neck.0.adapters.', 'backbone.adapters.'), ('neck.1.', 'neck.'))
    out = {}
    for k, v in state_dict.items():
        for new, old in renames:
            if k.startswith(new):
                k = old + k[len(new):]
                break
        out[k] = v
    return out
