"""BARON's pseudo-word classifier: region features -> pseudo words -> CLIP text transformer -> logits."""
from __future__ import annotations

import contextlib
import os

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn

from ..roi_heads.class_embeddings import load_class_embeddings
from .text_encoder import attn12_eot, pack_word_sequences

__all__ = ['PseudoWordClassifier', 'word_keep_mask']


def word_keep_mask(num: int, words: int, drop: float, device: torch.device | str = 'cpu',
                   generator: torch.Generator | None = None) -> Tensor:
    """(num, words) bool: each word kept with probability ``1 - drop``; a row with none kept keeps
    word 0 (the reference's rule).

    Without ``generator`` the draw is the reference's own call, ``F.dropout`` of a float32 ones tensor on
    ``device`` (torch's global CPU / CUDA generator), so the same seed drops the same words. With a
    ``generator`` (seeded experiments): ``torch.rand(..., generator) >= drop`` on the CPU."""
    if generator is None:
        keep = F.dropout(torch.ones(num, words, device=device), p=drop, training=True) > 0
    else:
        keep = (torch.rand(num, words, generator=generator) >= drop).to(device)
    keep[~keep.any(1), 0] = True
    return keep


@MODELS.register_module()
class PseudoWordClassifier(nn.Module):
    """``fc_cls`` of :class:`BaronBBoxHead`.

    ``proj`` (Linear F -> W x width, init N(0, 0.01)) turns each region feature into W pseudo words;
    in training each word is kept with probability ``1 - word_dropout`` (:func:`word_keep_mask`). The
    sequence ``[SOT, kept words, EOT, pad]`` (length W + 2, CLIP positions) runs through all blocks of
    the frozen CLIP text transformer; the EOT output of the last block, without ``ln_final`` or
    projection, L2-normalized, is the region embedding c. ``logits = T * c . [E; b]^T`` with E the
    fixed class embeddings (the "attn12" file) and b the normalized output of a learned
    ``Linear(1 -> width)`` (Xavier-uniform, zero bias) applied to 1. T is fixed (50).

    The text encoder is a ``CLIPModel`` owned by the detector and attached with
    :meth:`bind_text_encoder` (not a submodule: its weights are the detector's, saved once).

    Args:
        in_features: F (filled in by the bbox head). out_features: C + 1 (filled in by the bbox head).
        class_embeddings: ``.npy`` (C, width) or array. background_row: the file has a trailing row (dropped).
        words_per_region: W (6). word_dim: the text width (512 for ViT-B). word_dropout: 0.5.
        temperature: T.

    Shapes:
        forward: (N, F) -> (N, C + 1) logits, background last.
    """

    def __init__(self, in_features: int, out_features: int, class_embeddings: str | os.PathLike | np.ndarray | Tensor,
                 words_per_region: int = 6, word_dim: int = 512, word_dropout: float = 0.5,
                 temperature: float = 50.0, background_row: bool = False) -> None:
        super().__init__()
        emb = load_class_embeddings(class_embeddings, num_classes=out_features - 1, background_row=background_row)
        if emb.shape[1] != word_dim:
            raise ValueError(f'class embeddings {class_embeddings if isinstance(class_embeddings, str) else ""} '
                             f'have dim {emb.shape[1]}, the pseudo words {word_dim}: BARON needs "attn12" '
                             f'embeddings in the text width (ovdet.models.baron.attn12_class_embeddings)')
        if not 0 <= word_dropout < 1:
            raise ValueError('word_dropout must be in [0, 1)')
        self.register_buffer('class_embeddings', emb, persistent=False)
        self.words_per_region = int(words_per_region)
        self.word_dim = int(word_dim)
        self.word_dropout = float(word_dropout)
        self.temperature = float(temperature)
        self.proj = nn.Linear(in_features, self.words_per_region * self.word_dim)
        self.background = nn.Linear(1, self.word_dim)
        self.init_weights()
        self._text_encoder = None
        self.generator: torch.Generator | None = None  # set for reproducible word dropout
        self.fp16_autocast = False  # the reference runs the text encoder under fp16 autocast (CUDA only)

    def init_weights(self) -> None:
        # Called again by mmengine after the bbox head's own init_cfg (Normal 0.01 on `fc_cls`), so the
        # background keeps the reference's Xavier init.
        nn.init.normal_(self.proj.weight, std=0.01)
        nn.init.zeros_(self.proj.bias)
        nn.init.xavier_uniform_(self.background.weight)
        nn.init.zeros_(self.background.bias)

    @property
    def num_classes(self) -> int:
        return int(self.class_embeddings.shape[0])

    def bind_text_encoder(self, clip: nn.Module) -> None:
        """Use ``clip`` (a ``CLIPModel``) as the text transformer; kept out of this module's children."""
        if clip.text_width != self.word_dim:
            raise ValueError(f'text width {clip.text_width} != word_dim {self.word_dim}')
        object.__setattr__(self, '_text_encoder', clip)

    @property
    def text_encoder(self) -> nn.Module:
        if self._text_encoder is None:
            raise RuntimeError('PseudoWordClassifier has no text encoder: call bind_text_encoder(clip) '
                               '(BaronKD does this at build)')
        return self._text_encoder

    def pseudo_words(self, x: Tensor) -> Tensor:
        """(N, F) -> (N, W, width)."""
        return self.proj(x).view(x.shape[0], self.words_per_region, self.word_dim)

    def keep_mask(self, num: int, device: torch.device) -> Tensor:
        """(num, W) word-dropout mask: all True in eval mode."""
        if not self.training or self.word_dropout == 0:
            return torch.ones(num, self.words_per_region, dtype=torch.bool, device=device)
        return word_keep_mask(num, self.words_per_region, self.word_dropout, device, self.generator)

    def background_embedding(self) -> Tensor:
        """(1, width) normalized learned background embedding."""
        one = self.background.weight.new_ones(1, 1)
        return F.normalize(self.background(one), dim=-1)

    def region_embeddings(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        """(N, F) -> (N, width) normalized region embeddings c."""
        words = self.pseudo_words(x)
        if keep is None:
            keep = self.keep_mask(x.shape[0], x.device)
        seq, _ = pack_word_sequences(self.text_encoder, words, keep, length=self.words_per_region + 2)
        autocast = torch.autocast('cuda', dtype=torch.float16) if self.fp16_autocast and x.is_cuda \
            else contextlib.nullcontext()
        with autocast:
            c = attn12_eot(self.text_encoder, seq, keep.sum(1) + 1)
        return F.normalize(c.float(), dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        c = self.region_embeddings(x)
        classes = torch.cat([self.class_embeddings.to(c), self.background_embedding().to(c)])
        return self.temperature * c @ classes.t()

    def set_class_embeddings(self, embeddings: Tensor) -> None:
        """Replace the vocabulary with (C', width) embeddings (normalized here)."""
        emb = load_class_embeddings(embeddings)
        if emb.shape[1] != self.word_dim:
            raise ValueError(f'new class embeddings have dim {emb.shape[1]}, the classifier {self.word_dim}')
        self.class_embeddings = emb.to(self.proj.weight.device)
