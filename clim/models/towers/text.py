"""Text-tower adapters: tokenize, encode, trimmed encode, pseudo-word encode and locking, written once per
text-tower family so every CLIP class delegates to the same code.

:class:`OpenCLIPTextTower` covers open_clip's own causal text transformer, held either by a plain
``open_clip.CLIP`` (attributes on the CLIP itself: ``token_embedding``, ``transformer``, ``text_pool_type``)
or by a ``CustomTextCLIP``'s ``TextTransformer`` (``text.*``, ``pool_type``; EVA-02 CLIP). Like the image
adapters it is a plain object over the module that owns the parameters.

Shapes: ``N`` texts, ``L`` context length, ``D`` joint embedding dim.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from open_clip.tokenizer import SimpleTokenizer
from torch import nn

__all__ = ['OpenCLIPTextTower', 'HFTextTower', 'bpe_tokenizer', 'hf_tokenizer']


@functools.lru_cache(maxsize=4)
def bpe_tokenizer(context_length: int) -> SimpleTokenizer:
    """open_clip's BPE tokenizer at ``context_length`` (building its tables takes ~1 s: one per length)."""
    return SimpleTokenizer(context_length=context_length)


class OpenCLIPTextTower:
    """open_clip's causal text transformer (OpenAI CLIP text tower) as the project uses it.

    Args:
        module: an ``open_clip.CLIP`` or an ``open_clip.transformer.TextTransformer`` (owned and registered
            by the model; the adapter keeps a reference).

    ``tokenize`` (texts) -> LongTensor (N, L); ``encode`` / ``encode_trimmed`` (N, L) -> (N, D);
    ``encode_pseudo_words`` (N, L' <= L, width) embeddings + lengths (N,) -> (N, D).
    """

    tokenizes_captions = False      # the caption pipeline's BPE ids are this tower's ids
    supports_pseudo_words = True    # causal: the feature at the last valid position is the text's

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    # -- geometry -----------------------------------------------------------------------------------------
    @property
    def context_length(self) -> int:
        return int(self.module.context_length)

    @property
    def width(self) -> int:
        """The transformer width (the pseudo-word dimension)."""
        return int(self.module.transformer.width)

    @property
    def embed_dim(self) -> int:
        proj = self.module.text_projection
        return int(proj.out_features if isinstance(proj, nn.Linear) else proj.shape[1])

    @property
    def _pool_type(self) -> str:
        m = self.module
        return getattr(m, 'text_pool_type', None) or getattr(m, 'pool_type', 'argmax')

    @property
    def _eos_id(self) -> int | None:
        m = self.module
        return getattr(m, 'text_eos_id', None) if hasattr(m, 'text_pool_type') else getattr(m, 'eos_id', None)

    # -- text -----------------------------------------------------------------------------------------------
    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        """BPE ids (N, L) on the tower's device."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        return bpe_tokenizer(self.context_length)(texts).to(self.module.token_embedding.weight.device)

    def encode(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Text embedding (N, D) of ids (N, L), as upstream computes it."""
        if hasattr(self.module, 'encode_text'):
            return self.module.encode_text(tokens, normalize=normalize)
        feats = self.module(tokens)
        return F.normalize(feats, dim=-1) if normalize else feats

    def encode_trimmed(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """:meth:`encode` run only up to the batch's longest end-of-text position.

        With the causal mask nothing after a sequence's EOT token reaches it, so the columns past the
        longest EOT are dead work. Same function, not bit-for-bit (kernel shapes round differently, ~1e-7).
        """
        pool, eos = self._pool_type, self._eos_id
        if pool == 'argmax':
            eot = tokens.argmax(dim=-1)
        elif pool == 'eos' and eos is not None:
            eot = (tokens == eos).int().argmax(dim=-1)
        else:  # 'first' / 'last' pooling reads positions a trim could cut
            return self.encode(tokens, normalize=normalize)
        if not len(tokens):
            return self.encode(tokens, normalize=normalize)
        lengths = eot + 1
        embeds = self.module.token_embedding(tokens[:, : int(lengths.max())])
        return self.encode_pseudo_words(embeds, lengths, normalize=normalize)

    def encode_pseudo_words(self, embeds: torch.Tensor, lengths: torch.Tensor | Sequence[int],
                            normalize: bool = True) -> torch.Tensor:
        """The text transformer on given token embeddings (BARON's pseudo words): positional embeddings
        added, causal mask, the feature at ``lengths - 1`` projected.

        Args:
            embeds: (N, L', width), L' <= L; padding after ``lengths``.
            lengths: (N,) valid positions per sequence (>= 1).

        Returns:
            (N, D), L2-normalized when ``normalize``.
        """
        m = self.module
        n, length, width = embeds.shape
        if length > self.context_length or width != self.width:
            raise ValueError(f'embeds must be (N, L <= {self.context_length}, {self.width}), '
                             f'got {tuple(embeds.shape)}')
        lengths = torch.as_tensor(lengths, device=embeds.device).long()
        if lengths.shape != (n,) or (n and (lengths.min() < 1 or lengths.max() > length)):
            raise ValueError(f'lengths must be (N,) in [1, {length}], got {lengths.tolist()}')
        cast = m.transformer.get_cast_dtype()
        x = embeds.to(cast) + m.positional_embedding[:length].to(cast)
        mask = torch.full((length, length), float('-inf'), device=x.device).triu_(1)
        x = m.transformer(x, attn_mask=mask)
        x = m.ln_final(x)
        x = x[torch.arange(n, device=x.device), lengths - 1]
        proj = m.text_projection
        x = proj(x) if isinstance(proj, nn.Linear) else x @ proj.to(x.dtype)
        return F.normalize(x, dim=-1) if normalize else x

    # -- training controls --------------------------------------------------------------------------------
    def parameters(self) -> list[nn.Parameter]:
        """Every text-tower parameter (embeddings, transformer, ln_final, projection)."""
        m = self.module
        out: list[nn.Parameter] = [m.positional_embedding]
        for part in (m.token_embedding, m.transformer, m.ln_final):
            out += list(part.parameters())
        proj = m.text_projection
        out += [proj] if isinstance(proj, nn.Parameter) else list(proj.parameters())
        return out

    def lock(self) -> None:
        """Freeze the text tower (``logit_scale`` is not part of it)."""
        for p in self.parameters():
            p.requires_grad = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Activation checkpointing of the text transformer's blocks."""
        self.module.transformer.grad_checkpointing = enable


@functools.lru_cache(maxsize=8)
def hf_tokenizer(folder: str, context_length: int, kwargs_json: str):
    """open_clip's ``HFTokenizer`` for a tokenizer folder (reading a vocab takes a while: one per folder and
    context length)."""
    import json

    from open_clip.tokenizer import HFTokenizer

    return HFTokenizer(folder, context_length=context_length, **json.loads(kwargs_json))


class HFTextTower:
    """A Hugging Face text encoder inside open_clip's ``CustomTextCLIP`` (``clip.text``: BiomedBERT / PubMedBERT
    towers of UniMed-CLIP and BiomedCLIP), with :class:`OpenCLIPTextTower`'s interface.

    Args:
        clip: the ``CustomTextCLIP`` (its ``encode_text`` pools and projects).
        tokenizer_dir: the tokenizer's snapshot folder.
        context_length: tokenizer length L (the config's, e.g. 256).
        tokenizer_kwargs: extra ``HFTokenizer`` arguments.

    Captions are tokenized by this tower (WordPiece), not by the caption pipeline's BPE ids
    (``tokenizes_captions``); the bidirectional encoder pools [CLS], so pseudo-word input is unsupported.
    """

    tokenizes_captions = True
    supports_pseudo_words = False

    def __init__(self, clip: nn.Module, tokenizer_dir: str, context_length: int,
                 tokenizer_kwargs: dict | None = None) -> None:
        import json

        self.module = clip
        self.tokenizer_dir = str(tokenizer_dir)
        self._context_length = int(context_length)
        self._tokenizer_kwargs = json.dumps(tokenizer_kwargs or {}, sort_keys=True)

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def width(self) -> int:
        """Hidden size of the HF model."""
        return int(self.module.text.config.hidden_size)

    @property
    def embed_dim(self) -> int:
        return int(self.module.text.output_dim)

    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        """The HF tokenizer's ids (N, L), padded with the pad id, on the tower's device."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        tok = hf_tokenizer(self.tokenizer_dir, self.context_length, self._tokenizer_kwargs)
        return tok(texts).to(self.module.logit_scale.device)

    def encode(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        return self.module.encode_text(tokens, normalize=normalize)

    def encode_trimmed(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """:meth:`encode` on the columns up to the longest text: padding is masked out of the encoder's
        attention, so dropping all-padding columns changes nothing but the cost."""
        pad = self.module.text.config.pad_token_id
        used = (tokens != pad).any(dim=0).nonzero()
        length = int(used.max()) + 1 if used.numel() else 1
        return self.encode(tokens[:, :length], normalize=normalize)

    def encode_pseudo_words(self, embeds: torch.Tensor, lengths: torch.Tensor | Sequence[int],
                            normalize: bool = True) -> torch.Tensor:
        raise NotImplementedError(f'encode_pseudo_words needs a CLIP text transformer; this model\'s text tower '
                                  f'is {type(self.module.text.transformer).__name__} (Hugging Face)')

    def parameters(self) -> list[nn.Parameter]:
        return list(self.module.text.parameters())

    def lock(self) -> None:
        for p in self.parameters():
            p.requires_grad = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.module.text.set_grad_checkpointing(enable)
