"""The tiny F-ViT config trains and evaluates through tools/train.py and tools/test.py, and the frozen
CLIP comes out bit-identical."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from fvit_test_utils import REPO_ROOT, TINY_CLIP_CFG, TINY_CONFIG, run_tool


def test_tiny_config_uses_the_shared_tiny_clip() -> None:
    from mmengine.config import Config

    cfg = Config.fromfile(str(TINY_CONFIG))
    assert cfg.tiny_clip_cfg.to_dict() == TINY_CLIP_CFG
    assert cfg.model.type == 'FViT'
    assert cfg.optim_wrapper.constructor == 'TrainableParamsOptimWrapperConstructor'


def test_train_keeps_clip_bit_identical_and_optimizes_only_the_rest(fvit_workspace: dict, fvit_trained: dict,
                                                                     tiny_model_cfg) -> None:
    from clim.engine import safe_torch_load
    from mmdet.registry import MODELS

    log = fvit_trained['log']
    losses = [float(v) for v in re.findall(r'\bloss: ([0-9.]+)', log)]
    assert len(losses) >= 3 and all(v == v and v < 1e4 for v in losses), log[-3000:]
    assert 'ov_coco/novel_ap50' in log
    val = _val_metrics(log)
    assert set(val) == {'novel_ap50', 'base_ap50', 'all_ap50'}, log[-3000:]
    assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in val.values()), val

    ckpt = safe_torch_load(fvit_trained['checkpoint'])
    state = ckpt['state_dict']
    reference = torch.load(fvit_workspace['clip_ckpt'], weights_only=True)['state_dict']
    clip_keys = [k for k in state if k.startswith('backbone.clip.')]
    assert len(clip_keys) == len(reference)
    for key, value in reference.items():
        assert torch.equal(state['backbone.clip.clip.' + key], value), key

    # The optimizer saw exactly the trainable parameters, none of the CLIP's.
    model = MODELS.build(tiny_model_cfg.model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert not any(n.startswith('backbone.clip.') for n in trainable)
    handed = sum(len(g['params']) for g in ckpt['optimizer']['param_groups'])
    assert handed == len(trainable)
    assert len(ckpt['optimizer']['state']) == len(trainable)


def test_test_tool_evaluates_the_checkpoint(fvit_workspace: dict, fvit_trained: dict) -> None:
    work = Path(fvit_trained['work_dir']).with_name('fvit_tiny_test')
    proc = run_tool([str(REPO_ROOT / 'tools' / 'test.py'), str(TINY_CONFIG), str(fvit_trained['checkpoint']),
                     '--work-dir', str(work)], cwd=fvit_workspace['root'])
    metrics = re.search(r"\{'ov_coco/novel_ap50': ([0-9.na]+), 'ov_coco/base_ap50': ([0-9.na]+), "
                        r"'ov_coco/all_ap50': ([0-9.na]+)", proc.stdout)
    assert metrics, proc.stdout[-3000:]
    tested = dict(zip(('novel_ap50', 'base_ap50', 'all_ap50'), (float(v) for v in metrics.groups())))
    assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in tested.values()), tested
    # the same checkpoint gave these numbers in the training run's val loop (printed to 4 decimals)
    for k, v in _val_metrics(fvit_trained['log']).items():
        assert tested[k] == pytest.approx(v, abs=1e-4), (k, tested[k], v)


def _val_metrics(log: str) -> dict[str, float]:
    """The last val loop's OV-COCO AP50s in a training log."""
    lines = [ln for ln in log.splitlines() if 'Epoch(val)' in ln and 'ov_coco/' in ln]
    assert lines, log[-3000:]
    return {k: float(v) for k, v in re.findall(r'ov_coco/(\w+_ap50): ([0-9.]+|nan)', lines[-1])}
