"""Loading CLIP weights in every on-disk format, activation detection, clear errors, export round trip."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from clim.models import CheckpointError, CLIPModel, load_clip_state, save_clip_checkpoint
from clim.models.checkpoint import infer_model_cfg

from clip_test_utils import fp16_rounded, write_openai_archive


def _features(model: CLIPModel, size: int = 64, batch: int = 2,
              dense: bool = True) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    images = torch.randn(batch, 3, size, size, generator=g)
    with torch.no_grad():
        text = model.tokenize(['a photo of a dog', 'a red car'])
        out = (model.encode_image(images), model.encode_text(text))
        return out + (model.dense_features(images),) if dense else out


def _assert_same(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> None:
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=0, rtol=0)


# ----------------------------------------------------------------------------------------------
# tiny model: every format
# ----------------------------------------------------------------------------------------------
def test_formats_detected(tiny_checkpoints: dict) -> None:
    sd, info = load_clip_state(tiny_checkpoints['openai'])
    assert info['format'] == 'openai' and info['quick_gelu'] is True
    assert 'input_resolution' not in sd and 'attn_mask' not in sd
    assert set(sd) == set(tiny_checkpoints['state_dict'])
    sd, info = load_clip_state(tiny_checkpoints['open_clip'])
    assert info['format'] == 'open_clip' and info['quick_gelu'] is None
    sd2, info = load_clip_state(tiny_checkpoints['open_clip_wrapped'])
    assert set(sd2) == set(sd) and info['format'] == 'open_clip'
    sd, info = load_clip_state(tiny_checkpoints['clim'])
    assert info['format'] == 'clim' and info['quick_gelu'] is True and info['meta']['note'] == 'test'
    # Exports are weights-only loadable and hold plain types only.
    obj = torch.load(tiny_checkpoints['clim'], weights_only=True)
    assert set(obj) == {'state_dict', 'clip_arch', 'meta'}


def test_all_formats_load_to_identical_outputs(tiny_checkpoints: dict) -> None:
    cfg = tiny_checkpoints['cfg']
    qcfg = dict(copy.deepcopy(cfg), quick_gelu=True)
    openai = CLIPModel(model_cfg=cfg, pretrained=str(tiny_checkpoints['openai'])).eval()
    assert openai.quick_gelu is True  # detected from the archive although the config says GELU
    ref = _features(openai)
    for key in ('open_clip', 'open_clip_wrapped'):
        m = CLIPModel(model_cfg=qcfg, pretrained=str(tiny_checkpoints[key])).eval()
        _assert_same(_features(m), ref)
    # A CLIM export carries its architecture: no model_cfg needed.
    clim = CLIPModel(pretrained=str(tiny_checkpoints['clim'])).eval()
    assert clim.quick_gelu is True and clim.checkpoint_format == 'clim'
    _assert_same(_features(clim), ref)
    # Plain GELU on QuickGELU weights gives different features.
    gelu = CLIPModel(model_cfg=cfg, pretrained=str(tiny_checkpoints['openai']), quick_gelu=False).eval()
    assert (_features(gelu)[0] - ref[0]).abs().max() > 1e-4


def test_export_round_trip_keeps_arch(tmp_path: Path, tiny_checkpoints: dict) -> None:
    m = CLIPModel(pretrained=str(tiny_checkpoints['openai']), model_cfg=tiny_checkpoints['cfg'])
    out = save_clip_checkpoint(tmp_path / 'sub' / 'export.pt', m, m.clip_arch, dict(epoch=2, tags=['a', 'b']))
    assert not list(out.parent.glob('.*tmp*'))  # temporary file replaced
    back = CLIPModel(pretrained=str(out)).eval()
    assert back.quick_gelu is True and back.checkpoint_meta == dict(epoch=2, tags=['a', 'b'])
    _assert_same(_features(back), _features(m.eval()))
    with pytest.raises(ValueError, match='quick_gelu'):
        save_clip_checkpoint(tmp_path / 'x.pt', m, dict(model_name='ViT-B-16'), {})


def test_missing_file_error_names_path(tmp_path: Path) -> None:
    missing = tmp_path / 'nope' / 'ViT-B-16.pt'
    with pytest.raises(CheckpointError) as e:
        CLIPModel(model_name='ViT-B-16', pretrained=str(missing))
    assert str(missing) in str(e.value) and 'ckpt/README.md' in str(e.value)


@pytest.mark.parametrize('fmt', ['openai', 'open_clip', 'clim'])
def test_truncated_file_error(tmp_path: Path, tiny_checkpoints: dict, fmt: str) -> None:
    data = Path(tiny_checkpoints[fmt]).read_bytes()
    bad = tmp_path / f'truncated_{fmt}.pt'
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as e:
        load_clip_state(bad)
    msg = str(e.value)
    assert str(bad) in msg and 'ckpt/README.md' in msg and 'truncated' in msg


def test_not_a_state_dict(tmp_path: Path) -> None:
    p = tmp_path / 'list.pt'
    torch.save([1, 2, 3], p)
    with pytest.raises(CheckpointError, match='list.pt'):
        load_clip_state(p)


def test_mismatched_keys_are_listed(tmp_path: Path, tiny_checkpoints: dict) -> None:
    sd = dict(tiny_checkpoints['state_dict'])
    del sd['visual.ln_post.weight']
    sd['visual.extra_head.weight'] = torch.zeros(3)
    sd['visual.proj'] = torch.zeros(5, 5)
    p = tmp_path / 'bad.pt'
    torch.save(sd, p)
    with pytest.raises(CheckpointError) as e:
        CLIPModel(model_cfg=tiny_checkpoints['cfg'], pretrained=str(p))
    msg = str(e.value)
    assert str(p) in msg
    assert 'missing keys (1): visual.ln_post.weight' in msg
    assert 'unexpected keys (1): visual.extra_head.weight' in msg
    assert 'visual.proj: file (5, 5) vs model (64, 32)' in msg
    # A different depth: the extra block's keys are unexpected.
    shallow = copy.deepcopy(tiny_checkpoints['cfg'])
    shallow['vision_cfg']['layers'] = 2
    with pytest.raises(CheckpointError, match=r'unexpected keys \(12\): visual\.transformer\.resblocks\.2\.'):
        CLIPModel(model_cfg=shallow, pretrained=str(tiny_checkpoints['open_clip']))


def test_infer_arch_from_openai_file(tiny_checkpoints: dict) -> None:
    sd, _ = load_clip_state(tiny_checkpoints['openai'])
    cfg = infer_model_cfg(sd)
    assert cfg['vision_cfg']['layers'] == 3 and cfg['vision_cfg']['patch_size'] == 16
    assert cfg['text_cfg']['context_length'] == 32 and cfg['embed_dim'] == 32


def test_registry_build(tiny_clip_cfg: dict) -> None:
    from mmdet.registry import MODELS
    m = MODELS.build(dict(type='CLIPModel', model_name=None, model_cfg=tiny_clip_cfg, pretrained=None))
    assert isinstance(m, CLIPModel) and m.embed_dim == 32 and m.stride == 16


# ----------------------------------------------------------------------------------------------
# ViT-B/16 (random weights) in OpenAI and open_clip form
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def vitb16_files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    torch.manual_seed(0)
    src = CLIPModel(model_name='ViT-B-16', quick_gelu=True)
    sd = fp16_rounded(src.clip.state_dict())
    del src
    root = tmp_path_factory.mktemp('vitb16')
    openai = write_openai_archive(sd, root / 'ViT-B-16.pt', 224, 77, 49408)
    torch.save(sd, root / 'ViT-B-16-open_clip.pt')
    return dict(openai=openai, open_clip=root / 'ViT-B-16-open_clip.pt')


def test_vitb16_openai_archive_and_open_clip_state_dict(vitb16_files: dict) -> None:
    a = CLIPModel(model_name='ViT-B-16', pretrained=str(vitb16_files['openai'])).eval()
    assert a.quick_gelu is True and a.checkpoint_format == 'openai'
    ref = _features(a, 224, 1, False)
    del a
    b = CLIPModel(model_name='ViT-B-16-quickgelu', pretrained=str(vitb16_files['open_clip'])).eval()
    _assert_same(_features(b, 224, 1, False), ref)
    del b
    # The same archive with plain GELU (what loading it into the 'ViT-B-16' config silently does).
    c = CLIPModel(model_name='ViT-B-16', pretrained=str(vitb16_files['openai']), quick_gelu=False).eval()
    assert c.quick_gelu is False
    wrong = _features(c, 224, 1, False)
    assert (wrong[0] - ref[0]).abs().max() > 1e-3  # image features
    assert (wrong[1] - ref[1]).abs().max() > 1e-3  # text features


def test_vitb16_truncated_archive(tmp_path: Path, vitb16_files: dict) -> None:
    bad = tmp_path / 'ViT-B-16.pt'
    with open(vitb16_files['openai'], 'rb') as f:
        bad.write_bytes(f.read(50_000_000))
    with pytest.raises(CheckpointError) as e:
        CLIPModel(model_name='ViT-B-16', pretrained=str(bad))
    assert str(bad) in str(e.value) and 'ckpt/README.md' in str(e.value)


def test_safetensors_state_dict(tmp_path: Path, tiny_checkpoints: dict) -> None:
    from safetensors.torch import save_file
    p = tmp_path / 'open_clip_model.safetensors'
    save_file({k: v.contiguous() for k, v in tiny_checkpoints['state_dict'].items()}, str(p))
    sd, info = load_clip_state(p)
    assert info['format'] == 'open_clip' and info['quick_gelu'] is None
    assert all(torch.equal(sd[k], v) for k, v in tiny_checkpoints['state_dict'].items())
