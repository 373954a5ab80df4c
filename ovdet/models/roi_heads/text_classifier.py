"""A cosine classifier against fixed class text embeddings plus a learned background embedding."""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import nn

from .class_embeddings import load_class_embeddings

__all__ = ['BACKGROUND_MODES', 'TextEmbeddingClassifier']

BACKGROUND_MODES = ('learned', 'zero', 'text')


@MODELS.register_module()
class TextEmbeddingClassifier(nn.Module):
    """Open-vocabulary classification layer (used as a bbox head's ``fc_cls``).

    A linear projection maps region features into CLIP's joint space; the L2-normalized region
    embedding is compared with the (fixed) class text embeddings and with a background embedding:
    ``logits = T * <e, [E; bg]>``, with a learnable temperature ``T``. The same background embedding
    is the background column of the test-time CLIP scores (:func:`clip_class_probs`).

    Background embedding (``background``):
      * ``'learned'`` (reference): a linear layer with bias on the constant 1, Xavier-uniform weight and
        zero bias at init, L2-normalized;
      * ``'zero'``: a zero vector (background logit 0 for every region);
      * ``'text'``: fixed, the trailing row of the class-embedding file (``background_row=True``; e.g. the
        text embedding of "background", ``tools/gen_text_embeddings.py --background``).

    Args:
        in_features: region feature size F (filled in by the bbox head).
        out_features: ``num_classes + 1`` (filled in by the bbox head); checked against the file.
        class_embeddings: ``.npy`` path (or array) of shape (C, D), or (C + 1, D) with
            ``background_row``; see :func:`load_class_embeddings`.
        background_row: the file carries a trailing background row (used with ``background='text'``,
            dropped otherwise).
        background: ``'learned'``, ``'zero'`` or ``'text'`` (see above).
        temperature: initial temperature (50 in F-VLM / CLIPSelf / CLIM).
        learn_temperature: make the temperature a parameter (else a fixed buffer).
        projection: map region features to D with a linear layer (default). False: the features are the
            region embedding as they are (F must equal D; CLIPSelf's EVA F-ViT uses the ReLU'd cls fc
            output, eva_clip.md "EVA F-ViT" item 3).

    Shapes:
        forward: x (N, F) -> logits (N, C + 1), background last.
    """

    def __init__(self, in_features: int, out_features: int,
                 class_embeddings: str | os.PathLike | np.ndarray | torch.Tensor,
                 background_row: bool = False, background: str = 'learned', temperature: float = 50.0,
                 learn_temperature: bool = True, projection: bool = True) -> None:
        super().__init__()
        if background not in BACKGROUND_MODES:
            raise ValueError(f'background must be one of {BACKGROUND_MODES}, got {background!r}')
        if background == 'text' and not background_row:
            raise ValueError("background='text' takes the embedding file's last row: set background_row=True "
                             "(tools/gen_text_embeddings.py --background writes it)")
        emb = load_class_embeddings(class_embeddings, num_classes=out_features - 1,
                                    background_row=background_row)
        # Where the vocabulary came from, for error messages.
        self.source = os.fspath(class_embeddings) if isinstance(class_embeddings, (str, os.PathLike)) \
            else '<array>'
        self.embed_dim = int(emb.shape[1])
        # Not persistent: the vocabulary is the file named in the config, not part of the trained weights,
        # so one checkpoint serves any class list.
        self.register_buffer('class_embeddings', emb, persistent=False)
        # (mmdet's BBoxHead builds a provisional fc_cls on the RoI size before ConvFCBBoxHead rebuilds it on
        # the fc width: the width is checked per call, see region_embeddings.)
        self.proj = nn.Linear(in_features, self.embed_dim) if projection else nn.Identity()
        self.background_mode = background
        if background == 'learned':
            self.background = nn.Linear(1, self.embed_dim)
            self._init_background()
        elif background == 'text':
            row = load_class_embeddings(class_embeddings)[-1:]
            self.register_buffer('background_text', row, persistent=False)
        if learn_temperature:
            self.temperature = nn.Parameter(torch.tensor(float(temperature)))
        else:
            self.register_buffer('temperature', torch.tensor(float(temperature)))

    @property
    def num_classes(self) -> int:
        return int(self.class_embeddings.shape[0])

    def region_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """(N, F) -> (N, D) L2-normalized region embeddings."""
        if isinstance(self.proj, nn.Identity) and x.shape[-1] != self.embed_dim:
            raise ValueError(f'projection=False uses the region features as embeddings: they must be '
                             f'{self.embed_dim} wide (fc_out_channels = the embedding size), got {x.shape[-1]}')
        return F.normalize(self.proj(x), dim=-1)

    def _init_background(self) -> None:
        nn.init.xavier_uniform_(self.background.weight)
        nn.init.zeros_(self.background.bias)

    def init_weights(self) -> None:
        """Re-initialize the learned background (MMEngine calls this after the head's ``init_cfg``,
        whose ``Normal`` override on ``fc_cls`` would otherwise replace the Xavier init)."""
        if self.background_mode == 'learned':
            self._init_background()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        # Checkpoints from before the background layer had a bias: theirs was a bias of zero.
        bias = prefix + 'background.bias'
        if self.background_mode == 'learned' and prefix + 'background.weight' in state_dict \
                and bias not in state_dict:
            state_dict[bias] = torch.zeros_like(self.background.bias)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def background_embedding(self) -> torch.Tensor:
        """(1, D) background embedding: L2-normalized learned / text row, or zeros."""
        if self.background_mode == 'learned':
            one = self.background.weight.new_ones(1, 1)
            return F.normalize(self.background(one), dim=-1)
        if self.background_mode == 'text':
            return self.background_text
        return self.class_embeddings.new_zeros(1, self.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, F) region features -> (N, C + 1) logits."""
        emb = self.region_embeddings(x)
        classes = torch.cat([self.class_embeddings.to(emb.dtype), self.background_embedding().to(emb.dtype)])
        return self.temperature * emb @ classes.t()

    def set_class_embeddings(self, embeddings: torch.Tensor) -> None:
        """Replace the vocabulary with (C', D) embeddings (normalized here); C' may differ from C."""
        emb = load_class_embeddings(embeddings)
        if emb.shape[1] != self.embed_dim:
            raise ValueError(f'new class embeddings have dim {emb.shape[1]}, the classifier {self.embed_dim}')
        self.class_embeddings = emb.to(self.class_embeddings.device)
        self.source = '<set_class_embeddings>'
