"""Fixtures shared by the whole test suite.

Area-specific fixtures live in ``tests/<area>/conftest.py``; what several areas use lives here:
the tiny CLIP architecture, random-weight checkpoints of it, and the generated COCO-format
shapes dataset.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch

# Two cores are shared by everything on the CI machine: keep intra-op threads modest.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REPO_ROOT = Path(__file__).resolve().parents[1]

from tests.helpers import TINY_CLIP_CFG  # noqa: E402  (one definition for every test area)


@pytest.fixture
def tiny_clip_cfg() -> dict:
    """A fresh copy of the tiny CLIP model config (tests may mutate it)."""
    return copy.deepcopy(TINY_CLIP_CFG)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory) -> dict:
    """A small generated shapes benchmark (COCO format), shared by the whole session: 12 train and
    8 val images of 64x64 (the tiny CLIP's input size), seed 0. Returns the path dict of
    ``ovd_demo.shapes.generate_shapes_dataset`` (root, train_json, val_json, train_all_json,
    train_captions, val_captions, train_img_dir, val_img_dir, class_names_{all,base,novel}, meta).
    Treat it as read-only; generate your own copy to modify it."""
    from ovd_demo.shapes import generate_shapes_dataset

    return generate_shapes_dataset(tmp_path_factory.mktemp("shapes"), num_train=12, num_val=8,
                                   image_size=64, seed=0)
