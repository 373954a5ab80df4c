"""ViT tokens at one stride -> a 4-level pyramid (F-VLM / ViTDet's simple feature pyramid, before the FPN)."""
from __future__ import annotations

from collections.abc import Sequence

from mmcv.cnn import build_activation_layer, build_norm_layer
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

__all__ = ['SimplePyramid']


@MODELS.register_module()
class SimplePyramid(BaseModule):
    """Four token maps at stride 16 -> maps at strides 4, 8, 16, 32, one adapter per level.

    Stride 4: two 2x transposed convs with norm + activation between; stride 8: one 2x transposed conv;
    stride 16: identity; stride 32: 2x max-pool. Channels stay ``in_channels``. The adapters of F-ViT
    (CLIM's ``interpolate1`` / ``interpolate2``); the detector's FPN (or NAS-FPN) follows it in the
    neck list (``neck=[dict(type='SimplePyramid', ...), dict(type='FPN', ...)]``, mmdet's idiom for
    chained necks).

    Args:
        in_channels: channels of the token maps (the ViT width).
        norm_cfg: norm between the two stride-4 transposed convs (default SyncBN).
        act_cfg: activation there (default GELU).
        init_cfg: MMEngine init config of the adapters.

    Shapes:
        forward: 4 maps (B, in_channels, h, w), h = H / 16, w = W / 16 -> 4 maps
        (B, in_channels, h * 16 / s, w * 16 / s) for s = 4, 8, 16, 32.
    """

    strides: tuple[int, ...] = (4, 8, 16, 32)

    def __init__(self, in_channels: int, norm_cfg: dict | None = None, act_cfg: dict | None = None,
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg)
        width = in_channels
        self.in_channels = width
        norm_cfg = norm_cfg or dict(type='SyncBN', requires_grad=True)
        act_cfg = act_cfg or dict(type='GELU')
        self.adapters = nn.ModuleList([
            nn.Sequential(
                nn.ConvTranspose2d(width, width, kernel_size=2, stride=2),
                build_norm_layer(norm_cfg, width)[1],
                build_activation_layer(act_cfg),
                nn.ConvTranspose2d(width, width, kernel_size=2, stride=2)),
            nn.ConvTranspose2d(width, width, kernel_size=2, stride=2),
            nn.Identity(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        ])

    def forward(self, inputs: Sequence[Tensor]) -> tuple[Tensor, ...]:
        """4 maps (B, C, h, w) at stride 16 -> 4 maps at strides 4, 8, 16, 32."""
        if len(inputs) != len(self.adapters):
            raise ValueError(f'SimplePyramid takes {len(self.adapters)} token maps, got {len(inputs)}')
        return tuple(adapter(x) for adapter, x in zip(self.adapters, inputs))
