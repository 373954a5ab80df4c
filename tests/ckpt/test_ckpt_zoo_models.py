"""Every zoo row: random weights written in the model's real on-disk layout load through the registry
and run a forward of the right shape; a missing file names its path and the download hint."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS

from ckpt_test_utils import TINY_DINOV2_KWARGS, state_bytes, write_hub_cache, write_torchscript_state

import clim  # noqa: F401  (registers CLIPModel, ZooModel)
import ovdet  # noqa: F401  (registers the backbones)
from clim.models import CLIPModel, CheckpointError
from clim.models.hub import HubCacheError, find_entry, resolve_pretrained
from clim.models.zoo import ZOO, get_entry

METACLIP_REPO = 'timm/vit_base_patch16_clip_224.metaclip_400m'


def _check_clip_interface(model: CLIPModel, cfg: dict) -> None:
    size = cfg['vision_cfg']['image_size']
    images = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert model.encode_image(images).shape == (2, cfg['embed_dim'])
        dense = model.dense_features(images)
        assert dense.shape == (2, cfg['embed_dim'], size // 16, size // 16)
        boxes = [torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 1.0, 1.0]]), torch.tensor([[0.1, 0.1, 0.9, 0.6]])]
        assert model.region_features(images, boxes).shape == (3, cfg['embed_dim'])
        assert model.encode_text(model.tokenize(['a cat', 'a dog'])).shape == (2, cfg['embed_dim'])


def _metaclip_cache(root: Path, sd: dict, cfg: dict, weights: str = 'open_clip_model.safetensors') -> Path:
    fmt = 'safetensors' if weights.endswith('.safetensors') else 'torch'
    return write_hub_cache(root, METACLIP_REPO, {
        'open_clip_config.json': dict(model_cfg=cfg, preprocess_cfg=dict(mean=[0.48145466, 0.4578275, 0.40821073],
                                                                         std=[0.26862954, 0.26130258, 0.27577711])),
        weights: state_bytes(sd, fmt),
        'config.json': dict(architecture='vit_base_patch16_clip_224', num_classes=0),
    })


# ------------------------------------------------------------------------------------------------
def test_catalog_rows_are_complete() -> None:
    assert {'openai-vit-b-16', 'metaclip-vit-b-16', 'unimed-clip-vit-b-16', 'biomedclip', 'clipseg-rd64-refined',
            'dinov2-vit-b-14', 'resnet18'} <= set(ZOO)
    for e in ZOO.values():
        assert e.download and e.kind in ('clip', 'vision', 'segmenter')
        assert e.build is not None, f'{e.name} has no loader'
        assert e.fmt in ('torchscript', 'state_dict', 'hf_hub_cache', 'torch_hub')
        if e.fmt == 'hf_hub_cache':
            assert e.path == 'models--' + e.hub_repo.replace('/', '--') and e.hub_files
    assert get_entry('metaclip_400m') is ZOO['metaclip-vit-b-16']
    assert find_entry(path='ckpt/models--timm--vit_base_patch16_clip_224.metaclip_400m/snapshots/x') \
        is ZOO['metaclip-vit-b-16']
    assert find_entry(path='ckpt/checkpoints/resnet18-f37072fd.pth') is ZOO['resnet18']
    with pytest.raises(KeyError, match='unknown zoo model'):
        get_entry('no-such-model')


def test_openai_torchscript_through_registry(ckpt_dir: Path, tiny_clip_state) -> None:
    sd, cfg = tiny_clip_state
    write_torchscript_state(sd, ckpt_dir / 'ViT-B-16.pt', extra=dict(
        input_resolution=torch.tensor(64), context_length=torch.tensor(32), vocab_size=torch.tensor(49408)))
    model = MODELS.build(dict(type='ZooModel', name='openai-vit-b-16', model_cfg=cfg)).eval()
    assert isinstance(model, CLIPModel) and model.quick_gelu and model.checkpoint_format == 'openai'
    torch.testing.assert_close(model.clip.state_dict()['visual.conv1.weight'], sd['visual.conv1.weight'])
    _check_clip_interface(model, cfg)


@pytest.mark.parametrize('weights', ['open_clip_model.safetensors', 'open_clip_pytorch_model.bin'])
def test_metaclip_hub_cache_loads(ckpt_dir: Path, tiny_clip_state, weights: str) -> None:
    sd, cfg = tiny_clip_state
    entry = _metaclip_cache(ckpt_dir, sd, cfg, weights)
    # The layout is the real one: huggingface_hub's own cache lookup finds the file.
    from huggingface_hub import try_to_load_from_cache
    found = try_to_load_from_cache(METACLIP_REPO, weights, cache_dir=str(ckpt_dir))
    assert isinstance(found, str) and Path(found).resolve() == (entry / 'snapshots').joinpath(
        os.listdir(entry / 'snapshots')[0], weights).resolve()

    for how in (dict(type='ZooModel', name='metaclip-vit-b-16', model_cfg=cfg),
                dict(type='CLIPModel', model_cfg=cfg, quick_gelu=True, pretrained=str(entry)),
                dict(type='CLIPModel', model_cfg=cfg, quick_gelu=True, pretrained=f'hf-hub:{METACLIP_REPO}'),
                dict(type='CLIPModel', model_cfg=cfg, quick_gelu=True,
                     pretrained='ckpt/models--timm--vit_base_patch16_clip_224.metaclip_400m')):
        model = MODELS.build(how).eval()
        assert isinstance(model, CLIPModel) and model.quick_gelu
        assert Path(model.pretrained).name == weights
        torch.testing.assert_close(model.clip.state_dict()['text_projection'], sd['text_projection'])
    _check_clip_interface(model, cfg)


def test_metaclip_missing_names_path_and_hint(ckpt_dir: Path, tiny_clip_cfg: dict) -> None:
    with pytest.raises(CheckpointError) as e:
        CLIPModel(model_cfg=tiny_clip_cfg, pretrained='ckpt/models--timm--vit_base_patch16_clip_224.metaclip_400m')
    msg = str(e.value)
    assert str(ckpt_dir / 'models--timm--vit_base_patch16_clip_224.metaclip_400m') in msg
    assert f'hf download {METACLIP_REPO} --cache-dir ckpt' in msg and 'ckpt/README.md' in msg
    with pytest.raises(CheckpointError, match='hf download'):
        MODELS.build(dict(type='ZooModel', name='metaclip-vit-b-16', model_cfg=tiny_clip_cfg))


def test_openai_missing_file_names_path_and_url(ckpt_dir: Path, tiny_clip_cfg: dict) -> None:
    with pytest.raises(CheckpointError) as e:
        CLIPModel(model_cfg=tiny_clip_cfg, pretrained='ckpt/ViT-B-16.pt')
    assert str(ckpt_dir / 'ViT-B-16.pt') in str(e.value)
    assert 'openaipublic.azureedge.net/clip/models/' in str(e.value)


def test_incomplete_hub_cache_is_explained(ckpt_dir: Path, tiny_clip_state) -> None:
    sd, cfg = tiny_clip_state
    entry = _metaclip_cache(ckpt_dir, sd, cfg)
    # Copied without blobs/: the snapshot links dangle.
    for blob in (entry / 'blobs').iterdir():
        blob.unlink()
    with pytest.raises(HubCacheError, match='dangling link.*blobs'):
        resolve_pretrained(str(entry))
    # refs/main names a snapshot that is not there.
    (entry / 'refs' / 'main').write_text('f' * 40)
    with pytest.raises(HubCacheError, match='refs/main points at snapshot'):
        resolve_pretrained(str(entry))


def test_plain_files_pass_through_unchanged(tmp_path: Path) -> None:
    f = tmp_path / 'w.pt'
    f.write_bytes(b'x')
    assert resolve_pretrained(str(f)) == str(f)
    assert resolve_pretrained(str(tmp_path / 'nothing.pt')) == str(tmp_path / 'nothing.pt')


# ------------------------------------------------------------------------------------------------
def test_dinov2_original_state_dict_as_backbone(ckpt_dir: Path, tiny_dinov2_state: dict) -> None:
    torch.save(tiny_dinov2_state, ckpt_dir / 'dinov2_vitb14_pretrain.pth')
    backbone = MODELS.build(dict(type='ZooModel', name='dinov2-vit-b-14', out_indices=(0, 1, 2, 3),
                                 model_kwargs=TINY_DINOV2_KWARGS))
    neck = MODELS.build(dict(type='SimplePyramid', in_channels=backbone.out_channels, norm_cfg=dict(type='BN')))
    torch.testing.assert_close(backbone.vit.state_dict()['blocks.1.attn.qkv.weight'],
                               tiny_dinov2_state['blocks.1.attn.qkv.weight'])
    assert not any(p.requires_grad for p in backbone.vit.parameters())
    backbone.init_weights()
    torch.testing.assert_close(backbone.vit.state_dict()['blocks.0.mlp.fc1.weight'],
                               tiny_dinov2_state['blocks.0.mlp.fc1.weight'])
    backbone.eval()
    with torch.no_grad():
        tokens = backbone(torch.randn(1, 3, 64, 96))
        outs = neck.eval()(tokens)
    assert [tuple(o.shape) for o in tokens] == [(1, 64, 64 // 16, 96 // 16)] * 4
    assert [tuple(o.shape) for o in outs] == [(1, 64, 64 // s, 96 // s) for s in (4, 8, 16, 32)]



def test_dinov2_patch_token_grid_runs_unresized(ckpt_dir: Path, tiny_dinov2_state: dict) -> None:
    torch.save(tiny_dinov2_state, ckpt_dir / 'dinov2_vitb14_pretrain.pth')
    backbone = MODELS.build(dict(type='ZooModel', name='dinov2-vit-b-14', out_indices=(0, 1, 2, 3),
                                 model_kwargs=TINY_DINOV2_KWARGS, token_grid='patch')).eval()
    x = torch.randn(1, 3, 56, 84)
    with torch.no_grad():
        tokens = backbone(x)
        direct = backbone.vit.forward_intermediates(x, indices=[0, 1, 2, 3], output_fmt='NCHW',
                                                    intermediates_only=True)
    assert [tuple(o.shape) for o in tokens] == [(1, 64, 56 // 14, 84 // 14)] * 4
    for a, b in zip(tokens, direct):
        torch.testing.assert_close(a, b)

def test_dinov2_wrong_file_fails_loudly(ckpt_dir: Path, tiny_dinov2_state: dict) -> None:
    sd = dict(tiny_dinov2_state)
    sd.pop('blocks.3.mlp.fc2.weight')
    torch.save(sd, ckpt_dir / 'dinov2_vitb14_pretrain.pth')
    with pytest.raises(RuntimeError, match='blocks.3.mlp.fc2.weight'):
        MODELS.build(dict(type='ZooModel', name='dinov2-vit-b-14', model_kwargs=TINY_DINOV2_KWARGS,
                          out_indices=(0, 1, 2, 3)))


def test_dinov2_missing(ckpt_dir: Path) -> None:
    with pytest.raises(CheckpointError) as e:
        MODELS.build(dict(type='ZooModel', name='dinov2-vit-b-14'))
    assert str(ckpt_dir / 'dinov2_vitb14_pretrain.pth') in str(e.value)
    assert 'dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth' in str(e.value)


def test_resnet18_torch_hub_file_as_backbone(ckpt_dir: Path) -> None:
    import torchvision

    src = torchvision.models.resnet18(weights=None)
    path = ckpt_dir / 'checkpoints' / 'resnet18-f37072fd.pth'
    path.parent.mkdir()
    torch.save(src.state_dict(), path)
    backbone = MODELS.build(dict(type='ZooModel', name='resnet18'))
    torch.testing.assert_close(backbone.layers[3][1].conv2.weight, src.layer4[1].conv2.weight)
    assert backbone.out_channels == [64, 128, 256, 512]
    backbone.train()
    assert not backbone.stem[1].training and not any(p.requires_grad for p in backbone.layers[0].parameters())
    with torch.no_grad():
        outs = backbone(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, c, 64 // s, 64 // s) for c, s in
                                              zip((64, 128, 256, 512), (4, 8, 16, 32))]
    path.unlink()
    with pytest.raises(CheckpointError, match='download.pytorch.org/models/resnet18-f37072fd.pth'):
        MODELS.build(dict(type='ZooModel', name='resnet18'))


# ------------------------------------------------------------------------------------------------
def test_metaclip_configs(repo_root: Path) -> None:
    from mmengine.config import Config

    clim_cfg = Config.fromfile(str(repo_root / 'configs/clim/clim_metaclip_vitb16_coco.py'),
                               import_custom_modules=False)
    clip = clim_cfg.model.clip
    assert (clip.type, clip.model_name, clip.quick_gelu) == ('CLIPModel', 'ViT-B-16', True)
    assert find_entry(path=clip.pretrained) is ZOO['metaclip-vit-b-16']
    assert clim_cfg.model.type == 'CLIM' and clim_cfg.model.unlocked_groups == 6  # the inherited recipe

    fvit = Config.fromfile(str(repo_root / 'configs/fvit/fvit_metaclip_vitb16_ovcoco.py'), import_custom_modules=False)
    cc = fvit.model.backbone.clip_cfg
    assert (cc.model_name, cc.quick_gelu) == ('ViT-B-16', True)
    assert find_entry(path=cc.pretrained) is ZOO['metaclip-vit-b-16']
    assert 'metaclip' in fvit.model.roi_head.bbox_head.class_embeddings
    assert fvit.model.backbone.type == 'CLIPViTBackbone' and fvit.model.backbone.out_indices == (3, 5, 7, 11)


def test_metaclip_configs_build_from_the_hub_cache(ckpt_dir: Path, tiny_clip_state, repo_root: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Both MetaCLIP configs build their model from the hub-cache folder they name (tiny architecture)."""
    import numpy as np
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    register_all_modules()  # mmdet's default scope (data preprocessors, FPN, ...)
    sd, cfg = tiny_clip_state
    _metaclip_cache(ckpt_dir, sd, cfg)
    monkeypatch.chdir(ckpt_dir.parent)  # configs say 'ckpt/models--...', relative to the working directory

    fvit = Config.fromfile(str(repo_root / 'configs/fvit/fvit_metaclip_vitb16_ovcoco.py'))
    fvit.model.backbone.clip_cfg.model_cfg = cfg
    fvit.model.backbone.out_indices = (0, 1, 2, 2)
    pyramid, fpn = fvit.model.neck
    pyramid.norm_cfg = fpn.norm_cfg = dict(type='BN')
    fvit.model.roi_head.bbox_head.norm_cfg = dict(type='BN')
    pyramid.in_channels = cfg['vision_cfg']['width']
    fpn.in_channels = [cfg['vision_cfg']['width']] * 4
    # the config's vocabulary size (all 80 COCO classes, as the reference)
    fvit.model.roi_head.bbox_head.class_embeddings = np.eye(fvit.model.roi_head.bbox_head.num_classes, cfg['embed_dim'],
                                                            dtype=np.float32)
    detector = MODELS.build(fvit.model)
    clip = detector.backbone.clip
    torch.testing.assert_close(clip.clip.state_dict()['visual.proj'], sd['visual.proj'])
    assert clip.quick_gelu and clip.pretrained.endswith('open_clip_model.safetensors')
    with torch.no_grad():
        tokens, dense = detector.backbone.forward_with_dense(torch.randn(1, 3, 64, 64))
        maps = detector.neck[0](tokens)
    assert dense.shape == (1, cfg['embed_dim'], 4, 4) and maps[0].shape == (1, 64, 16, 16)

    clim_cfg = Config.fromfile(str(repo_root / 'configs/clim/clim_metaclip_vitb16_coco.py'))
    clim_cfg.model.clip.model_cfg = cfg
    model = MODELS.build(clim_cfg.model)
    torch.testing.assert_close(model.clip.clip.state_dict()['visual.proj'], sd['visual.proj'])
    assert model.clip.clip_arch['quick_gelu'] is True


def test_readme_lists_every_row(repo_root: Path) -> None:
    readme = (repo_root / 'ckpt' / 'README.md').read_text()
    for e in ZOO.values():
        assert f'`{e.name}`' in readme and f'`{e.path}' in readme, e.name
        if e.hub_repo:
            assert f'hf download {e.hub_repo} --cache-dir ckpt' in readme, e.name
