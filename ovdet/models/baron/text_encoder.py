"""CLIP's text transformer run on pseudo-word embeddings, block by block (BARON-KD).

Three readouts of one ``[SOT] words [EOT] pad..`` sequence are needed:

- :func:`attn12_eot`: the EOT token after all blocks, **without** ``ln_final`` or the text projection
  (BARON's classifier space and its "attn12" class embeddings);
- :func:`bag_features`: the ordinary text embedding (``ln_final`` + projection at EOT) *and* the
  last-block word tokens computed with the EOT residual
  ``y_i = x_EOT + out_proj(V(ln_1(x_i))); y_i += mlp(ln_2(y_i))`` (then ``ln_final`` + projection),
  the reference's single-region student tokens.

Everything reads the open_clip modules of a ``clim.models.CLIPModel`` through their public attributes
(``clip.clip.transformer.resblocks``, ``ln_final``, ``text_projection``, ``token_embedding``,
``positional_embedding``); the CLIP weights are never changed here.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from clim.models.towers.open_clip_vit import value_only_attention
from clim.models.templates import get_templates, vild_prompts
from torch import Tensor, nn

__all__ = ['special_tokens', 'pack_word_sequences', 'attn12_eot', 'bag_features', 'attn12_class_embeddings',
           'attn12_vild_class_embeddings', 'attn12_prompt_embeddings']


def special_tokens(clip) -> tuple[Tensor, Tensor, Tensor]:
    """(width,) token embeddings of SOT, EOT and token 0 (the padding) of a ``CLIPModel``."""
    ids = clip.tokenize([''])[0]  # [SOT, EOT, 0, ...]
    emb = clip.clip.token_embedding.weight
    return emb[ids[0]], emb[ids[1]], emb[0]


def pack_word_sequences(clip, words: Tensor, keep: Tensor, length: int | None = None) -> tuple[Tensor, Tensor]:
    """``[SOT, kept words in order, EOT, pad, ...]`` token embeddings.

    Args:
        words: (N, M, width) candidate words of each sequence.
        keep: (N, M) bool, which words enter the sequence (>= 0 per row; padding rows False).
        length: sequence length L (default: the longest kept count + 2).

    Returns:
        ``(embeds (N, L, width), positions (N, M))``: ``positions[n, m]`` is the index of word m in its
        sequence (meaningless where ``keep`` is False); the EOT of row n sits at ``keep[n].sum() + 1``.
    """
    n, m, width = words.shape
    if width != clip.text_width:
        raise ValueError(f'pseudo words must have the text width {clip.text_width}, got {width}')
    counts = keep.sum(1)
    need = int(counts.max()) + 2 if n else 2
    length = need if length is None else int(length)
    if length < need or length > clip.context_length:
        raise ValueError(f'sequences of {need - 2} words need length in [{need}, {clip.context_length}], '
                         f'got {length}')
    sot, eot, pad = (t.to(words.dtype) for t in special_tokens(clip))
    seq = pad.expand(n, length, width).clone()
    seq[:, 0] = sot
    positions = keep.long().cumsum(1)
    rows, cols = keep.nonzero(as_tuple=True)
    # out-of-place index_put keeps the graph to every kept word
    seq = seq.index_put((rows, positions[rows, cols]), words[rows, cols])
    seq = seq.index_put((torch.arange(n, device=words.device), counts + 1), eot.expand(n, width))
    return seq, positions


def _causal_input(clip, embeds: Tensor) -> tuple[Tensor, Tensor]:
    c = clip.clip
    length = embeds.shape[1]
    cast = c.transformer.get_cast_dtype()
    x = embeds.to(cast) + c.positional_embedding[:length].to(cast)
    mask = torch.full((length, length), float('-inf'), device=x.device).triu_(1)
    return x, mask


def _run(blocks: Sequence[nn.Module], x: Tensor, mask: Tensor) -> Tensor:
    for block in blocks:
        x = block(x, attn_mask=mask)
    return x


def _project(clip, x: Tensor) -> Tensor:
    proj = clip.clip.text_projection
    return proj(x) if isinstance(proj, nn.Linear) else x @ proj.to(x.dtype)


def attn12_eot(clip, embeds: Tensor, eot_index: Tensor) -> Tensor:
    """(N, L, width) sequences -> (N, width) EOT output of the last block (no ln_final / projection)."""
    x, mask = _causal_input(clip, embeds)
    x = _run(clip.clip.transformer.resblocks, x, mask)
    return x[torch.arange(x.shape[0], device=x.device), eot_index]


def bag_features(clip, embeds: Tensor, eot_index: Tensor) -> tuple[Tensor, Tensor]:
    """The bag embedding and the EOT-residual word tokens of each sequence.

    Args:
        embeds: (N, L, width) from :func:`pack_word_sequences`. eot_index: (N,).

    Returns:
        ``(t (N, D) L2-normalized text embeddings, tokens (N, L, D) projected word tokens, not
        normalized)``; ``tokens`` at non-word positions are meaningless.
    """
    c = clip.clip
    blocks = list(c.transformer.resblocks)
    x, mask = _causal_input(clip, embeds)
    x = _run(blocks[:-1], x, mask)
    rows = torch.arange(x.shape[0], device=x.device)
    last = blocks[-1]
    full = last(x, attn_mask=mask)
    t = F.normalize(_project(clip, c.ln_final(full[rows, eot_index])).float(), dim=-1)
    # Reference quirk (spec S6): word tokens take the EOT token's residual, not their own.
    y = x[rows, eot_index][:, None] + last.ls_1(value_only_attention(last, last.ln_1(x)))
    y = y + last.ls_2(last.mlp(last.ln_2(y)))
    tokens = _project(clip, c.ln_final(y)).float()
    return t, tokens


@torch.no_grad()
def attn12_class_embeddings(clip, texts_per_class: Sequence[Sequence[str]]) -> Tensor:
    """BARON's "attn12" class embeddings: per prompt the last-block EOT output (no ln_final /
    projection), normalized; per class the mean of its prompts, normalized again.

    Args:
        texts_per_class: C lists of prompts.

    Returns:
        (C, width) float32, unit rows.
    """
    out = []
    emb = clip.clip.token_embedding
    for prompts in texts_per_class:
        tokens = clip.tokenize(list(prompts))
        eot = tokens.argmax(dim=-1)
        x = emb(tokens[:, :int(eot.max()) + 1])
        feats = F.normalize(attn12_eot(clip, x, eot).float(), dim=-1)
        out.append(F.normalize(feats.mean(0), dim=-1))
    return torch.stack(out)


def attn12_vild_class_embeddings(clip, names: Sequence[str]) -> Tensor:
    """The reference's ``coco_clip_hand_craft_attn12`` recipe: :func:`attn12_class_embeddings` of the 63
    ViLD prompts of each name (``clim.models.templates.vild_prompts``: '_' -> ' ', lower case, "a" / "an",
    "This is " before prompts starting with "a" / "the"). (C, width) float32 (the reference encodes in fp16)."""
    return attn12_class_embeddings(clip, [vild_prompts(n) for n in names])


def attn12_prompt_embeddings(clip, names: Sequence[str], templates: str | Sequence[str] = 'vild') -> Tensor:
    """"attn12" class embeddings of ``names`` with a template set: ``'vild'`` (the reference's recipe,
    :func:`attn12_vild_class_embeddings`, on the raw names) or any ``clim.models.get_templates`` choice
    (``'{}'`` strings filled with each name as given). (C, width) float32, unit rows."""
    if isinstance(templates, str) and templates == 'vild':
        return attn12_vild_class_embeddings(clip, names)
    chosen = get_templates(templates)
    return attn12_class_embeddings(clip, [[t.format(n) for t in chosen] for n in names])
