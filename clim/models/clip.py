"""``CLIPModel``: the one CLIP wrapper CLIM training, region evaluation, F-ViT and BARON share.

It holds an upstream open_clip ``CLIP`` (``self.clip``, open_clip key names) and adds offline loading
of every checkpoint format, dense / region features, the reference layer locking and text helpers.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from open_clip.modified_resnet import ModifiedResNet
from open_clip.transformer import VisionTransformer
from torch import nn

from . import dense as D
from .checkpoint import check_state_dict, infer_model_cfg, load_clip_state
from .templates import encode_prompt_ensemble
from .towers.text import OpenCLIPTextTower

__all__ = ['CLIPModel']

logger = logging.getLogger(__name__)


def _resolve_arch(model_name: str | None, model_cfg: Mapping | None, info: Mapping[str, Any],
                  state: Mapping[str, torch.Tensor] | None) -> tuple[str | None, dict]:
    """Architecture source, first found: explicit model_cfg, explicit model_name, the file's own
    ``clip_arch``, inference from the state dict."""
    if model_cfg is not None:
        return model_name, copy.deepcopy(dict(model_cfg))
    name = model_name or info.get('model_name')
    if model_name is None and info.get('model_cfg'):
        return name, copy.deepcopy(dict(info['model_cfg']))
    if name is not None:
        cfg = open_clip.get_model_config(name.replace('/', '-'))
        if cfg is None:
            raise ValueError(f'unknown open_clip model name {name!r}; known: {open_clip.list_models()}')
        return name, cfg
    if state is not None:
        return None, infer_model_cfg(state)
    raise ValueError('CLIPModel needs model_name, model_cfg or a pretrained checkpoint that carries its '
                     'architecture')


@MODELS.register_module()
class CLIPModel(BaseModule):
    """An open_clip CLIP with the project's loading, dense-feature and locking conventions.

    Args:
        model_name: an open_clip model name (``'ViT-B-16'``, ``'ViT-L-14-336'``, ``'RN50x64'``, ...).
        model_cfg: an open_clip model-config dict (``embed_dim``, ``vision_cfg``, ``text_cfg``,
            ``quick_gelu``), used instead of the name.
        pretrained: path to an OpenAI ``.pt`` (TorchScript or state dict), an open_clip checkpoint or a
            CLIM export. Without model_name / model_cfg the architecture comes from the file.
        quick_gelu: activation override. ``None`` (default): QuickGELU when the file says so (OpenAI
            files, CLIM exports record it), else the config's ``quick_gelu``.
        init_cfg: mmengine init config (the weights themselves are loaded at construction).
        loaded: ``(state_dict, info)`` of ``pretrained`` already read by
            :func:`~clim.models.checkpoint.load_clip_state` (the factory reads each file once).

    Attributes:
        clip: the open_clip ``CLIP`` module (open_clip key names).
        clip_arch: ``{'model_name', 'model_cfg', 'quick_gelu'}`` as stored in exports.
    """

    def __init__(self, model_name: str | None = None, model_cfg: Mapping | None = None,
                 pretrained: str | None = None, quick_gelu: bool | None = None,
                 init_cfg: dict | list | None = None,
                 loaded: tuple[Mapping[str, torch.Tensor], Mapping[str, Any]] | None = None) -> None:
        super().__init__(init_cfg)
        if pretrained:
            # Hub-cache folders, hf-hub: ids and zoo names -> the weight file (plain files unchanged).
            from .hub import resolve_pretrained
            pretrained = resolve_pretrained(pretrained)
        if loaded is not None:  # read by the factory (clim.models.build_clip): each file is read once
            state, info = dict(loaded[0]), dict(loaded[1])
        else:
            state, info = load_clip_state(pretrained) if pretrained else (None, {})
        name, cfg = _resolve_arch(model_name, model_cfg, info, state)
        if quick_gelu is None:
            quick_gelu = info.get('quick_gelu')
            if quick_gelu is None:
                quick_gelu = bool(cfg.get('quick_gelu', False))
                if pretrained and not quick_gelu:
                    # e.g. open_clip-format fine-tunes of OpenAI weights: the file cannot tell.
                    logger.warning('%s does not record its activation; using GELU from the config. If these '
                                   'weights descend from OpenAI CLIP, pass quick_gelu=True (or a '
                                   '"-quickgelu" model name).', pretrained)
        elif info.get('quick_gelu') is not None and bool(quick_gelu) != bool(info['quick_gelu']):
            logger.warning('quick_gelu=%s overrides the activation recorded for %s (quick_gelu=%s)',
                           quick_gelu, pretrained, info['quick_gelu'])
        cfg['quick_gelu'] = bool(quick_gelu)
        if cfg.get('custom_text') or cfg.get('text_cfg', {}).get('hf_model_name') or \
                'multimodal_cfg' in cfg or cfg.get('vision_cfg', {}).get('timm_model_name'):
            raise NotImplementedError('CLIPModel supports standard open_clip CLIP models (ViT or '
                                      'ModifiedResNet image tower, built-in text transformer)')
        build_cfg = {k: v for k, v in cfg.items() if k != 'custom_text'}
        self.clip = open_clip.CLIP(**build_cfg)
        if state is not None:
            self.clip.load_state_dict(check_state_dict(self.clip, state, pretrained), strict=True)
        self.text_tower = OpenCLIPTextTower(self.clip)
        self.model_name = name
        self.model_cfg = cfg
        self.quick_gelu = bool(quick_gelu)
        self.pretrained = pretrained
        self.checkpoint_format = info.get('format')
        self.checkpoint_meta = info.get('meta', {})

    # ------------------------------------------------------------------------------------------
    # properties
    # ------------------------------------------------------------------------------------------
    @property
    def clip_arch(self) -> dict[str, Any]:
        """What an export must carry to rebuild this architecture (activation included)."""
        return dict(model_name=self.model_name, model_cfg=copy.deepcopy(self.model_cfg),
                    quick_gelu=self.quick_gelu)

    @property
    def visual(self) -> nn.Module:
        """The open_clip image tower."""
        return self.clip.visual

    @property
    def logit_scale(self) -> nn.Parameter:
        """The learned (log) temperature, a scalar parameter."""
        return self.clip.logit_scale

    @property
    def embed_dim(self) -> int:
        """D, the joint embedding dimension."""
        return self.text_tower.embed_dim

    @property
    def text_width(self) -> int:
        """Width of the text transformer (the pseudo-word dimension)."""
        return self.text_tower.width

    @property
    def tokenizes_captions(self) -> bool:
        """Whether captions must be tokenized by :meth:`tokenize` (the text tower's own tokenizer, e.g. an HF
        WordPiece) rather than by the caption pipeline's BPE ``TokenizeCaption``."""
        return self.text_tower.tokenizes_captions

    @property
    def vision_width(self) -> int:
        """Width of the ViT (channels of ``vit_tokens`` maps); the final ResNet width for RN CLIPs."""
        if isinstance(self.visual, VisionTransformer):
            return int(self.visual.transformer.width)
        return int(self.visual.attnpool.v_proj.in_features)

    @property
    def context_length(self) -> int:
        """Text context length L."""
        return self.text_tower.context_length

    @property
    def stride(self) -> int:
        """Input pixels per dense-map cell (ViT patch size; 32 for Modified ResNets)."""
        if isinstance(self.visual, VisionTransformer):
            return int(self.visual.patch_size[0])
        return 32

    @property
    def image_size(self) -> tuple[int, int]:
        """The native (training) input size (H, W)."""
        size = self.visual.image_size
        return (size, size) if isinstance(size, int) else tuple(size)

    @property
    def is_vit(self) -> bool:
        """Whether the image tower is a ViT."""
        return isinstance(self.visual, VisionTransformer)

    # ------------------------------------------------------------------------------------------
    # image side
    # ------------------------------------------------------------------------------------------
    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Ordinary CLIP image embedding (class-token / attention-pool path).

        Args:
            images: (B, 3, H, W) normalized images; any size multiple of the patch size for a ViT
                (positional embeddings interpolated when it is not the native size).

        Returns:
            (B, D), L2-normalized when ``normalize``.
        """
        visual = self.visual
        if tuple(images.shape[-2:]) == self.image_size:
            feats = visual(images)
        elif not self.is_vit:
            feats = D.resnet_pool(visual, images)
        else:
            # Off the native size: the same forward with interpolated positional embeddings.
            D.check_vit(visual)
            x, _ = D.vit_embed(visual, images)
            x, _ = D.vit_forward_blocks(visual, x, list(visual.transformer.resblocks))
            feats = visual.ln_post(x[:, 0])
            if visual.proj is not None:
                feats = feats @ visual.proj.to(feats.dtype)
        return F.normalize(feats, dim=-1) if normalize else feats

    def dense_features(self, images: torch.Tensor, mode: str = 'v2', normalize: bool = True) -> torch.Tensor:
        """Dense CLIP feature map.

        Args:
            images: (B, 3, H, W), H and W multiples of ``stride``.
            mode: ``'v2'`` (default; last block without query-key attention) or ``'plain'`` (ordinary
                last block, ViT only). Modified ResNets: attention-pool value path + projection.

        Returns:
            (B, D, H / stride, W / stride), L2-normalized per location when ``normalize``.
        """
        if self.is_vit:
            return D.vit_dense(self.visual, images, mode=mode, normalize=normalize)
        if mode != 'v2':
            raise ValueError(f'Modified-ResNet CLIPs only support dense mode "v2", got {mode!r}')
        return D.resnet_dense(self.visual, images, normalize=normalize)

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
            mode: ``'v2'`` / ``'plain'`` (RoIAlign on the dense map) or ``'v1'`` (mask attention
                pooling: the class token attends only to the patch tokens inside each box in the
                last block; ViT only).

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
        """Mean of a dense map inside masks.

        Args:
            dense: (B, D, h, w).
            masks: B tensors (n_i, h, w) bool (other resolutions are area-resampled to (h, w)).

        Returns:
            (sum n_i, D) float32, L2-normalized when ``normalize``.
        """
        return D.pool_masks(dense, masks, normalize=normalize)

    def mask_attention_pool(self, images: torch.Tensor, masks: Sequence[torch.Tensor]) -> torch.Tensor:
        """"v1" region features from masks at the patch grid (ViT only).

        Args:
            images: (B, 3, H, W).
            masks: B tensors (n_i, H / p, W / p) bool.

        Returns:
            (sum n_i, D), L2-normalized.
        """
        return D.vit_mask_attention_pool(self.visual, images, masks)

    def vit_tokens(self, images: torch.Tensor,
                   block_ids: Sequence[int]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Intermediate ViT token maps for F-ViT (the last block computed by the v2 block).

        Args:
            images: (B, 3, H, W).
            block_ids: 0-based block indices, e.g. ``(3, 5, 7, 11)`` for ViT-B/16.

        Returns:
            ``(maps, final)``: ``maps[i]`` (B, width, H / p, W / p) after block ``block_ids[i]``;
            ``final`` (B, width, H / p, W / p) the v2 last-block tokens before ln_post. Turn ``final``
            into the CLIP dense map with :meth:`project_dense`.
        """
        if not self.is_vit:
            raise ValueError('vit_tokens needs a ViT image tower')
        maps, final, _ = D.vit_v2_tokens(self.visual, images, block_ids)
        return maps, final

    def project_dense(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """ln_post + visual projection per location.

        Args:
            tokens: (B, width, h, w), e.g. ``vit_tokens``' ``final``.

        Returns:
            (B, D, h, w), L2-normalized per location when ``normalize``.
        """
        return D.tokens_to_dense(self.visual, tokens, normalize=normalize)

    # ------------------------------------------------------------------------------------------
    # text side
    # ------------------------------------------------------------------------------------------
    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        """open_clip BPE tokenization at the model's context length.

        Returns:
            LongTensor (N, L) on the model's device.
        """
        return self.text_tower.tokenize(texts)

    def encode_text(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """CLIP text embedding of token ids.

        Args:
            tokens: LongTensor (N, L) from :meth:`tokenize`.

        Returns:
            (N, D), L2-normalized when ``normalize``.
        """
        return self.text_tower.encode(tokens, normalize=normalize)

    def encode_class_names(self, names: Sequence[str], templates: str | Sequence[str] | None = None,
                           batch_size: int = 256) -> torch.Tensor:
        """Prompt-ensemble class embeddings: mean of the normalized template embeddings, renormalized.

        Args:
            names: C class names.
            templates: ``None``/``'full'`` (80 prompts), ``'short'``, ``'none'`` or a list of strings
                with one ``{}``.
            batch_size: prompts per text forward.

        Returns:
            (C, D) L2-normalized.
        """
        return encode_prompt_ensemble(self, names, templates, batch_size)

    def encode_text_trimmed(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """:meth:`encode_text` run only up to the batch's longest end-of-text position.

        With the causal mask nothing after a sequence's EOT token reaches it, so the columns past the
        longest EOT are dead work (captions and prompts are far shorter than 77 tokens). The result is
        the same function; it is not bit-for-bit the untrimmed one (different kernel shapes round
        differently, ~1e-7 on float32).

        Args:
            tokens: LongTensor (N, L) from :meth:`tokenize`.

        Returns:
            (N, D), L2-normalized when ``normalize``.
        """
        return self.text_tower.encode_trimmed(tokens, normalize=normalize)

    def _encode_text_trimmed(self, tokens: torch.Tensor) -> torch.Tensor:
        # The earlier private name (tests of other areas call it).
        return self.encode_text_trimmed(tokens, normalize=True)

    def encode_pseudo_words(self, embeds: torch.Tensor, lengths: torch.Tensor | Sequence[int],
                            normalize: bool = True) -> torch.Tensor:
        """Run the text transformer on given token embeddings (BARON's pseudo words).

        Positional embeddings are added, the causal mask applied, and the feature at the last valid
        position (``lengths - 1``, as open_clip takes the EOT token) is projected.

        Args:
            embeds: (N, L, width) token embeddings, L <= context length; padding after ``lengths``.
            lengths: (N,) number of valid positions per sequence (>= 1).

        Returns:
            (N, D), L2-normalized when ``normalize``.
        """
        return self.text_tower.encode_pseudo_words(embeds, lengths, normalize=normalize)

    # ------------------------------------------------------------------------------------------
    # training controls
    # ------------------------------------------------------------------------------------------
    def image_groups(self) -> list[list[nn.Parameter]]:
        """Parameter groups of the image tower, in the reference CLIM order.

        ViT: [conv1 + class_embedding + ln_pre], [positional_embedding], then one per block.
        Modified ResNet: [stem], [layer1] .. [layer4]. ln_post / proj (ViT) and the attention pool
        (ResNet) belong to no group: they map into the text space and always stay frozen.
        """
        v = self.visual
        if isinstance(v, VisionTransformer):
            groups = [[v.conv1.weight, v.class_embedding, *v.ln_pre.parameters()], [v.positional_embedding]]
            groups += [list(b.parameters()) for b in v.transformer.resblocks]
            return groups
        if isinstance(v, ModifiedResNet):
            stem = [p for n, p in v.named_parameters() if n.split('.')[0] in ('conv1', 'bn1', 'conv2', 'bn2',
                                                                               'conv3', 'bn3')]
            return [stem] + [list(getattr(v, f'layer{i}').parameters()) for i in (1, 2, 3, 4)]
        raise NotImplementedError(f'no locking groups for {type(v).__name__}')

    def lock_image_tower(self, unlocked_groups: int = 0) -> None:
        """Freeze the image tower except its last ``unlocked_groups`` groups (see
        :meth:`image_groups`); ln_post and proj always stay frozen. ``logit_scale`` is untouched.

        Args:
            unlocked_groups: number of trailing groups left trainable (0 freezes everything;
                more than there are unlocks all groups).
        """
        if unlocked_groups < 0:
            raise ValueError(f'unlocked_groups must be >= 0, got {unlocked_groups}')
        for p in self.visual.parameters():
            p.requires_grad = False
        if unlocked_groups:
            for group in self.image_groups()[-unlocked_groups:]:
                for p in group:
                    p.requires_grad = True

    def lock_text_tower(self) -> None:
        """Freeze the text tower (token/positional embeddings, transformer, ln_final, text_projection).
        ``logit_scale`` stays trainable."""
        self.text_tower.lock()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Activation checkpointing of the transformer blocks (image and text)."""
        self.clip.set_grad_checkpointing(enable)

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
