"""BARON-KD's RPN head: the objectness branch reads the detached FPN level."""
from __future__ import annotations

import torch.nn.functional as F
from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS
from torch import Tensor, nn

__all__ = ['DetachedObjectnessRPNHead']


@MODELS.register_module()
class DetachedObjectnessRPNHead(RPNHead):
    """:class:`RPNHead` whose objectness runs on ``x.detach()`` through its own 3x3 conv + ReLU + 1x1
    (``cls_conv``, ``rpn_cls``); the box regressor reads the usual shared 3x3 conv (``rpn_conv``).
    So the objectness loss trains only ``cls_conv`` / ``rpn_cls``, never the backbone or FPN.

    Shapes:
        forward_single: (B, C, H, W) -> (objectness (B, A, H, W), deltas (B, 4A, H, W)).
    """

    def _init_layers(self) -> None:
        if self.num_convs != 1:
            raise ValueError('DetachedObjectnessRPNHead has one shared conv (num_convs=1)')
        super()._init_layers()
        self.cls_conv = nn.Conv2d(self.in_channels, self.feat_channels, 3, padding=1)

    def forward_single(self, x: Tensor) -> tuple[Tensor, Tensor]:
        reg = self.rpn_reg(F.relu(self.rpn_conv(x)))
        cls = self.rpn_cls(F.relu(self.cls_conv(x.detach())))
        return cls, reg
