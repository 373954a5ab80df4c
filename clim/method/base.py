"""What the CLIM model and plain CLIP pre-training share: the CLIP, caption tokens, the loss, evaluation."""
from __future__ import annotations

import logging
from typing import Any

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel


from ..evaluation.region_model import RegionClassifier
from ..models.attention_layout import fold_attention_inputs
from ..models.factory import build_clip
from .data_preprocessor import build_data_preprocessor
from .loss import ContrastiveLoss
from .text_key import TextFeatureKey, text_tower_trains

__all__ = ['ContrastiveCLIPBase']


class ContrastiveCLIPBase(BaseModel):
    """A :class:`~clim.models.CLIPModel` trained with the cross-rank contrastive loss.

    Subclasses define :meth:`image_features` (and which weights train). ``forward`` follows
    MMEngine: ``mode='loss'`` -> ``{'loss_contrast', 'logit_scale'}``; ``mode='predict'`` ->
    region-recognition predictions on ground-truth regions (the val loop); ``mode='tensor'`` ->
    ``(image_features (B, D), text_features (B, D))``.

    Caption features come from the text forward of the step, or, when the samples carry them
    (``AddCaptionFeatures`` in the pipeline, a file of ``tools/precompute_caption_features.py``), from
    that file: only for a frozen text tower, and only when the file's key is this text tower's (its
    weights, context length and ``text_forward``); anything else is an error, never a stale feature.

    Args:
        clip: a CLIP config for :func:`clim.models.build_clip` (``type`` ``'CLIP'``, or the older
            ``'CLIPModel'`` / ``'HFTextCLIPModel'`` / ``'ZooModel'``): the class follows the weights (EVA-02,
            Hugging Face text towers, CLIM exports of either).
        contrast_weight: loss weight.
        grad_checkpointing: activation checkpointing in the CLIP transformers.
        fold_frozen_attention: attention of blocks that run without autograd (frozen blocks, the frozen text
            tower) projects its input with one matrix product instead of open_clip / torch's weight-broadcast
            batched product (:mod:`clim.models.attention_layout`; CPU only): the same function, rounding-level
            differences, faster (why: see docs/performance.md#frozen-attention-input-layout). False: the
            upstream kernels.
        region_eval: :class:`~clim.evaluation.RegionClassifier` options for ``predict``.
        data_preprocessor: default ``CLIMDataPreprocessor``.
    """

    def __init__(self, clip: dict, contrast_weight: float = 1.0, grad_checkpointing: bool = False,
                 region_eval: dict | None = None, data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None, fold_frozen_attention: bool = True) -> None:
        # Built from mmdet's registry here: BaseModel would look in mmengine's, which only finds our
        # preprocessor when a Runner has set the default scope.
        super().__init__(data_preprocessor=build_data_preprocessor(data_preprocessor), init_cfg=init_cfg)
        self.clip = build_clip(clip)
        if grad_checkpointing:
            self.clip.set_grad_checkpointing(True)
        self.fold_frozen_attention = bool(fold_frozen_attention)
        if self.fold_frozen_attention:
            fold_attention_inputs(self.clip)
        self.loss_fn = ContrastiveLoss(loss_weight=contrast_weight)
        self.region_classifier = RegionClassifier(**(region_eval or {}))
        self._warned_pipeline_tokens = False
        self.text_forward = 'full'  # how text_features runs the text tower (CLIM: an option)
        self._text_key: TextFeatureKey | None = None

    def text_feature_key(self) -> str:
        """The key a precomputed caption-feature file must carry to be served to this model."""
        if self._text_key is None or self._text_key.text_forward != self.text_forward:
            self._text_key = TextFeatureKey(self.clip, self.text_forward)
        return self._text_key()

    # ------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> ContrastiveCLIPBase:
        # Class embeddings are cached for evaluation; after training they may be stale.
        self.region_classifier.reset()
        super().train(mode)
        text = getattr(getattr(self.clip, 'clip', None), 'text', None)  # a Hugging Face text tower (HFTextCLIPModel)
        if text is not None and not any(p.requires_grad for p in text.parameters()):
            # A frozen BERT must give the same caption features every step: its dropout (active in train
            # mode) would turn the contrastive targets into noise. open_clip's own text transformer has no
            # dropout, so CLIPModel needs (and gets) nothing here.
            text.eval()
        return self

    def caption_tokens(self, data_samples: list) -> torch.Tensor:
        """(B, L) token ids of the samples' captions, from the CLIP's own tokenizer.

        CLIPs with the open_clip BPE tokenizer take the pipeline's ``text`` field (``TokenizeCaption``),
        or tokenize ``caption`` here when it is absent. CLIPs with their own tokenizer
        (``clip.tokenizes_captions``: Hugging Face text towers, e.g. BiomedCLIP's WordPiece at 256 tokens)
        always tokenize the raw ``caption`` of the metainfo: BPE ids from the pipeline would index the
        wrong vocabulary without any error.
        """
        if getattr(self.clip, 'tokenizes_captions', False):
            return self._own_caption_tokens(data_samples)
        if all(hasattr(s, 'text') for s in data_samples):
            tokens = torch.stack([s.text for s in data_samples])
        else:
            tokens = self.clip.tokenize([s.metainfo['caption'] for s in data_samples])
        if tokens.shape[1] != self.clip.context_length:
            raise ValueError(f'caption tokens have length {tokens.shape[1]} but the text tower\'s context '
                             f'length is {self.clip.context_length}: set TokenizeCaption(context_length='
                             f'{self.clip.context_length}) in the pipeline')
        return tokens.to(self.clip.logit_scale.device)

    def _own_caption_tokens(self, data_samples: list) -> torch.Tensor:
        """(B, L) ids of ``metainfo['caption']`` from ``clip.tokenize`` (L: the model's context length)."""
        lacking = [i for i, s in enumerate(data_samples) if 'caption' not in s.metainfo]
        if lacking:
            raise ValueError(f'{type(self.clip).__name__} tokenizes captions itself, but samples {lacking[:5]} have '
                             f"no 'caption' in their metainfo: keep 'caption' in PackCaptionInputs' meta_keys")
        if not self._warned_pipeline_tokens and any(hasattr(s, 'text') for s in data_samples):
            # Harmless but wasted work in the data workers: say once that the pipeline's ids are unused.
            print_log(f'{type(self.clip).__name__} tokenizes the captions with its own tokenizer; the caption '
                      f"pipeline's TokenizeCaption output is ignored (drop it from the pipeline)",
                      logger='current', level=logging.INFO)
            self._warned_pipeline_tokens = True
        return self.clip.tokenize([s.metainfo['caption'] for s in data_samples])

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, D) L2-normalized features of the batch, row i pairing with caption i."""
        raise NotImplementedError

    def text_features(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, D) L2-normalized caption features."""
        return self.clip.encode_text(tokens, normalize=True)

    def extract_features(self, images: torch.Tensor,
                         tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(image_features (B, D), text_features (B, D)), both float32 and L2-normalized."""
        return self.image_features(images).float(), self.text_features(tokens).float()

    def caption_features(self, data_samples: list) -> torch.Tensor:
        """(B, D) float32 L2-normalized features of the samples' captions: the precomputed ones the samples
        carry (checked against this text tower), else the text forward of :meth:`text_features`."""
        carried = [hasattr(s, 'text_features') for s in data_samples]
        if not any(carried):
            return self.text_features(self.caption_tokens(data_samples)).float()
        files = sorted({str(s.metainfo.get('text_features_file'))
                        for s, has in zip(data_samples, carried) if has})
        if not all(carried):
            raise ValueError(f'only {sum(carried)} of {len(carried)} samples carry precomputed caption features '
                             f'({files}): every sample of a batch must come through AddCaptionFeatures')
        if text_tower_trains(self.clip):
            raise ValueError(f'the text tower trains, so precomputed caption features ({files}) would be stale '
                             f'after the first step: remove AddCaptionFeatures from the pipeline')
        mine = self.text_feature_key()
        wrong = sorted({(str(s.metainfo.get('text_features_file')), s.metainfo.get('text_features_key'))
                        for s in data_samples if s.metainfo.get('text_features_key') != mine})
        if wrong:
            raise ValueError(f'caption features of {wrong[0][0]} were computed with text tower {wrong[0][1]!r}, '
                             f'but this model\'s is {mine!r} (other weights, context length or text_forward): '
                             f'rerun tools/precompute_caption_features.py for this config')
        feats = torch.stack([s.text_features for s in data_samples])
        return feats.to(self.clip.logit_scale.device, torch.float32)

    def loss(self, inputs: torch.Tensor, data_samples: list) -> dict[str, torch.Tensor]:
        img, txt = self.image_features(inputs).float(), self.caption_features(data_samples)
        scale = self.clip.logit_scale.exp()
        return dict(loss_contrast=self.loss_fn(img, txt, scale), logit_scale=scale.detach())

    def forward(self, inputs: torch.Tensor, data_samples: list | None = None, mode: str = 'loss') -> Any:
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.region_classifier.predict(self.clip, inputs, data_samples)
        if mode == 'tensor':
            return self.image_features(inputs).float(), self.caption_features(data_samples)
        raise ValueError(f'unknown mode {mode!r}; expected "loss", "predict" or "tensor"')
