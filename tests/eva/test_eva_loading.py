"""Loading EVA-02 CLIP files strictly: the release layout (and its wrappers), CLIPSelf training files, open_clip
hub weights; the real B/16 and L/14-336 key sets; bad files naming the offending keys."""
from __future__ import annotations

import open_clip
import pytest
import torch
from conftest import TINY, TINY_CFG
from eva_reference import release_shapes
from timm.models.eva import checkpoint_filter_fn as timm_checkpoint_filter_fn

from clim.models.checkpoint import CheckpointError
from clim.models.eva_clip import EvaCLIPModel, infer_eva_model_name
from clim.models.towers.eva import checkpoint_filter_fn, timm_to_eva_name

NATIVE = TINY['patch'] * TINY['grid']


def _visual(state: dict) -> dict:
    return {k[len('visual.'):]: v for k, v in state.items() if k.startswith('visual.')}


def test_converter_equals_timm_upstream_filter(tiny_release_state):
    model = EvaCLIPModel(model_cfg=TINY_CFG)
    ours = checkpoint_filter_fn(_visual(tiny_release_state))
    upstream = timm_checkpoint_filter_fn(tiny_release_state, model.visual.trunk)  # picks the visual. prefix
    assert sorted(ours) == sorted(upstream) == sorted(model.visual.trunk.state_dict())
    assert all(ours[k] is upstream[k] for k in ours)
    assert {'visual.' + timm_to_eva_name(k) for k in ours} == {
        k for k in tiny_release_state if k.startswith('visual.') and '.rope.' not in k and 'visual.rope.' not in k}


@pytest.mark.parametrize('name, arch', [
    ('EVA02-B-16', dict(width=768, depth=12, patch=16, grid=14, embed=512, text_width=512, hidden=2048)),
    ('EVA02-L-14-336', dict(width=1024, depth=24, patch=14, grid=24, embed=768, text_width=768, hidden=2730)),
])
def test_real_architecture_key_set_converts_with_nothing_left_over(name, arch):
    """The spec's key list of the release file fits the real upstream architecture exactly (built on the
    meta device: shapes only, nothing runs)."""
    hidden = arch.pop('hidden')
    shapes = release_shapes(**arch, text_layers=12, context=77, vocab=49408)
    state = {k: torch.empty(s, device='meta') for k, s in shapes.items()}
    assert infer_eva_model_name(state) == name
    with torch.device('meta'):
        model = EvaCLIPModel(pretrained=None, model_name=name)
        model.load_eva_state(state, f'{name}.pt')  # strict: raises on any leftover / missing / shape
        upstream = open_clip.create_model(name, pretrained=None, device='meta')
    # Our in-memory layout is open_clip's own EVA model's: its hub weights load unchanged, exports load there.
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: v.shape for k, v in upstream.state_dict().items()}
    tower = model.image_tower
    assert (tower.width, tower.num_blocks, tower.patch_size, tower.embed_dim, tower.native_grid) == (
        arch['width'], arch['depth'], arch['patch'], arch['embed'], (arch['grid'], arch['grid']))
    assert model.visual.trunk.blocks[0].mlp.fc1_g.out_features == hidden
    assert model.visual.trunk.blocks[0].attn.head_dim == 64


def _encode(model: EvaCLIPModel, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.encode_image(images, normalize=False)


def test_wrapped_training_and_hub_files_load_the_same_weights(tmp_path, tiny_release_state, tiny_release_file):
    images = torch.randn(1, 3, NATIVE, NATIVE)
    base = EvaCLIPModel(model_cfg=TINY_CFG, pretrained=tiny_release_file).eval()
    expected = _encode(base, images)
    assert base.logit_scale.item() == pytest.approx(tiny_release_state['logit_scale'].item())
    random = EvaCLIPModel(model_cfg=TINY_CFG).eval()
    assert not torch.allclose(_encode(random, images), expected)

    text_logit = dict(tiny_release_state)
    text_logit['text.logit_scale'] = text_logit.pop('logit_scale').reshape(1)  # eva_clip/factory.py renames it
    variants = {
        # CLIPSelf's training file: DDP-prefixed state_dict beside optimizer and scaler state.
        'clipself.pt': dict(epoch=6, name='eva_vitb16_coco_clipself_proposals',
                            state_dict={'module.' + k: v for k, v in tiny_release_state.items()},
                            optimizer=dict(state={}, param_groups=[dict(lr=1e-5, params=[0])]),
                            scaler=dict(scale=65536.0, growth_factor=2.0)),
        'model_wrapped.pt': dict(model=tiny_release_state),
        'text_logit_scale.pt': text_logit,
        # open_clip hub layout (visual.trunk.* timm names), stored fp16 as the hub files are.
        'open_clip_hub.pt': {k: v.half() for k, v in base.state_dict().items()},
    }
    for fname, obj in variants.items():
        torch.save(obj, tmp_path / fname)
        model = EvaCLIPModel(model_cfg=TINY_CFG, pretrained=tmp_path / fname).eval()
        tol = 2e-2 if 'hub' in fname else 0
        torch.testing.assert_close(_encode(model, images), expected, rtol=tol, atol=tol, msg=fname)
        assert model.logit_scale.item() == pytest.approx(base.logit_scale.item(), rel=1e-3), fname
    # Without a config the architecture comes from the file's shapes: the tiny one is no known EVA.
    with pytest.raises(CheckpointError, match='no known EVA-02 CLIP'):
        EvaCLIPModel(pretrained=tiny_release_file)


def test_text_embedding_equals_open_clip_text_tower(tiny_release_file, tiny_release_state):
    """The release text.* keys are OpenAI-CLIP text weights: our text tower equals open_clip's plain CLIP
    text path loaded from the same tensors."""
    model = EvaCLIPModel(model_cfg=TINY_CFG, pretrained=tiny_release_file).eval()
    clip = open_clip.CLIP(embed_dim=TINY['embed'], text_cfg=TINY_CFG['text_cfg'],
                          vision_cfg=dict(image_size=32, layers=1, width=64, patch_size=16)).eval()
    text = {k[len('text.'):]: v for k, v in tiny_release_state.items() if k.startswith('text.')}
    missing, unexpected = clip.load_state_dict(text, strict=False)
    assert not unexpected and not [k for k in missing if not k.startswith(('visual.', 'logit_'))]
    tokens = torch.randint(1, TINY['vocab'] - 1, (3, TINY['context']))
    tokens[:, 7] = TINY['vocab'] - 1                                          # EOT = argmax id
    with torch.no_grad():
        torch.testing.assert_close(model.encode_text(tokens), clip.encode_text(tokens, normalize=True),
                                   rtol=1e-5, atol=1e-6)
    assert model.tokenize(['a photo of a cat']).shape == (1, TINY['context'])


@pytest.mark.parametrize('damage, named', [
    (lambda sd: sd.pop('visual.blocks.1.mlp.w3.bias'), 'visual.blocks.1.mlp.w3.bias'),
    (lambda sd: sd.pop('text.transformer.resblocks.0.attn.in_proj_bias'),
     'text.transformer.resblocks.0.attn.in_proj_bias'),
    (lambda sd: sd.__setitem__('visual.blocks.0.attn.k_bias', torch.zeros(TINY['width'])),
     'visual.blocks.0.attn.k_bias'),
    (lambda sd: sd.__setitem__('visual.pos_embed', torch.zeros(1, 50, TINY['width'])), 'visual.pos_embed: file'),
], ids=['missing-visual', 'missing-text', 'unexpected', 'shape'])
def test_bad_file_names_the_key(tmp_path, tiny_release_state, damage, named):
    sd = dict(tiny_release_state)
    damage(sd)
    path = tmp_path / 'bad.pt'
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        EvaCLIPModel(model_cfg=TINY_CFG, pretrained=path)
    assert named in str(err.value) and str(path) in str(err.value)


def test_not_an_eva_file_is_refused(tmp_path):
    path = tmp_path / 'ViT-B-16.pt'
    torch.save(open_clip.CLIP(embed_dim=32, text_cfg=TINY_CFG['text_cfg'],
                              vision_cfg=dict(image_size=32, layers=1, width=64, patch_size=16)).state_dict(), path)
    with pytest.raises(CheckpointError, match='not an EVA-CLIP state dict'):
        EvaCLIPModel(model_cfg=TINY_CFG, pretrained=path)
    with pytest.raises(CheckpointError, match='not found'):
        EvaCLIPModel(model_cfg=TINY_CFG, pretrained=tmp_path / 'missing.pt')

