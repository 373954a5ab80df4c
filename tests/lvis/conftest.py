"""OV-LVIS test fixtures: LVIS-format shapes data prepared by tools/prepare_ov_lvis.py, the tiny CLIP and
its embeddings (laid out where configs/tiny/fvit_tiny_shapes_lvis.py expects them), one shared tiny training
run, and seeded random LVIS ground truth for the metric."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lvis_test_utils import REPO_ROOT, TINY_LVIS_CONFIG, make_tiny_lvis_workspace, random_lvis_gt, run_tool


@pytest.fixture(scope='session')
def lvis_workspace(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A working directory with ``data/shapes_lvis/`` (prepared), ``ckpt/tiny_clip.pt`` and embeddings."""
    return make_tiny_lvis_workspace(tmp_path_factory.mktemp('lvis_ws'))


@pytest.fixture(scope='session')
def lvis_trained(lvis_workspace: dict) -> dict:
    """One epoch of the tiny OV-LVIS F-ViT (with masks) through tools/train.py, plus its validation."""
    work = lvis_workspace['root'] / 'work_dirs' / 'fvit_tiny_shapes_lvis'
    proc = run_tool([str(REPO_ROOT / 'tools' / 'train.py'), str(TINY_LVIS_CONFIG), '--work-dir', str(work)],
                    cwd=lvis_workspace['root'])
    ckpt = work / 'epoch_1.pth'
    assert ckpt.is_file(), proc.stdout[-3000:]
    return dict(work_dir=work, checkpoint=ckpt, log=proc.stdout + proc.stderr)


@pytest.fixture(scope='session')
def random_gt_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Seeded random LVIS ground truth written to a json (path, dict)."""
    gt = random_lvis_gt(np.random.default_rng(0))
    path = tmp_path_factory.mktemp('lvis_gt') / 'gt.json'
    path.write_text(json.dumps(gt))
    return path, gt


@pytest.fixture(autouse=True)
def _mmdet_scope() -> None:
    """Register our modules and make mmdet the default registry scope (as configs do)."""
    import clim  # noqa: F401
    import ovdet  # noqa: F401
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')
