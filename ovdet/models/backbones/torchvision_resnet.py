"""A torchvision ResNet as an mmdet backbone, loading torchvision's own checkpoint file offline
(``ckpt/checkpoints/resnet18-f37072fd.pth``, the torch hub cache layout)."""
from __future__ import annotations

import os.path as osp
from collections.abc import Sequence

import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

__all__ = ['TorchvisionResNet']


@MODELS.register_module()
class TorchvisionResNet(BaseModule):
    """torchvision ``resnet{depth}`` -> stage outputs at strides 4, 8, 16, 32.

    Args:
        depth: 18, 34, 50, 101 or 152.
        pretrained: torchvision state-dict file (``resnet18-f37072fd.pth``) or a zoo name; None: random.
            Loaded strictly (the classifier keys included), then the classifier is dropped.
        out_indices: stages to return (0-3).
        frozen_stages: stem + this many stages frozen (-1: none).
        norm_eval: keep BatchNorm in eval mode while training.
    """

    def __init__(self, depth: int = 18, pretrained: str | None = None, out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = 1, norm_eval: bool = True, init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg)
        import torchvision

        net = torchvision.models.get_model(f'resnet{depth}', weights=None)
        if pretrained:
            from clim.models.hub import find_entry, resolve_entry

            entry = find_entry(name=str(pretrained)) or find_entry(path=str(pretrained))
            path = str(resolve_entry(entry)) if entry is not None else str(pretrained)
            if not osp.isfile(path):
                raise FileNotFoundError(f"ResNet weights '{path}' not found. See ckpt/README.md.")
            net.load_state_dict(torch.load(path, map_location='cpu', weights_only=True), strict=True)
        self.pretrained = pretrained
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layers = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        block = net.layer1[0]
        expansion = getattr(type(block), 'expansion', 1)
        self.out_channels = [64 * 2 ** i * expansion for i in self.out_indices]
        self._freeze()

    def init_weights(self) -> None:
        """Nothing to initialize: weights come from torchvision's init or the checkpoint."""

    def _freeze(self) -> None:
        if self.frozen_stages >= 0:
            self.stem.requires_grad_(False)
            for i in range(self.frozen_stages):
                self.layers[i].requires_grad_(False)

    def train(self, mode: bool = True) -> TorchvisionResNet:
        super().train(mode)
        if mode and self.frozen_stages >= 0:
            self.stem.eval()
            for i in range(self.frozen_stages):
                self.layers[i].eval()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        x = self.stem(x)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
