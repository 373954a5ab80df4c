"""The CLIP factory on EVA-02: which class a config / file builds (release, hub cache, zoo name, CLIM export
behind a CLIPModel config), the real B/16 and L/14-336 by name, strict loading through the factory, and the
text side (prompt ensembles, trimmed and pseudo-word encodes) on the EVA text tower."""
from __future__ import annotations

from pathlib import Path

import open_clip
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, TINY_CFG
from mmdet.registry import MODELS

import clim  # noqa: F401  (registers the models)
from clim.models import CLIPModel, build_clip, save_clip_checkpoint
from clim.models.checkpoint import CheckpointError
from clim.models.eva_clip import EvaCLIPModel
from clim.models.templates import get_templates

NATIVE = TINY['patch'] * TINY['grid']
HUB_B16 = 'timm/eva02_base_patch16_clip_224.merged2b_s8b_b131k'


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _hub_cache(root: Path, repo: str, state: dict) -> Path:
    """A Hugging Face hub cache entry (refs/main + snapshots/<hash>/open_clip_model.safetensors)."""
    from safetensors.torch import save_file

    entry = root / ('models--' + repo.replace('/', '--'))
    snap = entry / 'snapshots' / ('a' * 40)
    snap.mkdir(parents=True)
    (entry / 'refs').mkdir()
    (entry / 'refs' / 'main').write_text('a' * 40)
    save_file({k: v.contiguous() for k, v in state.items()}, snap / 'open_clip_model.safetensors')
    return entry


@pytest.mark.parametrize('how', ['CLIP', 'CLIPModel', 'ZooModel-no-name', 'EvaCLIPModel'])
def test_factory_picks_eva_from_the_release_file(tiny_release_file, how):
    """Whatever the config's type, the release file decides: an EVA-02 CLIP with the file's weights."""
    cfg = dict(model_cfg=TINY_CFG, pretrained=str(tiny_release_file))
    built = MODELS.build(dict(cfg, type='ZooModel')) if how == 'ZooModel-no-name' else \
        build_clip(dict(cfg, type=how))
    assert type(built) is EvaCLIPModel
    assert _same_weights(built, EvaCLIPModel(model_cfg=TINY_CFG, pretrained=tiny_release_file))


@pytest.mark.parametrize('name, depth, width', [('EVA02-B-16', 12, 768), ('EVA02-L-14-336', 24, 1024)])
def test_factory_builds_the_real_eva_by_name(name, depth, width):
    with torch.device('meta'):
        model = MODELS.build(dict(type='CLIP', model_name=name))
    assert type(model) is EvaCLIPModel and model.num_blocks == depth and model.vision_width == width
    assert model.stride == (16 if 'B' in name else 14)


def test_open_clip_configs_still_build_clipmodel():
    model = build_clip(dict(type='CLIP', model_cfg=dict(
        embed_dim=32, vision_cfg=dict(image_size=32, layers=1, width=64, patch_size=16),
        text_cfg=dict(context_length=16, vocab_size=100, width=64, heads=1, layers=1))))
    assert type(model) is CLIPModel


def test_factory_reads_hub_cache_and_zoo_name(tmp_path, monkeypatch, tiny_release_file):
    """open_clip's hub layout (visual.trunk.*, fp16) by hf-hub id, and the release file by zoo name."""
    base = EvaCLIPModel(model_cfg=TINY_CFG, pretrained=tiny_release_file)
    monkeypatch.setenv('CLIM_CKPT_DIR', str(tmp_path))
    _hub_cache(tmp_path, HUB_B16, {k: v.half() for k, v in base.state_dict().items()})
    hub = build_clip(dict(type='CLIP', model_cfg=TINY_CFG, pretrained=f'hf-hub:{HUB_B16}'))
    assert type(hub) is EvaCLIPModel
    torch.testing.assert_close(hub.state_dict()['visual.trunk.pos_embed'],
                               base.state_dict()['visual.trunk.pos_embed'].half().float())
    (tmp_path / 'EVA02_CLIP_B_psz16_s8B.pt').write_bytes(Path(tiny_release_file).read_bytes())
    zoo = MODELS.build(dict(type='ZooModel', name='eva02-clip-b-16', model_cfg=TINY_CFG))
    assert type(zoo) is EvaCLIPModel and _same_weights(zoo, base)
    with pytest.raises(CheckpointError, match='eva02-clip-l-14-336.*QuanSun/EVA-CLIP'):
        MODELS.build(dict(type='ZooModel', name='eva02-clip-l-14-336'))


def test_export_behind_a_clipmodel_config_rebuilds_eva(tmp_path, tiny_release_file):
    """A CLIM export of an EVA CLIP records its class: an F-ViT-style CLIPModel config (model_name ViT-B-16,
    QuickGELU) pointed at it builds the EVA model with the exported weights."""
    model = EvaCLIPModel(model_cfg=TINY_CFG, pretrained=tiny_release_file)
    with torch.no_grad():
        model.visual.trunk.blocks[1].mlp.fc2.weight.mul_(0.5)  # "trained"
    export = save_clip_checkpoint(tmp_path / 'clip_latest.pt', model, model.clip_arch)
    assert torch.load(export, weights_only=True)['clip_arch']['type'] == 'EvaCLIPModel'
    rebuilt = build_clip(dict(type='CLIPModel', model_name='ViT-B-16', quick_gelu=True, pretrained=str(export)))
    assert type(rebuilt) is EvaCLIPModel and _same_weights(rebuilt, model)
    assert rebuilt.checkpoint_format == 'clim'
    from clim.models.factory import clip_cfg_for
    assert clip_cfg_for(dict(type='CLIPModel', model_name='ViT-B-16', pretrained=str(export)))['type'] == \
        'EvaCLIPModel'


def test_factory_loads_strictly(tmp_path, tiny_release_state):
    sd = dict(tiny_release_state)
    sd.pop('visual.blocks.2.attn.v_bias')
    sd['visual.blocks.0.attn.extra'] = torch.zeros(3)
    path = tmp_path / 'bad.pt'
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        build_clip(dict(type='CLIP', model_cfg=TINY_CFG, pretrained=str(path)))
    assert 'visual.blocks.2.attn.v_bias' in str(err.value) and 'visual.blocks.0.attn.extra' in str(err.value)


# ------------------------------------------------------------------------------------------------
# text side
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def eva(tiny_release_file) -> EvaCLIPModel:
    return build_clip(dict(type='CLIP', model_cfg=TINY_CFG, pretrained=str(tiny_release_file))).eval()


def _ids(n: int, eot_at: list[int]) -> torch.Tensor:
    tokens = torch.randint(1, TINY['vocab'] - 1, (n, TINY['context']))
    for i, e in enumerate(eot_at):
        tokens[i, e] = TINY['vocab'] - 1            # EOT = the argmax id
        tokens[i, e + 1:] = 0
    return tokens


def test_trimmed_and_pseudo_word_encodes_equal_the_full_one(eva):
    tokens = _ids(3, [3, 7, 5])
    with torch.no_grad():
        full = eva.encode_text(tokens)
        trimmed = eva.encode_text_trimmed(tokens)
        pseudo = eva.encode_pseudo_words(eva.text.token_embedding(tokens[:, :8]), torch.tensor([4, 8, 6]))
    torch.testing.assert_close(trimmed, full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pseudo, full, rtol=1e-5, atol=1e-6)
    assert (full @ full.T).triu(1).abs().max() < 0.999  # the texts give different embeddings


def test_class_names_are_the_prompt_ensemble(eva, monkeypatch):
    """Mean of the normalized prompt embeddings, renormalized (ids from the real BPE tokenizer, folded into
    the tiny vocabulary)."""
    real = eva.text_tower.tokenize
    monkeypatch.setattr(eva.text_tower, 'tokenize', lambda texts: real(texts) % TINY['vocab'])
    names = ['cat', 'traffic light']
    templates = get_templates('short')
    with torch.no_grad():
        emb = eva.encode_class_names(names, templates='short')
        per = [F.normalize(eva.encode_text(eva.tokenize([t.format(n) for t in templates])), dim=-1).mean(0)
               for n in names]
    assert emb.shape == (2, TINY['embed']) and emb.dtype == torch.float32
    torch.testing.assert_close(emb, F.normalize(torch.stack(per), dim=-1), rtol=1e-5, atol=1e-6)
    assert eva.encode_class_names([]).shape == (0, TINY['embed'])


def test_text_tower_equals_open_clip_text_transformer(eva, tiny_release_state):
    """Our text path is upstream open_clip's TextTransformer on the release text.* weights."""
    from open_clip.model import _build_text_tower

    upstream = _build_text_tower(TINY['embed'], TINY_CFG['text_cfg'], quick_gelu=False).eval()
    upstream.load_state_dict({k[len('text.'):]: v for k, v in tiny_release_state.items() if k.startswith('text.')})
    tokens = _ids(2, [4, 9])
    with torch.no_grad():
        torch.testing.assert_close(eva.encode_text(tokens, normalize=False), upstream(tokens), rtol=1e-5, atol=1e-6)
    assert isinstance(eva.text, open_clip.transformer.TextTransformer)


def test_lock_text_tower_and_groups_through_the_factory(tiny_release_file):
    model = build_clip(dict(type='CLIP', model_cfg=TINY_CFG, pretrained=str(tiny_release_file)))
    model.lock_image_tower(unlocked_groups=1)
    model.lock_text_tower()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters()
                         if n.startswith(f"visual.trunk.blocks.{TINY['depth'] - 1}.")} | {'logit_scale'}
    assert len(model.image_groups()) == 2 + TINY['depth']


def test_the_file_alone_decides_eva(tiny_release_file):
    """No name, no config: the release layout picks the EVA class, which then infers the architecture from the
    image-tower shapes (the tiny one is no released EVA, and the error says so instead of an open_clip one)."""
    with pytest.raises(CheckpointError, match='no known EVA-02 CLIP'):
        build_clip(dict(type='CLIPModel', pretrained=str(tiny_release_file)))
