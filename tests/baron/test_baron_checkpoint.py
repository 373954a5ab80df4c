"""tools/convert_checkpoint.py on BARON-KD: random-weight files in the reference's released layout and in
SoCo's layout become checkpoints of ours (strictly: every key named when something does not fit), and
tools/test.py scores a converted one on the tiny config."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from baron_test_utils import REPO_ROOT, TINY_CONFIG, run_tool
from tests.helpers import printed_metrics


def _reference_name(ours: str) -> str | None:
    """Our key -> the reference's (wusize/ovdet ``OVDTwoStageDetector``, mmdet 3 naming), by hand; None for
    what the reference does not store (queues, the boxes cache, CLIP's logit scale)."""
    if ours.startswith(('bag_loss.', 'single_loss.', 'boxes_cache.')) or ours == 'teacher.clip.logit_scale':
        return None
    for mine, ref in (('roi_head.bbox_head.fc_cls.proj.', 'roi_head.bbox_head.fc_cls.'),
                      ('roi_head.bbox_head.fc_cls.background.', 'roi_head.bbox_head.bg_embedding.'),
                      ('teacher.clip.visual.', 'roi_head.clip.image_encoder.'),
                      ('teacher.clip.', 'roi_head.clip.text_encoder.'),
                      ('positional.net.', 'roi_head.baron_kd.positional_embed.pos_proj.')):
        if ours.startswith(mine):
            return ref + ours[len(mine):]
    return ours


@pytest.fixture(scope='module')
def source_model(baron_workspace):
    """A tiny BARON-KD with random weights everywhere (the 'trained' detector the files are made of)."""
    import os

    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import clim  # noqa: F401
    import ovdet  # noqa: F401

    init_default_scope('mmdet')
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.model.teacher.pretrained = str(baron_workspace['clip_ckpt'])
    cfg.model.roi_head.bbox_head.class_embeddings = str(baron_workspace['attn12'])
    old = os.getcwd()
    os.chdir(baron_workspace['root'])
    try:
        torch.manual_seed(1)
        model = MODELS.build(cfg.model)
        model.init_weights()
    finally:
        os.chdir(old)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith('teacher.'):
                p.add_(torch.randn_like(p) * 0.01)
    return model


def _reference_file(model, path: Path, emb: Path, edit=None) -> Path:
    import numpy as np

    state = {}
    for k, v in model.state_dict().items():
        ref = _reference_name(k)
        if ref is not None:
            state[ref] = v.clone()
    state['roi_head.bbox_head.cls_embeddings'] = torch.from_numpy(np.load(emb)).float()
    for key in ('rpn_head.rpn_cls.0.weight', 'rpn_head.rpn_cls.2.bias', 'roi_head.bbox_head.fc_cls.weight',
                'roi_head.bbox_head.bg_embedding.weight', 'roi_head.bbox_head.fc_reg.2.weight',
                'roi_head.bbox_head.shared_convs.3.bn.running_var', 'roi_head.clip.image_encoder.conv1.weight',
                'roi_head.clip.text_encoder.token_embedding.weight',
                'roi_head.clip.text_encoder.transformer.resblocks.0.attn.in_proj_weight',
                'roi_head.baron_kd.positional_embed.pos_proj.1.weight', 'neck.lateral_convs.0.bn.weight'):
        assert key in state, key  # the reference names the layout is assumed to have
    if edit is not None:
        edit(state)
    torch.save({'state_dict': state, 'meta': {'iter': 90000}}, path)
    return path


def _convert(ws: dict, src: Path, out: Path, capsys, monkeypatch):
    """tools/convert_checkpoint.py's ``main`` in this process: (exit status, stdout, stderr)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location('convert_checkpoint_tool',
                                                  REPO_ROOT / 'tools' / 'convert_checkpoint.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.chdir(ws['root'])
    capsys.readouterr()
    code = tool.main([str(TINY_CONFIG), str(src), str(out), '--cfg-options',
                      f'model.teacher.pretrained={ws["clip_ckpt"]}',
                      f'model.roi_head.bbox_head.class_embeddings={ws["attn12"]}'])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_reference_checkpoint_converts_exactly_and_scores(baron_workspace, source_model, tmp_path, capsys,
                                                          monkeypatch) -> None:
    from clim.engine import safe_torch_load

    src = _reference_file(source_model, tmp_path / 'baron_ref.pth', baron_workspace['attn12'])
    out = tmp_path / 'converted.pth'
    code, stdout, stderr = _convert(baron_workspace, src, out, capsys, monkeypatch)
    assert code == 0, stderr[-3000:]
    assert 'baron_reference layout' in stdout
    got = safe_torch_load(out, map_location='cpu')
    assert got['meta']['converted_from']['layout'] == 'baron_reference'
    expected = source_model.state_dict()
    assert set(got['state_dict']) == set(expected)
    for k, v in expected.items():
        if k.startswith(('bag_loss.', 'single_loss.')):
            assert int(got['state_dict'][k.rsplit('.', 1)[0] + '.count']) == 0  # queues start empty
        elif k != 'boxes_cache._extra_state':
            assert torch.equal(got['state_dict'][k], v), k
    proc = run_tool([str(REPO_ROOT / 'tools' / 'test.py'), str(TINY_CONFIG), str(out), '--cfg-options',
                     f'model.teacher.pretrained={baron_workspace["clip_ckpt"]}',
                     f'model.roi_head.bbox_head.class_embeddings={baron_workspace["attn12"]}'],
                    cwd=baron_workspace['root'])
    metrics = printed_metrics(proc.stdout)
    assert any(k.endswith('novel_ap50') for k in metrics), metrics


@pytest.mark.parametrize('edit,named', [
    (lambda s: s.__setitem__('roi_head.baron_kd.extra.weight', torch.zeros(1)), 'roi_head.baron_kd.extra.weight'),
    (lambda s: s.pop('rpn_head.rpn_cls.0.weight'), 'rpn_head.rpn_cls.0.weight'),
    (lambda s: s.__setitem__('roi_head.bbox_head.fc_cls.weight', torch.zeros(3, 3)), 'fc_cls.proj.weight'),
    (lambda s: s.__setitem__('roi_head.bbox_head.cls_embeddings', torch.zeros(10, 64)), 'class embeddings'),
])
def test_reference_checkpoint_that_does_not_fit_is_refused_by_name(baron_workspace, source_model, tmp_path,
                                                                   capsys, monkeypatch, edit, named) -> None:
    src = _reference_file(source_model, tmp_path / 'bad.pth', baron_workspace['attn12'], edit)
    out = tmp_path / 'never.pth'
    code, _, stderr = _convert(baron_workspace, src, out, capsys, monkeypatch)
    assert code == 2 and named in stderr and str(src) in stderr, stderr[-2000:]
    assert not out.exists() and not list(tmp_path.glob('never*'))  # nothing half-written


def test_soco_checkpoint_fills_backbone_neck_and_head_convs(baron_workspace, source_model, tmp_path, capsys,
                                                            monkeypatch) -> None:
    from clim.engine import safe_torch_load
    from ovdet.models.baron import SOCO_PREFIXES

    soco = {k: v.clone() for k, v in source_model.state_dict().items()
            if k.startswith(SOCO_PREFIXES) and not k.endswith('num_batches_tracked')}
    src = tmp_path / 'soco.pth'
    torch.save({'state_dict': soco}, src)
    out = tmp_path / 'soco_converted.pth'
    code, stdout, stderr = _convert(baron_workspace, src, out, capsys, monkeypatch)
    assert code == 0 and 'soco layout' in stdout, stderr[-3000:]
    got = safe_torch_load(out, map_location='cpu')['state_dict']
    assert set(got) == set(source_model.state_dict())
    for k, v in soco.items():
        assert torch.equal(got[k], v), k
    # the rest is the config's init: the RPN is not the source model's
    assert not torch.equal(got['rpn_head.rpn_conv.weight'], source_model.state_dict()['rpn_head.rpn_conv.weight'])
    # a SoCo file with a key of no such layer is refused by name
    soco['neck.fpn_convs.9.conv.weight'] = torch.zeros(1)
    torch.save({'state_dict': soco}, src)
    code, _, stderr = _convert(baron_workspace, src, tmp_path / 'x.pth', capsys, monkeypatch)
    assert code == 2 and 'neck.fpn_convs.9.conv.weight' in stderr, stderr[-2000:]
