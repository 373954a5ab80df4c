"""Pseudo words: region features -> word embeddings -> CLIP's text encoder -> bag embeddings."""
from __future__ import annotations

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

__all__ = ['PseudoWordProjector', 'encode_word_sequences', 'special_token_embeddings']


def special_token_embeddings(clip) -> tuple[Tensor, Tensor]:
    """(width,) token embeddings of the start-of-text and end-of-text tokens of a ``CLIPModel``."""
    tokens = clip.tokenize([''])[0]  # [SOT, EOT, 0, ...]
    emb = clip.clip.token_embedding.weight
    return emb[tokens[0]], emb[tokens[1]]


def encode_word_sequences(clip, words: list[Tensor], normalize: bool = True) -> Tensor:
    """Bag embeddings of pseudo-word sequences through the CLIP text encoder.

    Each sequence is wrapped as ``[SOT] w_1 .. w_n [EOT]`` (the real start / end token embeddings),
    the batch is right-padded with zeros and run once through
    ``CLIPModel.encode_pseudo_words``; the output is the projected feature at the EOT position.
    With the causal mask, padding never reaches the EOT position, so a sequence's embedding does not
    depend on the other sequences in the batch.

    Args:
        clip: a ``clim.models.CLIPModel`` (its parameters may be frozen; gradients reach ``words``).
        words: S tensors (n_i, width), n_i >= 0 and n_i + 2 <= context length.

    Returns:
        (S, D), L2-normalized when ``normalize``.
    """
    width = clip.text_width
    sot, eot = special_token_embeddings(clip)
    if not words:
        return sot.new_zeros(0, clip.embed_dim)
    lengths = torch.tensor([w.shape[0] + 2 for w in words], device=sot.device)
    max_len = int(lengths.max())
    if max_len > clip.context_length:
        raise ValueError(f'a sequence of {max_len - 2} words does not fit the context length '
                         f'{clip.context_length} (with SOT / EOT)')
    dtype = words[0].dtype
    if any(w.shape[-1] != width for w in words):
        raise ValueError(f'pseudo words must have the text width {width}')
    rows = [torch.cat([sot[None].to(dtype), w, eot[None].to(dtype)]) for w in words]
    # pad_sequence keeps the graph to every word
    batch = nn.utils.rnn.pad_sequence(rows, batch_first=True)
    return clip.encode_pseudo_words(batch, lengths, normalize=normalize)


@MODELS.register_module()
class PseudoWordProjector(nn.Module):
    """Region features -> ``words_per_region`` pseudo words + a box positional embedding.

    ``words(feats, norm_boxes)``: (R, F) region features and (R, 4) boxes normalized to their bag's
    spanned box -> (R, words_per_region, word_dim); the positional embedding (a 2-layer MLP of the 4
    normalized coordinates) is added to each word of the region.

    ``sequences(words, seqs, lengths)``: concatenate the words of each bag's boxes in the bag's
    order, drop words at random with ``word_dropout`` in training (at least one word kept), and cap
    at ``max_words``.

    Args:
        in_features: F. word_dim: the text encoder width. words_per_region: 6 in the reference.
        word_dropout: probability of dropping each word in training (0.5).
        max_words: words per sequence at most (context length - 2 for the text encoder).
    """

    def __init__(self, in_features: int, word_dim: int, words_per_region: int = 6, word_dropout: float = 0.5,
                 max_words: int = 75, pos_hidden: int = 128) -> None:
        super().__init__()
        if not 0 <= word_dropout < 1:
            raise ValueError('word_dropout must be in [0, 1)')
        self.words_per_region = int(words_per_region)
        self.word_dim = int(word_dim)
        self.word_dropout = float(word_dropout)
        self.max_words = int(max_words)
        self.proj = nn.Linear(in_features, self.words_per_region * self.word_dim)
        self.pos = nn.Sequential(nn.Linear(4, pos_hidden), nn.ReLU(inplace=True), nn.Linear(pos_hidden, word_dim))

    def words(self, feats: Tensor, norm_boxes: Tensor) -> Tensor:
        """(R, F), (R, 4) -> (R, words_per_region, word_dim)."""
        w = self.proj(feats).view(feats.shape[0], self.words_per_region, self.word_dim)
        return w + self.pos(norm_boxes.to(w.dtype))[:, None]

    def sequences(self, words: Tensor, seqs: Tensor, lengths: Tensor,
                  generator: torch.Generator | None = None) -> list[Tensor]:
        """Per bag the (n_i, word_dim) word sequence.

        Args:
            words: (R, W, word_dim). seqs: (S, L) indices into R, -1 padded. lengths: (S,).
            generator: CPU generator for the dropout draws (reproducible).
        """
        out = []
        drop = self.training and self.word_dropout > 0
        for s in range(seqs.shape[0]):
            idx = seqs[s, :int(lengths[s])]
            seq = words[idx].reshape(-1, self.word_dim)
            if drop:
                keep = torch.rand(seq.shape[0], generator=generator) >= self.word_dropout
                if not keep.any():
                    keep[torch.randint(seq.shape[0], (1,), generator=generator)] = True
                seq = seq[keep.to(seq.device)]
            out.append(seq[:self.max_words])
        return out
