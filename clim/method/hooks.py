"""Training hooks of contrastive CLIP training: clamping the learned temperature."""
from __future__ import annotations

import math

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS

__all__ = ['LogitScaleClampHook']


@HOOKS.register_module()
class LogitScaleClampHook(Hook):
    """Clamp every ``*logit_scale`` parameter to ``[min_value, max_value]`` after each training iteration.

    As open_clip's trainer does after each optimizer step: the (log) temperature may not exceed
    ln 100, i.e. logits are scaled by at most 100. Args: ``min_value`` (0), ``max_value`` (ln 100).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, min_value: float = 0.0, max_value: float = math.log(100.0)) -> None:
        self.min_value = float(min_value)
        self.max_value = float(max_value)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith('logit_scale'):
                    p.clamp_(self.min_value, self.max_value)
