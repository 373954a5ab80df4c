"""``TowerCLIP``: the CLIP interface every model class shares, written once over the two tower adapters.

A concrete class (:class:`~clim.models.CLIPModel`, :class:`~clim.models.HFTextCLIPModel`,
:class:`~clim.models.EvaCLIPModel`) only builds its modules and sets ``image_tower`` (an
:class:`~clim.models.towers.base.ImageTower`) and ``text_tower`` (a text adapter from
:mod:`clim.models.towers.text`); every feature, pooling, text and locking method below delegates to them,
so no class branches on tower families (as open_clip's ``CLIP`` never does after ``_build_vision_tower``).

Shapes: ``B`` images, ``D`` joint embedding dim, ``W`` image-tower width, ``p`` the stride (patch size),
``N`` texts, ``L`` context length.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from . import dense as D
from .templates import encode_prompt_ensemble
from .towers.base import ImageTower, ViTImageTower

__all__ = ['TowerCLIP', 'OpenCLIPWrapper']


class TowerCLIP(BaseModule):
    """The shared interface: images (B, 3, H, W) -> embeddings (B, D), dense maps (B, D, H / p, W / p),
    region features (sum n_i, D); texts -> token ids (N, L) -> embeddings (N, D).

    Subclasses set, in ``__init__``: ``image_tower``, ``text_tower``, ``clip`` (the module whose state dict
    exports hold), ``model_name``, ``model_cfg``, ``quick_gelu``, ``pretrained``, ``checkpoint_format``,
    ``checkpoint_meta``.

    Attributes:
        records_type: whether :attr:`clip_arch` names the class (exports of classes other than the default
            ``CLIPModel`` must, so the factory rebuilds them with it).
    """

    image_tower: ImageTower
    records_type = True

    # ------------------------------------------------------------------------------------------
    # properties
    # ------------------------------------------------------------------------------------------
    @property
    def clip_arch(self) -> dict[str, Any]:
        """What an export must carry to rebuild this architecture (activation included)."""
        arch = dict(model_name=self.model_name, model_cfg=copy.deepcopy(self.model_cfg), quick_gelu=self.quick_gelu)
        return dict(arch, type=type(self).__name__) if self.records_type else arch

    @property
    def embed_dim(self) -> int:
        """D, the joint embedding dimension."""
        return self.text_tower.embed_dim

    @property
    def text_width(self) -> int:
        """Width of the text transformer (the pseudo-word dimension)."""
        return self.text_tower.width

    @property
    def context_length(self) -> int:
        """Text context length L."""
        return self.text_tower.context_length

    @property
    def tokenizes_captions(self) -> bool:
        """Whether captions must be tokenized by :meth:`tokenize` (the text tower's own tokenizer, e.g. an HF
        WordPiece) rather than by the caption pipeline's BPE ``TokenizeCaption``."""
        return self.text_tower.tokenizes_captions

    @property
    def vision_width(self) -> int:
        """W: channels of :meth:`vit_tokens` maps (the final feature width of a ResNet)."""
        return self.image_tower.width

    @property
    def stride(self) -> int:
        """Input pixels per dense-map cell (ViT patch size; 32 for Modified ResNets)."""
        return self.image_tower.stride

    @property
    def image_size(self) -> tuple[int, int]:
        """The native (training) input size (H, W)."""
        return self.image_tower.image_size

    @property
    def is_vit(self) -> bool:
        """Whether the image tower is a class-token ViT (:meth:`vit_tokens`, v1 / plain modes)."""
        return self.image_tower.is_vit

    @property
    def num_blocks(self) -> int:
        """Number of image-tower blocks (F-ViT tap indices count them)."""
        return self._vit('num_blocks').num_blocks

    def _vit(self, what: str) -> ViTImageTower:
        if not self.image_tower.is_vit:
            raise ValueError(f'{what} needs a ViT image tower; this model has a {self.image_tower.family}')
        return self.image_tower  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------------
    # image side
    # ------------------------------------------------------------------------------------------
    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Ordinary CLIP image embedding.

        Args:
            images: (B, 3, H, W) normalized images; any size multiple of the stride (positional embeddings
                resized off the native size).

        Returns:
            (B, D), L2-normalized when ``normalize``.
        """
        feats = self.image_tower.encode(images)
        return F.normalize(feats, dim=-1) if normalize else feats

    def dense_features(self, images: torch.Tensor, mode: str = 'v2', normalize: bool = True) -> torch.Tensor:
        """Dense CLIP feature map.

        Args:
            images: (B, 3, H, W), H and W multiples of ``stride``.
            mode: ``'v2'`` (default; last block without query-key attention; a ResNet's attention-pool value
                path) or ``'plain'`` (ordinary last block, ViTs only).

        Returns:
            (B, D, H / stride, W / stride), L2-normalized per location when ``normalize``.
        """
        return self.image_tower.dense(images, mode=mode, normalize=normalize)

    def pool_boxes(self, dense: torch.Tensor, boxes: Sequence[torch.Tensor], normalized: bool = True,
                   normalize: bool = True) -> torch.Tensor:
        """RoIAlign 1x1 (aligned=True, sampling_ratio=-1) of a dense map over per-image boxes.

        Args:
            dense: (B, D, h, w) from :meth:`dense_features`.
            boxes: B tensors (n_i, 4) x1y1x2y2, normalized to [0, 1] or in input-image pixels.

        Returns:
            (sum n_i, D) float32, L2-normalized when ``normalize``.
        """
        return D.pool_boxes(dense, boxes, normalized=normalized, stride=self.stride, normalize=normalize)

    def region_features(self, images: torch.Tensor, boxes: Sequence[torch.Tensor], normalized: bool = True,
                        mode: str = 'v2') -> torch.Tensor:
        """Region embeddings of boxes.

        Args:
            images: (B, 3, H, W).
            boxes: B tensors (n_i, 4) x1y1x2y2, normalized or in pixels.
            mode: ``'v2'`` / ``'plain'`` (RoIAlign on the dense map) or ``'v1'`` (mask attention pooling:
                the class token attends only to the patch tokens inside each box in the last block; open_clip
                ViTs only).

        Returns:
            (sum n_i, D), L2-normalized.
        """
        if mode == 'v1':
            if not self.is_vit:
                raise ValueError('v1 (mask attention pooling) needs a ViT')
            h, w = images.shape[-2] // self.stride, images.shape[-1] // self.stride
            masks = D.boxes_to_cell_masks(boxes, (h, w), normalized=normalized, stride=self.stride)
            return self.mask_attention_pool(images, masks)
        return self.pool_boxes(self.dense_features(images, mode=mode), boxes, normalized=normalized)

    def pool_masks(self, dense: torch.Tensor, masks: Sequence[torch.Tensor],
                   normalize: bool = True) -> torch.Tensor:
        """Mean of a dense map (B, D, h, w) inside masks (B tensors (n_i, h, w); other resolutions are
        area-resampled) -> (sum n_i, D) float32, L2-normalized when ``normalize``."""
        return D.pool_masks(dense, masks, normalize=normalize)

    def mask_attention_pool(self, images: torch.Tensor, masks: Sequence[torch.Tensor]) -> torch.Tensor:
        """"v1" region features from masks at the patch grid.

        Args:
            images: (B, 3, H, W).
            masks: B tensors (n_i, H / p, W / p) bool.

        Returns:
            (sum n_i, D), L2-normalized.
        """
        return self.image_tower.mask_attention_pool(images, masks)

    def vit_tokens(self, images: torch.Tensor,
                   block_ids: Sequence[int]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Intermediate ViT token maps for F-ViT (the last block computed by the v2 block).

        Args:
            images: (B, 3, H, W).
            block_ids: 0-based block indices (negative count from the end), e.g. ``(3, 5, 7, 11)``.

        Returns:
            ``(maps, final)``: ``maps[i]`` (B, W, H / p, W / p) after block ``block_ids[i]``; ``final``
            (B, W, H / p, W / p) the v2 last-block tokens before the final norm (turn it into the CLIP dense
            map with :meth:`project_dense`).
        """
        maps, final, _ = self._vit('vit_tokens').v2_tokens(images, block_ids)
        return maps, final

    def project_dense(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Final norm + projection per location: (B, W, h, w) -> (B, D, h, w), L2-normalized per location
        when ``normalize``."""
        return self._vit('project_dense').project(tokens, normalize=normalize)

    # ------------------------------------------------------------------------------------------
    # text side
    # ------------------------------------------------------------------------------------------
    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        """The text tower's tokenization at the model's context length: LongTensor (N, L) on the model's
        device."""
        return self.text_tower.tokenize(texts)

    def encode_text(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """CLIP text embedding of token ids (N, L) from :meth:`tokenize` -> (N, D), L2-normalized when
        ``normalize``."""
        return self.text_tower.encode(tokens, normalize=normalize)

    def encode_text_trimmed(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """:meth:`encode_text` run only up to the batch's longest text (end-of-text position; the columns
        after it cannot reach it). The same function; not bit-for-bit the untrimmed one (different kernel
        shapes round differently, ~1e-7 on float32): (N, L) -> (N, D)."""
        return self.text_tower.encode_trimmed(tokens, normalize=normalize)

    def _encode_text_trimmed(self, tokens: torch.Tensor) -> torch.Tensor:
        # The earlier private name (tests of other areas call it).
        return self.encode_text_trimmed(tokens, normalize=True)

    def encode_pseudo_words(self, embeds: torch.Tensor, lengths: torch.Tensor | Sequence[int],
                            normalize: bool = True) -> torch.Tensor:
        """Run the text transformer on given token embeddings (BARON's pseudo words): positional embeddings
        added, causal mask, the feature at position ``lengths - 1`` projected.

        Args:
            embeds: (N, L', width) token embeddings, L' <= L; padding after ``lengths``.
            lengths: (N,) valid positions per sequence (>= 1).

        Returns:
            (N, D), L2-normalized when ``normalize``.
        """
        return self.text_tower.encode_pseudo_words(embeds, lengths, normalize=normalize)

    def encode_class_names(self, names: Sequence[str], templates: str | Sequence[str] | None = None,
                           batch_size: int = 256) -> torch.Tensor:
        """Prompt-ensemble class embeddings: mean of the normalized template embeddings, renormalized.

        Args:
            names: C class names.
            templates: ``None``/``'full'`` (80 prompts), ``'short'``, ``'none'`` or a list of strings with one
                ``{}``.
            batch_size: prompts per text forward.

        Returns:
            (C, D) L2-normalized.
        """
        return encode_prompt_ensemble(self, names, templates, batch_size)

    # ------------------------------------------------------------------------------------------
    # training controls
    # ------------------------------------------------------------------------------------------
    def image_groups(self) -> list[list[nn.Parameter]]:
        """Image-tower parameter groups in the reference CLIM order (see
        :meth:`~clim.models.towers.base.ImageTower.param_groups`): ViTs [stem], [positional embedding], one
        per block; Modified ResNets [stem], [layer1] .. [layer4]. The final norm / projection (a ResNet's
        attention pool) belong to none: they map into the text space and always stay frozen."""
        return [group for _, group in self.image_tower.param_groups()]

    def lock_image_tower(self, unlocked_groups: int = 0) -> None:
        """Freeze the image tower except its last ``unlocked_groups`` groups (0 freezes everything; more than
        there are unlocks all groups); the head always stays frozen, ``logit_scale`` is untouched."""
        self.image_tower.lock(unlocked_groups)

    def lock_text_tower(self) -> None:
        """Freeze the text tower (embeddings, transformer, final norm, projection); ``logit_scale`` stays
        trainable."""
        self.text_tower.lock()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Activation checkpointing of the image and text blocks."""
        self.image_tower.set_grad_checkpointing(enable)
        self.text_tower.set_grad_checkpointing(enable)

    # ------------------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor | None = None, text: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor | None]:
        """Normalized image and/or text embeddings plus ``logit_scale.exp()``.

        Returns:
            ``{'image_features': (B, D) | None, 'text_features': (N, D) | None, 'logit_scale': ()}``.
        """
        return dict(image_features=self.encode_image(images) if images is not None else None,
                    text_features=self.encode_text(text) if text is not None else None,
                    logit_scale=self.logit_scale.exp())


class OpenCLIPWrapper(TowerCLIP):
    """A :class:`TowerCLIP` around an upstream open_clip model held as ``self.clip`` (``CLIP`` or
    ``CustomTextCLIP``; state-dict keys ``clip.*`` in open_clip's names)."""

    @property
    def visual(self) -> nn.Module:
        """The open_clip image tower module."""
        return self.clip.visual

    @property
    def logit_scale(self) -> nn.Parameter:
        """The learned (log) temperature, a scalar parameter."""
        return self.clip.logit_scale
