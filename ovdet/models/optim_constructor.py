"""An optimizer-wrapper constructor that hands the optimizer only the parameters that train."""
from __future__ import annotations

import inspect

from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from torch import nn

__all__ = ['TrainableParamsOptimWrapperConstructor']


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableParamsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """:class:`DefaultOptimWrapperConstructor` without the frozen parameters.

    MMEngine's default constructor gives the optimizer every parameter, ``requires_grad=False`` ones
    included (with ``paramwise_cfg`` it even logs them as skipped but still adds them). A frozen
    CLIP (F-ViT's backbone) must not be there at all: no optimizer state for ~150M parameters, and no
    way for weight decay or a later ``requires_grad`` flip to move it. ``paramwise_cfg`` works as
    in the default constructor.

    Input: the model; output: an optim wrapper over ``[p for p in model.parameters() if p.requires_grad]``.
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        if hasattr(model, 'module'):
            model = model.module
        wrapper_cfg = self.optim_wrapper_cfg.copy()
        wrapper_cfg.setdefault('type', 'OptimWrapper')
        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cls = optimizer_cfg['type']
        if isinstance(optimizer_cls, str):
            with OPTIMIZERS.switch_scope_and_registry(None) as registry:
                optimizer_cls = registry.get(optimizer_cls)
        # Some optimizers name their first argument differently (e.g. model_params).
        first_arg = next(iter(inspect.signature(optimizer_cls).parameters))
        if not self.paramwise_cfg:
            params = [p for p in model.parameters() if p.requires_grad]
        else:
            groups: list[dict] = []
            self.add_params(groups, model)
            params = [g for g in groups if all(p.requires_grad for p in g['params'])]
        if not params:
            raise ValueError('the model has no trainable parameters')
        optimizer_cfg[first_arg] = params
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(wrapper_cfg, default_args=dict(optimizer=optimizer))
