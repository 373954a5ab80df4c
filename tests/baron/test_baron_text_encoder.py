"""The pseudo-word classifier and the bag encoder against a hand-run tiny CLIP text transformer."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from baron_test_utils import TINY_CLIP_CFG


@pytest.fixture(scope='module')
def clip():
    from clim.models import CLIPModel

    torch.manual_seed(0)
    model = CLIPModel(model_cfg=TINY_CLIP_CFG).eval()
    for p in model.parameters():
        p.requires_grad = False
    return model


def _hand_block(block, x, causal=True):
    """One open_clip residual block written out with explicit q/k/v (batch of 1 sequence, (L, W))."""
    attn = block.attn
    w = attn.embed_dim
    h = attn.num_heads
    y = block.ln_1(x)
    q, k, v = (F.linear(y, attn.in_proj_weight[i * w:(i + 1) * w], attn.in_proj_bias[i * w:(i + 1) * w])
               for i in range(3))
    length = x.shape[0]
    q, k, v = (t.view(length, h, w // h).transpose(0, 1) for t in (q, k, v))
    scores = q @ k.transpose(1, 2) / (w // h) ** 0.5
    if causal:
        scores = scores + torch.full((length, length), float('-inf')).triu(1)
    out = (scores.softmax(-1) @ v).transpose(0, 1).reshape(length, w)
    x = x + attn.out_proj(out)
    return x + block.mlp(block.ln_2(x))


def _hand_sequence(clip, words):
    ids = clip.tokenize([''])[0]
    emb = clip.clip.token_embedding.weight
    return torch.cat([emb[ids[0]][None], words, emb[ids[1]][None]])


def _hand_run(clip, seq, upto=None):
    x = seq + clip.clip.positional_embedding[:seq.shape[0]]
    blocks = list(clip.clip.transformer.resblocks)
    for b in blocks[:upto]:
        x = _hand_block(b, x)
    return x


def test_classifier_logits_match_hand_run_text_transformer(clip) -> None:
    from ovdet.models.baron import PseudoWordClassifier

    g = torch.Generator().manual_seed(1)
    emb = F.normalize(torch.randn(3, clip.text_width, generator=g), dim=-1)
    cls = PseudoWordClassifier(8, 4, emb, words_per_region=3, word_dim=clip.text_width, word_dropout=0.5)
    cls.bind_text_encoder(clip)
    cls.eval()
    x = torch.randn(2, 8, generator=g)
    logits = cls(x)
    words = cls.proj(x).view(2, 3, clip.text_width)
    bg = F.normalize(cls.background(torch.ones(1, 1)), dim=-1)
    for n in range(2):
        out = _hand_run(clip, _hand_sequence(clip, words[n]))[4]  # EOT after 3 words; no ln_final, no proj
        c = F.normalize(out, dim=-1)
        ref = 50.0 * c @ torch.cat([emb, bg]).t()
        torch.testing.assert_close(logits[n], ref, atol=1e-4, rtol=1e-4)
    # kept words only: a training keep mask is honoured (words 0 and 2 of RoI 0)
    keep = torch.tensor([[True, False, True], [False, True, False]])
    c = cls.region_embeddings(x, keep)
    ref0 = F.normalize(_hand_run(clip, _hand_sequence(clip, words[0, [0, 2]]))[3], dim=-1)
    torch.testing.assert_close(c[0], ref0, atol=1e-5, rtol=1e-4)


def test_word_dropout_keeps_half_and_word_zero_when_all_dropped() -> None:
    from ovdet.models.baron import word_keep_mask

    g = torch.Generator().manual_seed(0)
    keep = word_keep_mask(4000, 6, 0.5, generator=g)
    assert keep.any(1).all()
    none_drawn = ~(torch.rand(4000, 6, generator=torch.Generator().manual_seed(0)) >= 0.5).any(1)
    assert none_drawn.any()
    # rows where every draw dropped keep exactly word 0
    assert keep[none_drawn, 0].all() and not keep[none_drawn, 1:].any()
    assert 0.47 < keep.float().mean() < 0.53


def test_bag_features_text_embedding_and_eot_residual_word_tokens(clip) -> None:
    from ovdet.models.baron import bag_features, pack_word_sequences

    g = torch.Generator().manual_seed(2)
    words = torch.randn(2, 4, clip.text_width, generator=g)
    keep = torch.tensor([[True, True, False, True], [False, True, False, False]])
    seq, pos = pack_word_sequences(clip, words, keep)
    assert seq.shape[1] == 5  # longest: 3 words + SOT + EOT
    t, tokens = bag_features(clip, seq, keep.sum(1) + 1)
    c = clip.clip
    last = list(c.transformer.resblocks)[-1]
    for n in range(2):
        kept = words[n][keep[n]]
        hand_seq = _hand_sequence(clip, kept)
        full = _hand_run(clip, hand_seq)
        eot = kept.shape[0] + 1
        ref_t = F.normalize(c.ln_final(full[eot]) @ c.text_projection, dim=-1)
        torch.testing.assert_close(t[n], ref_t, atol=1e-5, rtol=1e-4)
        x11 = _hand_run(clip, hand_seq, upto=-1)
        w = last.attn.embed_dim
        for j, m in enumerate(keep[n].nonzero().flatten().tolist()):
            xi = x11[j + 1]
            v = F.linear(last.ln_1(xi), last.attn.in_proj_weight[2 * w:], last.attn.in_proj_bias[2 * w:])
            y = x11[eot] + last.attn.out_proj(v)  # the EOT's residual, not the word's own
            y = y + last.mlp(last.ln_2(y))
            ref = c.ln_final(y) @ c.text_projection
            assert int(pos[n, m]) == j + 1
            torch.testing.assert_close(tokens[n, j + 1], ref, atol=1e-5, rtol=1e-4)


def test_bag_embedding_of_real_tokens_is_encode_text(clip) -> None:
    from ovdet.models.baron import bag_features, pack_word_sequences

    tokens = clip.tokenize(['a photo of a red circle'])
    n = int(tokens[0].argmax()) - 1
    words = clip.clip.token_embedding(tokens[0, 1:n + 1])[None]
    seq, _ = pack_word_sequences(clip, words, torch.ones(1, n, dtype=torch.bool))
    t, _ = bag_features(clip, seq, torch.tensor([n + 1]))
    torch.testing.assert_close(t, clip.encode_text(tokens, normalize=True), atol=1e-5, rtol=1e-4)


def test_attn12_class_embeddings_average_normalized_prompts(clip) -> None:
    from ovdet.models.baron import attn12_class_embeddings

    prompts = ['a photo of a circle.', 'There is a circle in the scene.']
    emb = attn12_class_embeddings(clip, [prompts])
    feats = []
    for p in prompts:
        tok = clip.tokenize([p])[0]
        eot = int(tok.argmax())
        x = _hand_run(clip, clip.clip.token_embedding(tok[:eot + 1]))
        feats.append(F.normalize(x[eot], dim=-1))
    torch.testing.assert_close(emb[0], F.normalize(sum(feats) / 2, dim=-1), atol=1e-5, rtol=1e-4)


def test_attn12_vild_recipe_uses_the_63_prompts(clip) -> None:
    from clim.models.templates import vild_prompts

    from ovdet.models.baron import attn12_class_embeddings, attn12_vild_class_embeddings

    prompts = vild_prompts('traffic_light')
    assert len(prompts) == 63 and all('traffic light' in p for p in prompts)
    assert any(p.startswith('This is a ') for p in prompts)
    torch.testing.assert_close(attn12_vild_class_embeddings(clip, ['traffic_light']),
                               attn12_class_embeddings(clip, [prompts]))


def test_gen_text_embeddings_writes_attn12_next_to_the_projected_file(baron_workspace, tmp_path) -> None:
    import importlib.util

    import numpy as np

    from baron_test_utils import REPO_ROOT
    from clim.models import CLIPModel
    from ovdet.models.baron import attn12_vild_class_embeddings

    spec = importlib.util.spec_from_file_location('gen_text_embeddings_tool',
                                                  REPO_ROOT / 'tools' / 'gen_text_embeddings.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    names = tmp_path / 'names.txt'
    names.write_text('traffic_light\napple\n')
    out = tmp_path / 'emb' / 'tiny_hand_craft.npy'
    tool.main(['--pretrained', str(baron_workspace['clip_ckpt']), '--class-file', str(names), '--templates', 'vild',
               '--attn12', '--out', str(out)])
    clip = CLIPModel(pretrained=str(baron_workspace['clip_ckpt'])).eval()
    with torch.no_grad():
        expected = attn12_vild_class_embeddings(clip, ['traffic_light', 'apple'])
    got = np.load(out.with_name('tiny_hand_craft_attn12.npy'))
    assert got.shape == (2, clip.text_width) and got.dtype == np.float32
    torch.testing.assert_close(torch.from_numpy(got), expected)
    projected = np.load(out)  # the projected file is still written, in the joint space
    assert projected.shape == (2, clip.embed_dim)


def test_word_dropout_without_a_generator_is_the_references_dropout_call() -> None:
    from ovdet.models.baron import word_keep_mask

    torch.manual_seed(11)
    keep = word_keep_mask(500, 6, 0.5)
    torch.manual_seed(11)
    ref = F.dropout(torch.ones(500, 6), p=0.5, training=True) > 0  # the reference's draw
    ref[~ref.any(1), 0] = True
    assert torch.equal(keep, ref)
