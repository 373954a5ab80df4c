"""Reference checkpoints load: CLIM's FVLM detector layout converts strictly, and bad input fails clearly.

The reference layout is built here from the spec (../shared/spec/detectors.md: ``backbone.visual.*``,
``backbone.interpolate1/2.*``, ``bbox_head.fc_cls``, ``bbox_head.cls_temp``, ``bbox_head.bg_embedding``
with bias; mmdet's own FPN / RPN / box-head keys) from a random tiny F-ViT, then converted back.
"""
from __future__ import annotations

import pytest
import torch
from fvit_test_utils import to_pre_neck_layout

from tests.helpers import load_tool


def _build(cfg):
    from mmdet.registry import MODELS
    from mmengine.model.utils import revert_sync_batchnorm

    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    return model


def _reference_layout(model, bare_stride8: bool) -> dict[str, torch.Tensor]:
    """Our F-ViT's weights renamed the way CLIM's FVLM stores them (no text tower)."""
    visual = 'backbone.clip.clip.visual.'
    ref = {}
    # Ours before the adapters moved into the neck: backbone.adapters.*, the FPN under neck.*.
    for k, v in to_pre_neck_layout(model.state_dict()).items():
        v = v.clone()
        if k.startswith(visual):
            ref['backbone.visual.' + k[len(visual):]] = v
        elif k.startswith('backbone.clip.'):
            continue  # the reference detector does not store CLIP's text tower
        elif k.startswith('backbone.adapters.0.'):
            ref['backbone.interpolate1.' + k[len('backbone.adapters.0.'):]] = v
        elif k.startswith('backbone.adapters.1.'):
            tail = k[len('backbone.adapters.1.'):]
            ref['backbone.interpolate2.' + (tail if bare_stride8 else '0.' + tail)] = v
        elif k == 'roi_head.bbox_head.fc_cls.proj.weight':
            ref['roi_head.bbox_head.fc_cls.weight'] = v
        elif k == 'roi_head.bbox_head.fc_cls.proj.bias':
            ref['roi_head.bbox_head.fc_cls.bias'] = v
        elif k == 'roi_head.bbox_head.fc_cls.temperature':
            ref['roi_head.bbox_head.cls_temp'] = v.reshape(1)
        elif k.startswith('roi_head.bbox_head.fc_cls.background.'):
            ref['roi_head.bbox_head.bg_embedding.' + k.rsplit('.', 1)[1]] = v
        else:
            ref[k] = v
    return ref


@pytest.fixture
def reference_checkpoint(tiny_model_cfg, tmp_path):
    """A random tiny F-ViT and its weights saved in the reference layout (as an mmengine checkpoint)."""
    torch.manual_seed(3)
    model = _build(tiny_model_cfg)
    # Perturb every trainable tensor so a missed key (left at its init) cannot pass the comparison.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith('backbone.clip.'):
                p.add_(torch.randn_like(p) * 0.1)
        model.roi_head.bbox_head.fc_cls.temperature.fill_(37.0)
    cfg_file = tmp_path / 'fvit_tiny_shapes.py'
    tiny_model_cfg.dump(str(cfg_file))
    return model, cfg_file, tmp_path


@pytest.mark.parametrize('bare_stride8', [True, False])
def test_reference_layout_converts_with_no_key_left_over(reference_checkpoint, bare_stride8: bool) -> None:
    convert_checkpoint = load_tool('convert_checkpoint')

    from clim.engine.checkpoint_safety import safe_torch_load

    model, cfg_file, tmp = reference_checkpoint
    ref = _reference_layout(model, bare_stride8)
    assert any(k.startswith('backbone.interpolate2.0.') for k in ref) != bare_stride8
    src = tmp / 'clim_fvlm.pth'
    torch.save({'state_dict': {'module.' + k: v for k, v in ref.items()}, 'meta': {'epoch': 3}}, src)
    out = tmp / 'converted.pth'
    assert convert_checkpoint.main([str(cfg_file), str(src), str(out)]) == 0
    converted = safe_torch_load(str(out))['state_dict']
    expected = model.state_dict()
    assert set(converted) == set(expected)
    for k, v in expected.items():
        assert torch.equal(converted[k], v), k
    # And the detector loads it strictly and computes the original's outputs.
    from mmengine.config import Config

    again = _build(Config.fromfile(str(cfg_file)))
    again.load_state_dict(converted, strict=True)
    x = torch.randn(1, 3, 64, 96)
    again.eval(), model.eval()
    with torch.no_grad():
        for a, b in zip(again.extract_feat(x), model.extract_feat(x)):
            torch.testing.assert_close(a, b)


def test_unexpected_and_missing_keys_are_named(reference_checkpoint, capsys) -> None:
    convert_checkpoint = load_tool('convert_checkpoint')

    model, cfg_file, tmp = reference_checkpoint
    ref = _reference_layout(model, bare_stride8=True)
    ref['roi_head.bbox_head.text_proj.weight'] = torch.zeros(2, 2)
    bad = tmp / 'bad.pth'
    torch.save({'state_dict': ref}, bad)
    assert convert_checkpoint.main([str(cfg_file), str(bad), str(tmp / 'x.pth')]) == 2
    err = capsys.readouterr().err
    assert 'unexpected keys (1): roi_head.bbox_head.text_proj.weight' in err and str(bad) in err

    ref = _reference_layout(model, bare_stride8=True)
    del ref['backbone.interpolate2.weight']
    torch.save({'state_dict': ref}, bad)
    assert convert_checkpoint.main([str(cfg_file), str(bad), str(tmp / 'x.pth')]) == 2
    err = capsys.readouterr().err
    assert 'missing' in err and 'neck.0.adapters.1.weight' in err
    assert not (tmp / 'x.pth').exists()

    ref = _reference_layout(model, bare_stride8=True)
    ref['roi_head.bbox_head.fc_cls.weight'] = torch.zeros(3, 3)
    torch.save({'state_dict': ref}, bad)
    assert convert_checkpoint.main([str(cfg_file), str(bad), str(tmp / 'x.pth')]) == 2
    assert 'shape mismatches (1): roi_head.bbox_head.fc_cls.proj.weight' in capsys.readouterr().err


def test_refined_clip_training_checkpoint_with_module_prefix_loads(tmp_path, tiny_clip_cfg) -> None:
    """CLIM's refined CLIPs are open_clip training checkpoints: {'epoch', 'name', 'state_dict' with
    'module.' keys, 'optimizer'}; they load into CLIPModel with every weight in place."""
    import open_clip

    from clim.models import CLIPModel

    torch.manual_seed(0)
    src = open_clip.CLIP(**tiny_clip_cfg)
    opt = torch.optim.AdamW(src.parameters())
    path = tmp_path / 'epoch_6.pt'
    torch.save({'epoch': 6, 'name': 'clim_coco', 'optimizer': opt.state_dict(),
                'state_dict': {'module.' + k: v for k, v in src.state_dict().items()}}, path)
    model = CLIPModel(model_cfg=tiny_clip_cfg, pretrained=str(path), quick_gelu=False)
    for k, v in src.state_dict().items():
        assert torch.equal(model.clip.state_dict()[k], v), k
