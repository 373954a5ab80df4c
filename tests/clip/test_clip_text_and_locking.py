"""Text side (tokenizer, class-name ensembles, pseudo words, the embedding tool) and tower locking."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F

from clim.models import CLIPModel, get_templates
from clim.models.class_names import COCO_PANOPTIC_133, OV_COCO_65, prompt_name


def test_tokenize_matches_open_clip(tiny_model: CLIPModel) -> None:
    tok = tiny_model.tokenize(['a photo of a dog', 'a cat'])
    assert tok.dtype == torch.long and tok.shape == (2, 32)
    assert torch.equal(tok, open_clip.tokenize(['a photo of a dog', 'a cat'], context_length=32))


def test_encode_class_names_is_template_mean(tiny_model: CLIPModel) -> None:
    names = ['dog', 'traffic light', 'sky']
    temps = get_templates('short')
    with torch.no_grad():
        got = tiny_model.encode_class_names(names, 'short', batch_size=5)
        ref = []
        for n in names:
            f = tiny_model.encode_text(tiny_model.tokenize([t.format(n) for t in temps]))
            ref.append(F.normalize(f.mean(0), dim=-1))
        bare = tiny_model.encode_class_names(names, 'none')
        direct = tiny_model.encode_text(tiny_model.tokenize(names))
    torch.testing.assert_close(got, torch.stack(ref), atol=1e-6, rtol=0)
    torch.testing.assert_close(bare, direct, atol=1e-6, rtol=0)
    assert len(get_templates('full')) == 80 and len(get_templates(None)) == 80
    with pytest.raises(ValueError):
        get_templates(['no placeholder'])


def test_pseudo_words_padded_batch_equals_one_by_one(tiny_model: CLIPModel) -> None:
    lengths = [5, 3, 1, 8]
    seqs = [torch.randn(n, 64) for n in lengths]
    padded = torch.zeros(len(seqs), max(lengths), 64)
    for i, s in enumerate(seqs):
        padded[i, : len(s)] = s
        padded[i, len(s):] = torch.randn(max(lengths) - len(s), 64) * 10  # garbage padding must not leak
    with torch.no_grad():
        batch = tiny_model.encode_pseudo_words(padded, torch.tensor(lengths))
        single = torch.cat([tiny_model.encode_pseudo_words(s[None], [len(s)]) for s in seqs])
    assert batch.shape == (4, 32)
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=0)


def test_pseudo_words_of_real_tokens_equal_encode_text(tiny_model: CLIPModel) -> None:
    tokens = tiny_model.tokenize(['a photo of a dog', 'the big red bus on a street'])
    lengths = tokens.argmax(dim=-1) + 1  # up to and including the EOT token
    with torch.no_grad():
        embeds = tiny_model.clip.token_embedding(tokens)[:, : int(lengths.max())]
        got = tiny_model.encode_pseudo_words(embeds, lengths)
        ref = tiny_model.encode_text(tokens)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


def test_class_lists() -> None:
    assert len(OV_COCO_65) == 65 and len(COCO_PANOPTIC_133) == 133
    assert prompt_name('sky-other-merged') == 'sky' and prompt_name('wall-brick') == 'brick wall'
    assert prompt_name('traffic light') == 'traffic light'


def test_gen_text_embeddings_tool(tmp_path: Path, tiny_checkpoints: dict, repo_root: Path) -> None:
    cfg_file = tmp_path / 'tiny.json'
    cfg_file.write_text(json.dumps(tiny_checkpoints['cfg']))
    class_file = tmp_path / 'classes.txt'
    class_file.write_text('dog\n\n# comment\nfire hydrant\nzebra\n')
    out = tmp_path / 'emb' / 'classes.npy'
    cmd = [sys.executable, str(repo_root / 'tools' / 'gen_text_embeddings.py'), '--model-cfg', str(cfg_file),
           '--pretrained', str(tiny_checkpoints['open_clip']), '--class-file', str(class_file),
           '--templates', 'short', '--background', '--out', str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=repo_root, timeout=120)
    assert res.returncode == 0, res.stderr
    emb = np.load(out)
    assert emb.dtype == np.float32 and emb.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    model = CLIPModel(model_cfg=tiny_checkpoints['cfg'], pretrained=str(tiny_checkpoints['open_clip'])).eval()
    with torch.no_grad():
        ref = model.encode_class_names(['dog', 'fire hydrant', 'zebra', 'background'], 'short').numpy()
    np.testing.assert_allclose(emb, ref, atol=1e-5)
    # Without --background: no extra row.
    no_bg = [a for a in cmd if a != '--background']
    res = subprocess.run(no_bg, capture_output=True, text=True, cwd=repo_root, timeout=120)
    assert res.returncode == 0, res.stderr
    assert np.load(out).shape == (3, 32)


# ----------------------------------------------------------------------------------------------
# locking
# ----------------------------------------------------------------------------------------------
def _trainable(model: CLIPModel) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_lock_vitb16_six_groups() -> None:
    model = CLIPModel(model_name='ViT-B-16')
    model.lock_image_tower(6)
    model.lock_text_tower()
    expected = {f'clip.visual.transformer.resblocks.{i}.{n}' for i in range(6, 12)
                for n, _ in model.clip.visual.transformer.resblocks[i].named_parameters()}
    assert _trainable(model) == expected | {'clip.logit_scale'}
    n_image = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and '.visual.' in n)
    assert n_image == 42_527_232  # "42.5M" in the spec: 6 x 7,087,872
    for name in ('ln_post.weight', 'ln_post.bias', 'proj', 'conv1.weight', 'positional_embedding'):
        assert not model.clip.visual.get_parameter(name).requires_grad
    assert not any(p.requires_grad for p in model.clip.transformer.parameters())
    assert not model.clip.token_embedding.weight.requires_grad
    assert not model.clip.text_projection.requires_grad
    assert model.clip.attn_mask.shape == (77, 77)  # buffer untouched


def test_lock_groups_order_tiny(tiny_model: CLIPModel) -> None:
    v = 'clip.visual.'
    blocks = {i: {f'{v}transformer.resblocks.{i}.{n}' for n, _ in
                  tiny_model.clip.visual.transformer.resblocks[i].named_parameters()} for i in range(3)}
    tiny_model.lock_image_tower(0)
    assert _trainable(tiny_model) & {n for n, _ in tiny_model.named_parameters() if n.startswith(v)} == set()
    tiny_model.lock_image_tower(4)
    image = {n for n in _trainable(tiny_model) if n.startswith(v)}
    assert image == blocks[0] | blocks[1] | blocks[2] | {f'{v}positional_embedding'}
    tiny_model.lock_image_tower(100)
    image = {n for n in _trainable(tiny_model) if n.startswith(v)}
    assert image == blocks[0] | blocks[1] | blocks[2] | {
        f'{v}positional_embedding', f'{v}conv1.weight', f'{v}class_embedding', f'{v}ln_pre.weight',
        f'{v}ln_pre.bias'}
    assert 'clip.logit_scale' in _trainable(tiny_model)
