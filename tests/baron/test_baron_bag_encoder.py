"""The bag-embedding path: pseudo words -> CLIP text encoder."""
from __future__ import annotations

import pytest
import torch

from baron_test_utils import TINY_CLIP_CFG


@pytest.fixture(scope='module')
def clip():
    from clim.models import CLIPModel

    torch.manual_seed(0)
    model = CLIPModel(model_cfg=TINY_CLIP_CFG).eval()
    for p in model.parameters():
        p.requires_grad = False
    return model


def test_batched_equals_one_by_one_for_different_lengths(clip) -> None:
    from ovdet.models.baron import encode_word_sequences

    g = torch.Generator().manual_seed(0)
    words = [torch.randn(n, clip.text_width, generator=g) for n in (0, 1, 5, 12, 30)]
    batched = encode_word_sequences(clip, words)
    single = torch.cat([encode_word_sequences(clip, [w]) for w in words])
    assert batched.shape == (5, clip.embed_dim)
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched.norm(dim=-1), torch.ones(5))
    # a different batch partner or order changes nothing either
    again = encode_word_sequences(clip, [words[3], torch.randn(2, clip.text_width, generator=g), words[1]])
    torch.testing.assert_close(again[0], batched[3], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again[2], batched[1], atol=1e-5, rtol=1e-5)
    # sequences differ from each other (the words matter)
    assert (batched[1] - batched[2]).abs().max() > 1e-3


def test_real_token_embeddings_reproduce_encode_text(clip) -> None:
    """Wrapping with SOT / EOT is exactly how CLIP encodes a sentence."""
    from ovdet.models.baron import encode_word_sequences

    tokens = clip.tokenize(['a photo of a red circle', 'star'])
    words = []
    for row in tokens:
        n = int(row.argmax()) + 1  # EOT position + 1
        words.append(clip.clip.token_embedding(row[1:n - 1]))
    ours = encode_word_sequences(clip, words)
    ref = clip.encode_text(tokens, normalize=True)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_too_long_sequence_is_an_error(clip) -> None:
    from ovdet.models.baron import encode_word_sequences

    with pytest.raises(ValueError, match='context length'):
        encode_word_sequences(clip, [torch.zeros(clip.context_length - 1, clip.text_width)])


def test_gradient_reaches_words_not_the_frozen_encoder(clip) -> None:
    from ovdet.models.baron import PseudoWordProjector, encode_word_sequences

    proj = PseudoWordProjector(16, clip.text_width, words_per_region=3, word_dropout=0.0,
                               max_words=clip.context_length - 2)
    feats = torch.randn(4, 16)
    norm_boxes = torch.rand(4, 4)
    words = proj.words(feats, norm_boxes)
    seqs = proj.sequences(words, torch.tensor([[0, 1, -1], [3, 2, 1]]), torch.tensor([2, 3]))
    assert [s.shape[0] for s in seqs] == [6, 9]
    out = encode_word_sequences(clip, seqs)
    out.sum().backward()
    assert proj.proj.weight.grad is not None and proj.proj.weight.grad.abs().sum() > 0
    assert proj.pos[0].weight.grad is not None and proj.pos[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in clip.parameters())


def test_projector_words_order_dropout_and_cap() -> None:
    from ovdet.models.baron import PseudoWordProjector

    proj = PseudoWordProjector(8, 10, words_per_region=4, word_dropout=0.5, max_words=7)
    feats, boxes = torch.randn(3, 8), torch.rand(3, 4)
    words = proj.words(feats, boxes)
    assert words.shape == (3, 4, 10)
    # positional embedding: same feature, different box -> different words by a per-region constant
    w2 = proj.words(feats, torch.rand(3, 4))
    diff = words - w2
    torch.testing.assert_close(diff, diff[:, :1].expand_as(diff))
    seqs, lengths = torch.tensor([[2, 0], [1, -1]]), torch.tensor([2, 1])
    proj.eval()
    out = proj.sequences(words, seqs, lengths)
    torch.testing.assert_close(out[0], torch.cat([words[2], words[0]])[:7])  # in order, capped at 7
    torch.testing.assert_close(out[1], words[1])
    proj.train()
    g = torch.Generator().manual_seed(0)
    counts = []
    for _ in range(50):
        out = proj.sequences(words, seqs, lengths, generator=g)
        counts.append(out[1].shape[0])
        assert 1 <= out[0].shape[0] <= 7 and 1 <= out[1].shape[0] <= 4
        # kept words are a subsequence of the full sequence, in order
        full = words[1]
        pos = [int((full == w).all(-1).nonzero()[0]) for w in out[1]]
        assert pos == sorted(pos)
    assert 1.5 < sum(counts) / len(counts) < 2.6  # ~half of 4 words kept
    a = proj.sequences(words, seqs, lengths, generator=torch.Generator().manual_seed(1))
    b = proj.sequences(words, seqs, lengths, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
