"""The base of the ViT detection backbones: a pretrained trunk kept frozen, read at fixed blocks."""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

__all__ = ['FrozenTrunkBackbone']


class FrozenTrunkBackbone(BaseModule):
    """A pretrained ViT trunk whose tokens after four blocks are the backbone's output, at stride 16.

    Subclasses build the trunk, call :meth:`_setup_trunk` and implement :meth:`trunk_tokens`
    (how they get the four token maps). This class keeps the trunk out of :meth:`init_weights` (its
    weights are loaded at construction), keeps a frozen trunk in eval mode through ``train()`` with
    ``requires_grad=False``, and places the token grid by :attr:`token_grid`:

    - ``'stride16'`` (default): a patch size other than 16 is mapped onto the stride-16 grid by resizing the
      input, so every level keeps its nominal stride (OpenAI F-ViT L/14, DINOv2);
    - ``'patch'``: the input runs as it is, the tokens sit at the patch stride p (the EVA F-ViT L/14
      reference: 896 px at patch 14 is a 64 x 64 grid; its pyramid strides are 3.5-28).

    The pyramid (strides / 4 .. x 2 of the token stride) is the neck's job
    (:class:`ovdet.models.necks.SimplePyramid`).

    Shapes:
        forward: images (B, 3, H, W), H and W multiples of the token stride s (16, or p with ``'patch'``) ->
        4 token maps (B, out_channels, H / s, W / s).
    """

    token_grid: str = 'stride16'
    trunk_name: str = ''  # the attribute holding the trunk, set by each subclass
    out_indices: tuple[int, ...]
    out_channels: int
    frozen: bool

    def _setup_trunk(self, num_blocks: int, out_indices: Sequence[int], out_channels: int, frozen: bool) -> None:
        """Check ``out_indices`` against the trunk's depth and freeze the trunk if ``frozen``."""
        if self.token_grid not in ('stride16', 'patch'):
            raise ValueError(f"token_grid must be 'stride16' or 'patch', got {self.token_grid!r}")
        ids = [i + num_blocks if i < 0 else i for i in out_indices]
        # Repeats are allowed (shallow test models); each level still gets its own adapter in the neck.
        if len(ids) != 4 or any(not 0 <= i < num_blocks for i in ids) or sorted(ids) != ids:
            raise ValueError(f'out_indices must be 4 non-decreasing block ids of a {num_blocks}-block ViT, '
                             f'got {tuple(out_indices)}')
        self.out_indices = tuple(ids)
        self.out_channels = out_channels
        self.frozen = frozen
        if frozen:
            self.trunk.requires_grad_(False)
            self.trunk.eval()

    @property
    def trunk(self) -> nn.Module:
        return self._modules[self.trunk_name]

    def train(self, mode: bool = True) -> FrozenTrunkBackbone:
        """Set the mode of everything but a frozen trunk, which stays in eval mode."""
        super().train(mode)
        if self.frozen:
            self.trunk.eval()
        return self

    def init_weights(self) -> None:
        """Initialize whatever the subclass adds; the trunk's weights (loaded at construction) are left alone."""
        # BaseModule.init_weights walks every submodule (a layer-typed init_cfg would hit the trunk's
        # convs / linears): take the trunk out of the tree while it runs, then restore the key order.
        trunk = self._modules.pop(self.trunk_name)
        try:
            super().init_weights()
        finally:
            rest = list(self._modules.items())
            self._modules.clear()
            self._modules.update([(self.trunk_name, trunk), *rest])

    def _to_token_grid(self, images: Tensor, patch_size: int) -> Tensor:
        """Check the input size; with ``token_grid='stride16'`` resize it so the ``patch_size`` grid is the
        stride-16 grid."""
        h, w = images.shape[-2:]
        s = 16 if self.token_grid == 'stride16' else patch_size
        if h % s or w % s:
            raise ValueError(f'input size {(h, w)} is not a multiple of the token stride {s} '
                             f'(token_grid={self.token_grid!r}); pad the batch (data_preprocessor.pad_size_divisor '
                             f'or a Pad transform to a multiple of {s})')
        if patch_size != s:
            # Every token map, and so every pyramid level, keeps its nominal stride.
            images = F.interpolate(images, size=(h // s * patch_size, w // s * patch_size), mode='bilinear',
                                   align_corners=False)
        return images

    def trunk_tokens(self, images: Tensor) -> list[Tensor]:
        """The 4 token maps (B, out_channels, H / s, W / s) after ``out_indices``."""
        raise NotImplementedError

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        """(B, 3, H, W) normalized images -> 4 token maps (B, out_channels, H / s, W / s)."""
        return tuple(self.trunk_tokens(images))
