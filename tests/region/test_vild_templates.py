"""The ViLD 63-prompt class embeddings of the CLIM / CLIPSelf references (``--templates vild``)."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clim.models import CLIPModel, get_templates, save_clip_checkpoint
from clim.models.templates import (VILD_TEMPLATES, encode_vild_class_names, vild_article, vild_name,
                                   vild_prompts)
from tests.helpers import TINY_CLIP_CFG, run_tool

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_prompt_wording_by_hand() -> None:
    """Article from the raw name, names processed, "This is " only before prompts starting a/the."""
    got = vild_prompts('Apple_Pie/Tart.')
    assert len(got) == 63
    # 'A' is not a lower-case vowel: the reference's article() tests the raw name -> 'a'
    assert got[0] == 'There is a apple pie or tart in the scene.'
    assert got[1] == 'There is the apple pie or tart in the scene.'
    assert got[2] == 'This is a photo of a apple pie or tart in the scene.'
    assert got[5] == 'itap of a apple pie or tart.'  # 'itap' does not start with a / the
    assert got[59] == 'This is an embroidered apple pie or tart.'
    assert got[60] == 'This is the embroidered apple pie or tart.'
    assert vild_prompts('elephant')[8] == 'This is a photo of an elephant.'
    assert vild_prompts('sky-other-merged')[0] == 'There is a sky-other-merged in the scene.'
    assert vild_name('Hot_Dog..') == 'hot dog' and vild_article('umbrella') == 'an'
    prefixed = sum(p.startswith('This is ') for p in vild_prompts('dog'))
    assert prefixed == sum(not t.startswith(('There', 'itap')) for t in VILD_TEMPLATES) == 58


def test_get_templates_refuses_vild_with_the_way_to_do_it() -> None:
    with pytest.raises(ValueError, match='encode_vild_class_names'):
        get_templates('vild')


@pytest.fixture
def tiny_clip() -> CLIPModel:
    torch.manual_seed(0)
    return CLIPModel(model_cfg=copy.deepcopy(TINY_CLIP_CFG)).eval()


def _by_hand(model: CLIPModel, name: str) -> torch.Tensor:
    """The reference's recipe written out: format each template with the processed name and the
    raw name's article, prefix, encode (full-length tokens), normalize, mean, renormalize."""
    article = 'an' if name[0] in 'aeiou' else 'a'
    processed = name.replace('_', ' ').replace('/', ' or ').lower().rstrip('.')
    texts = [t.format(processed, article=article) for t in VILD_TEMPLATES]
    texts = ['This is ' + t if t.startswith('a') or t.startswith('the') else t for t in texts]
    feats = model.encode_text(model.tokenize(texts), normalize=False)
    return F.normalize(F.normalize(feats, dim=-1).mean(0), dim=0)


def test_embeddings_equal_hand_computation(tiny_clip: CLIPModel) -> None:
    names = ['elephant', 'dog', 'Umbrella', 'wall-brick', 'apple', 'traffic_light']  # mixed articles
    with torch.no_grad():
        got = encode_vild_class_names(tiny_clip, names, batch_size=50)
        ref = torch.stack([_by_hand(tiny_clip, n) for n in names])
    assert got.shape == (6, 32) and got.dtype == torch.float32
    torch.testing.assert_close(got, ref, atol=2e-6, rtol=0)


def test_tool_names_for_vild_are_the_raw_panoptic_names() -> None:
    """Built-in lists reach the ViLD recipe unworded (it words them); other templates get prompt names."""
    tool = _tool()
    from clim.models.class_names import COCO_PANOPTIC_133

    raw = tool.class_names('coco_panoptic_133', None, 'vild')
    assert raw == list(COCO_PANOPTIC_133) and raw[116] == 'tree-merged' and len(raw) == 133
    assert tool.class_names('coco_panoptic_133', None, 'full')[116] == 'tree'


def test_tool_writes_vild_embeddings(tmp_path: Path, tiny_clip: CLIPModel) -> None:
    ckpt = save_clip_checkpoint(tmp_path / 'tiny.pt', tiny_clip, tiny_clip.clip_arch)
    names = ['sky-other-merged', 'Apple', 'hot_dog', 'elephant']
    (tmp_path / 'names.txt').write_text('\n'.join(names) + '\n')
    out = tmp_path / 'emb.npy'
    run_tool([str(REPO_ROOT / 'tools' / 'gen_text_embeddings.py'), '--pretrained', str(ckpt),
              '--class-file', str(tmp_path / 'names.txt'), '--templates', 'vild', '--background',
              '--out', str(out)], cwd=tmp_path)
    emb = np.load(out)
    assert emb.shape == (5, 32) and emb.dtype == np.float32
    with torch.no_grad():
        ref = torch.stack([_by_hand(tiny_clip, n) for n in names + ['background']]).numpy()
    np.testing.assert_allclose(emb, ref, atol=2e-6)


def _tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location('gen_text_embeddings', REPO_ROOT / 'tools' / 'gen_text_embeddings.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
