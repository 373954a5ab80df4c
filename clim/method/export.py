"""Exporting the trained CLIP as a weight-space ensemble with the original one, every epoch.

``w = alpha * w_trained + (1 - alpha) * w_original`` (CLIM: alpha = 0.7; alpha >= 1 exports the
trained weights as they are). Only trainable parameters can differ from the original, so only
their original values are kept (on the CPU, captured when training starts); they are also stored
in MMEngine checkpoints so a resumed run ensembles with the same original weights.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS

from ..engine.grad_sync import sync_mode
from ..models.checkpoint import save_clip_checkpoint

__all__ = ['CLIPExportHook', 'ensemble_state_dict']

_CKPT_KEY = 'clip_export_original'


def ensemble_state_dict(trained: dict[str, torch.Tensor], original: dict[str, torch.Tensor],
                        alpha: float) -> dict[str, torch.Tensor]:
    """``alpha * trained + (1 - alpha) * original`` for keys in ``original``; other tensors copied.

    Computed in float32 and cast back to each tensor's dtype; returns CPU tensors.
    """
    out = {}
    for k, v in trained.items():
        v = v.detach().cpu()
        if alpha < 1 and k in original and v.is_floating_point():
            w = alpha * v.float() + (1.0 - alpha) * original[k].float()
            out[k] = w.to(v.dtype)
        else:
            out[k] = v.clone()
    return out


def _unwrap(model: Any) -> Any:
    return model.module if is_model_wrapper(model) else model


class _State:
    """Duck-typed module for ``save_clip_checkpoint``: it saves ``state_dict()``."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        self._state = state

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._state


@HOOKS.register_module()
class CLIPExportHook(Hook):
    """Write ``<work_dir>/clip_epoch_<n>.pt`` and ``clip_latest.pt`` after every ``interval`` epochs.

    The files are CLIM exports (``{'state_dict', 'clip_arch', 'meta'}``, written atomically) that
    ``CLIPModel(pretrained=...)`` loads directly, activation included. Exports of an ``HFTextCLIPModel``
    (UniMed-CLIP, BiomedCLIP) also record ``clip_arch['type']``; the registry paths that build a CLIP from
    a config (``ZooModel``, CLIM, F-ViT's backbone: :func:`clim.models.build_clip`) rebuild them
    with that class, also from a ``CLIPModel`` config.

    Args:
        alpha: ensemble weight of the trained model (>= 1: no ensembling).
        interval: export every ``interval`` epochs (and after the last one).
        out_dir: folder (default: the work dir).
        save_latest: also write ``clip_latest.pt``.
        eval_ensemble: evaluate the ensembled weights in the validation loop during training (the
            trained ones are restored afterwards), as the reference evaluates the exported model.
    """

    priority = 'LOW'

    def __init__(self, alpha: float = 0.7, interval: int = 1, out_dir: str | None = None,
                 save_latest: bool = True, eval_ensemble: bool = True) -> None:
        if alpha < 0:
            raise ValueError(f'alpha must be >= 0, got {alpha}')
        self.alpha = float(alpha)
        self.interval = int(interval)
        self.out_dir = out_dir
        self.save_latest = save_latest
        self.eval_ensemble = eval_ensemble
        self.original: dict[str, torch.Tensor] | None = None
        self._trained_backup: dict[str, torch.Tensor] | None = None

    @staticmethod
    def _clip(runner) -> Any:
        model = _unwrap(runner.model)
        clip = getattr(model, 'clip', None)
        if clip is None or not hasattr(clip, 'clip_arch'):
            raise TypeError(f'CLIPExportHook needs a model with a CLIPModel at `.clip`, '
                            f'got {type(model).__name__}')
        return clip

    # -- keeping the original weights -------------------------------------------------------------
    def before_train(self, runner) -> None:
        if self.original is not None:  # restored from a checkpoint (resume)
            return
        clip = self._clip(runner)
        self.original = {k: p.detach().cpu().clone() for k, p in clip.clip.named_parameters()
                         if p.requires_grad}

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.original is not None:
            checkpoint[_CKPT_KEY] = self.original

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if _CKPT_KEY in checkpoint:
            self.original = {k: v.detach().cpu() for k, v in checkpoint[_CKPT_KEY].items()}

    # -- export ---------------------------------------------------------------------------------------
    def ensembled_state(self, runner) -> dict[str, torch.Tensor]:
        """The CLIP state dict (open_clip keys, CPU) to export."""
        return ensemble_state_dict(self._clip(runner).clip.state_dict(), self.original or {}, self.alpha)

    def after_train_epoch(self, runner) -> None:
        epoch = runner.epoch + 1
        if not (self.every_n_epochs(runner, self.interval) or self.is_last_train_epoch(runner)):
            return
        if not is_main_process():
            return
        clip = self._clip(runner)
        out_dir = Path(self.out_dir or runner.work_dir)
        meta = dict(epoch=epoch, iter=runner.iter, alpha=self.alpha, ensembled=self.alpha < 1,
                    method=type(_unwrap(runner.model)).__name__,
                    # 'reference': rank 0's replica of independent ones; 'synced': the one DDP model; None: 1 process
                    grad_sync=sync_mode(runner.model),
                    source=str(clip.pretrained) if clip.pretrained else None)
        path = save_clip_checkpoint(out_dir / f'clip_epoch_{epoch}.pt', _State(self.ensembled_state(runner)),
                                    clip.clip_arch, meta)
        if self.save_latest:
            latest = out_dir / 'clip_latest.pt'
            tmp = latest.with_name(f'.{latest.name}.tmp-{os.getpid()}')
            shutil.copyfile(path, tmp)
            os.replace(tmp, latest)
        print_log(f'exported CLIP (alpha={self.alpha}) to {path}', logger='current', level=logging.INFO)

    # -- evaluating the exported weights ----------------------------------------------------------------
    def before_val_epoch(self, runner) -> None:
        if not (self.eval_ensemble and self.alpha < 1 and self.original):
            return
        params = dict(self._clip(runner).clip.named_parameters())
        self._trained_backup = {}
        with torch.no_grad():
            for k, orig in self.original.items():
                p = params[k]
                self._trained_backup[k] = p.detach().clone()
                p.copy_((self.alpha * p.float() + (1.0 - self.alpha) * orig.to(p.device).float()).to(p.dtype))

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        if self._trained_backup is None:
            return
        params = dict(self._clip(runner).clip.named_parameters())
        with torch.no_grad():
            for k, v in self._trained_backup.items():
                params[k].copy_(v)
        self._trained_backup = None
