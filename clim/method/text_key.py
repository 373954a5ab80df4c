"""The identity of a frozen text tower's caption features: what a precomputed feature file must match.

A caption's feature is a function of (caption text, tokenizer + context length, text-tower weights, how
the forward runs). :class:`TextFeatureKey` names that function by a string such as
``CLIPModel/ctx77/trimmed/sha256:<64 hex>`` (the hash covers every text-tower weight and buffer: names,
dtypes, shapes and bytes), so a feature file written for other weights, another tokenizer length or the
other forward can never be served.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

__all__ = ['TEXT_FORWARDS', 'TextFeatureKey', 'text_tower_tensors', 'text_tower_trains']

# 'trimmed': the causal text transformer only up to the batch's longest end-of-text token;
# 'full': every context position, as open_clip's encode_text (the reference's computation).
TEXT_FORWARDS = ('trimmed', 'full')

# Entries of the wrapped open_clip module that are not the text tower.
_NOT_TEXT = ('visual.', 'logit_scale', 'logit_bias')


def text_tower_tensors(clip: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) of every text-tower parameter and buffer of a ``CLIPModel`` / ``HFTextCLIPModel``,
    sorted by name (everything of the wrapped open_clip module but the image tower and logit scale/bias)."""
    inner = clip.clip
    named = dict(inner.named_parameters())
    named.update(inner.named_buffers())
    return sorted((k, v) for k, v in named.items() if not k.startswith(_NOT_TEXT))


def text_tower_trains(clip: nn.Module) -> bool:
    """Whether any text-tower parameter requires grad (its caption features change every step)."""
    return any(t.requires_grad for _, t in text_tower_tensors(clip))


class TextFeatureKey:
    """The key of a CLIP's caption features; recomputed only when a text-tower tensor changed.

    Args:
        clip: a ``CLIPModel`` (or ``HFTextCLIPModel``).
        text_forward: ``'trimmed'`` or ``'full'`` (see ``TEXT_FORWARDS``).

    Calling it returns the key string. Hashing ViT-B/16's text tower takes ~0.3 s, so the hash is
    cached and redone only when a tensor's in-place version counter moved (``load_state_dict``,
    an optimizer step, ``copy_``) or a tensor was replaced.
    """

    def __init__(self, clip: nn.Module, text_forward: str) -> None:
        if text_forward not in TEXT_FORWARDS:
            raise ValueError(f'text_forward must be one of {TEXT_FORWARDS}, got {text_forward!r}')
        self.clip = clip
        self.text_forward = text_forward
        self._state: tuple | None = None
        self._key = ''

    def _versions(self) -> tuple:
        return tuple((k, id(t), t._version) for k, t in text_tower_tensors(self.clip))

    def __call__(self) -> str:
        state = self._versions()
        if state != self._state:
            digest = hashlib.sha256()
            for name, t in text_tower_tensors(self.clip):
                t = t.detach().cpu().contiguous()
                digest.update(f'{name}|{t.dtype}|{tuple(t.shape)}|'.encode())
                digest.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b'')
            tokenizer = getattr(self.clip, 'tokenizer_dir', None)  # HF text towers bring their own
            tokenizer = f'/{Path(str(tokenizer)).name}' if tokenizer is not None else ''
            self._key = (f'{type(self.clip).__name__}{tokenizer}/ctx{self.clip.context_length}/'
                         f'{self.text_forward}/sha256:{digest.hexdigest()}')
            self._state = state
        return self._key
