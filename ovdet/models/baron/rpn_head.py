"""BARON-KD's RPN head: the objectness branch reads the detached FPN level."""
from __future__ import annotations

import torch.nn.functional as F
from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS
from torch import Tensor, nn

__all__ = ['DetachedObjectnessRPNHead']


@MODELS.register_module()
class DetachedObjectnessRPNHead(RPNHead):
    """:class:`RPNHead` whose objectness branch ``rpn_cls`` = [3x3 conv, ReLU, 1x1 conv] reads the
    **detached** output of the shared 3x3 conv + ReLU (``rpn_conv``), which the box regressor ``rpn_reg``
    reads as usual. So the objectness loss trains only ``rpn_cls``, never ``rpn_conv``, the FPN or the
    backbone. Layer names as in the reference (``rpn_cls.0`` / ``rpn_cls.2``), so its checkpoints load.

    Shapes:
        forward_single: (B, C, H, W) -> (objectness (B, A, H, W), deltas (B, 4A, H, W)).
    """

    def _init_layers(self) -> None:
        if self.num_convs != 1:
            raise ValueError('DetachedObjectnessRPNHead has one shared conv (num_convs=1)')
        super()._init_layers()
        self.rpn_cls = nn.Sequential(nn.Conv2d(self.feat_channels, self.feat_channels, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(self.feat_channels, self.num_base_priors * self.cls_out_channels, 1))

    def forward_single(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = F.relu(self.rpn_conv(x))
        return self.rpn_cls(x.detach()), self.rpn_reg(x)
