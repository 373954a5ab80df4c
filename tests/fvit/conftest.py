"""F-ViT test fixtures: a workspace with generated shapes data, a tiny CLIP checkpoint and its class
embeddings, laid out where configs/tiny/fvit_tiny_shapes.py expects them (paths relative to the workspace),
and one tiny training run shared by the tests that need a trained checkpoint."""
from __future__ import annotations

from pathlib import Path

import pytest

from fvit_test_utils import REPO_ROOT, TINY_CONFIG, run_tool, tiny_fvit_config
from tests.helpers import make_tiny_detector_workspace


@pytest.fixture(scope='session')
def fvit_workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A working directory holding ``data/shapes/`` (8 train / 4 val images, 128 px),
    ``ckpt/tiny_clip.pt`` (a CLIM-format export of the tiny CLIP) and ``data/shapes/shapes_tiny.npy``."""
    return make_tiny_detector_workspace(tmp_path_factory.mktemp('fvit_ws'))


@pytest.fixture(scope='session')
def fvit_trained(fvit_workspace: dict[str, Path]) -> dict[str, Path]:
    """One epoch (3-4 iterations) of the tiny F-ViT through tools/train.py, plus its validation."""
    work = fvit_workspace['root'] / 'work_dirs' / 'fvit_tiny_shapes'
    proc = run_tool([str(REPO_ROOT / 'tools' / 'train.py'), str(TINY_CONFIG), '--work-dir', str(work)],
                    cwd=fvit_workspace['root'])
    ckpt = work / 'epoch_1.pth'
    assert ckpt.is_file(), proc.stdout[-3000:]
    return dict(work_dir=work, checkpoint=ckpt, log=proc.stdout + proc.stderr)


@pytest.fixture
def tiny_model_cfg(fvit_workspace: dict[str, Path]):
    """The tiny F-ViT config with absolute paths into the workspace."""
    return tiny_fvit_config(fvit_workspace['root'])


@pytest.fixture(autouse=True)
def _mmdet_scope() -> None:
    """Register our modules and make mmdet the default registry scope (as configs do)."""
    import clim  # noqa: F401
    import ovdet  # noqa: F401
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')
