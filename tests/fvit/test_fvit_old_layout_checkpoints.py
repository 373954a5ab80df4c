"""Detector checkpoints written before the pyramid adapters moved from the backbone into the
``SimplePyramid`` neck (``backbone.adapters.*``, the FPN under ``neck.*``) still load: through mmengine's
``load_checkpoint`` (strict), the F-ViT converter, and tools/test.py with the same metrics."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fvit_test_utils import REPO_ROOT, TINY_CONFIG, build_tiny_fvit, run_tool, to_pre_neck_layout

from tests.helpers import printed_metrics


@pytest.fixture
def perturbed_model(tiny_model_cfg):
    """A tiny F-ViT whose trainable weights are all off their init (a missed key cannot pass)."""
    model = build_tiny_fvit(tiny_model_cfg, seed=5)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith('backbone.clip.'):
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def test_old_layout_loads_strictly_with_load_checkpoint(perturbed_model, tiny_model_cfg, tmp_path: Path) -> None:
    from mmengine.runner import load_checkpoint

    from ovdet.models.detectors.fvit_checkpoint import detect_fvit_layout

    old = to_pre_neck_layout(perturbed_model.state_dict())
    assert any(k.startswith('backbone.adapters.0.') for k in old) and not any(k.startswith('neck.1.') for k in old)
    assert detect_fvit_layout(old) == 'ovdet_backbone_adapters'
    path = tmp_path / 'old.pth'
    torch.save({'state_dict': old, 'meta': {}}, path)
    fresh = build_tiny_fvit(tiny_model_cfg, seed=6).eval()
    load_checkpoint(fresh, str(path), map_location='cpu', strict=True)
    for k, v in perturbed_model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for a, b in zip(fresh.extract_feat(x), perturbed_model.extract_feat(x)):
            torch.testing.assert_close(a, b)


def test_old_layout_converts_with_nothing_left_over(perturbed_model) -> None:
    from ovdet.models.detectors.fvit_checkpoint import convert_fvit_state_dict

    expected = perturbed_model.state_dict()
    old = {'module.' + k: v for k, v in to_pre_neck_layout(expected).items()}
    converted, unfilled = convert_fvit_state_dict(old, perturbed_model, source='old.pth')
    assert unfilled == [] and set(converted) == set(expected)
    assert all(torch.equal(converted[k], v) for k, v in expected.items())


def test_old_layout_needs_a_pyramid_neck(perturbed_model) -> None:
    """A model without neck=[SimplePyramid, FPN] cannot take the adapters: said, naming the file."""
    from ovdet.models.detectors.fvit_checkpoint import FViTCheckpointError, convert_fvit_state_dict

    old = to_pre_neck_layout(perturbed_model.state_dict())
    perturbed_model.neck = perturbed_model.neck[1]
    with pytest.raises(FViTCheckpointError, match=r'old\.pth .*SimplePyramid'):
        convert_fvit_state_dict(old, perturbed_model, source='old.pth')


def test_test_tool_reads_an_old_layout_checkpoint(fvit_workspace: dict, fvit_trained: dict) -> None:
    from clim.engine import safe_torch_load

    root = fvit_workspace['root']
    ckpt = safe_torch_load(fvit_trained['checkpoint'], map_location='cpu')
    ckpt['state_dict'] = to_pre_neck_layout(ckpt['state_dict'])
    old = root / 'old_layout' / 'epoch_1.pth'
    old.parent.mkdir()
    torch.save(ckpt, old)
    metrics = {}
    for name, path in (('new', fvit_trained['checkpoint']), ('old', old)):
        proc = run_tool([str(REPO_ROOT / 'tools' / 'test.py'), str(TINY_CONFIG), str(path),
                         '--work-dir', str(root / f'old_layout_test_{name}')], cwd=root)
        metrics[name] = printed_metrics(proc.stdout)
    assert metrics['old'] == metrics['new'] and 'ov_coco/all_ap50' in metrics['old']
