"""The image-tower interface: what every CLIP image-tower family provides so the dense, region, F-ViT and
locking code can be written once.

A tower *adapter* is a plain object (not an ``nn.Module``) over the upstream module that owns the
parameters (open_clip's ``VisionTransformer``, a timm ``VisionTransformer`` / ``Eva`` trunk, ...). The
owning model registers that module under its usual name, so state-dict keys stay the upstream ones; the
adapter only knows how to run it. ``.to()`` / ``.half()`` move parameters in place, so the adapter never
needs rebinding.

Two levels:

- :class:`ImageTower`: any image tower (ViT or CNN): image embedding at any size, dense map, locking
  groups, stride, widths, grad checkpointing.
- :class:`ViTImageTower`: a class-token ViT. A family implements five small pieces (token embedding at any
  grid, running a range of blocks, the attention-free "v2" last block, final norm + projection per token,
  parameter groups); the algorithms built on them (image embedding, v2 / plain dense maps, intermediate
  token maps for F-ViT) are defined once here.

Shapes: ``B`` images, ``W`` tower width, ``D`` joint embedding dim, ``(h, w)`` the patch grid (input size
divided by the patch size), ``N = h * w`` patch tokens, ``T = 1 + N`` tokens with the class token first.
"""
from __future__ import annotations

import abc
from collections.abc import Collection, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['ImageTower', 'ViTImageTower', 'tokens_to_map', 'interpolate_pos_embed']


def interpolate_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int],
                          new_grid: tuple[int, int]) -> torch.Tensor:
    """Resize a ViT positional embedding to another patch grid.

    Args:
        pos_embed: (1 + gh * gw, W), class-token row first.
        grid: (gh, gw) the grid ``pos_embed`` was trained for.
        new_grid: (h, w) target grid.

    Returns:
        (1 + h * w, W): class row unchanged, patch rows resized bicubically (align_corners=False).
    """
    if tuple(new_grid) == tuple(grid):
        return pos_embed
    cls_pos, patch_pos = pos_embed[:1], pos_embed[1:]
    width = pos_embed.shape[-1]
    patch_pos = patch_pos.reshape(1, grid[0], grid[1], width).permute(0, 3, 1, 2)
    # bicubic is not implemented for every low-precision dtype on every device: resize in fp32.
    patch_pos = F.interpolate(patch_pos.float(), size=tuple(new_grid), mode='bicubic', align_corners=False)
    patch_pos = patch_pos.to(pos_embed.dtype).permute(0, 2, 3, 1).reshape(-1, width)
    return torch.cat([cls_pos, patch_pos], dim=0)


def tokens_to_map(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Patch tokens (B, N, C), row-major, as a contiguous (B, C, h, w) map (compiled ops such as mmcv's
    RoIAlign assume contiguous NCHW)."""
    b, n, c = tokens.shape
    if n != grid[0] * grid[1]:
        raise ValueError(f'{n} tokens do not fill a {grid} grid')
    return tokens.transpose(1, 2).reshape(b, c, grid[0], grid[1]).contiguous()


class ImageTower(abc.ABC):
    """Any CLIP image tower, as the rest of the project uses it.

    Args:
        module: the upstream ``nn.Module`` holding the tower's parameters (owned and registered by the
            model; the adapter keeps a reference only).
    """

    #: the tower family, as error messages name it
    family = 'image tower'

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    # -- geometry ---------------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def stride(self) -> int:
        """Input pixels per dense-map cell (the patch size of a ViT)."""

    @property
    @abc.abstractmethod
    def width(self) -> int:
        """W, channels of the tower's token / feature maps before the projection."""

    @property
    @abc.abstractmethod
    def embed_dim(self) -> int:
        """D, the joint (image-text) embedding dimension."""

    @property
    @abc.abstractmethod
    def image_size(self) -> tuple[int, int]:
        """The native (training) input size (H, W)."""

    @property
    def is_vit(self) -> bool:
        """Whether the tower is a transformer over patch tokens (see :class:`ViTImageTower`)."""
        return False

    # -- features ---------------------------------------------------------------------------------------
    @abc.abstractmethod
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The ordinary image embedding at any input size (multiple of ``stride``; positional embeddings
        resized off the native size).

        Args:
            images: (B, 3, H, W) normalized images.

        Returns:
            (B, D), not normalized.
        """

    @abc.abstractmethod
    def dense(self, images: torch.Tensor, mode: str = 'v2', normalize: bool = True) -> torch.Tensor:
        """Dense CLIP feature map.

        Args:
            images: (B, 3, H, W), H and W multiples of ``stride``.
            mode: ``'v2'`` (attention-free last block / value path) or, where the family has it,
                ``'plain'`` (the ordinary last block).

        Returns:
            (B, D, H / stride, W / stride), L2-normalized per location when ``normalize``.
        """

    def mask_attention_pool(self, images: torch.Tensor, masks: Sequence[torch.Tensor],
                            normalize: bool = True) -> torch.Tensor:
        """"v1" region features (CLIM): in the last block the class token attends only to the patch tokens
        inside each region. Only open_clip's ViT implements it (the references extract regions of other
        families from the v2 dense map).

        Args:
            images: (B, 3, H, W).
            masks: per image a (n_i, H / p, W / p) bool tensor at the patch grid.

        Returns:
            (sum n_i, D), L2-normalized when ``normalize``.
        """
        raise NotImplementedError(f'v1 (mask attention pooling) is implemented for open_clip ViT towers; this '
                                  f'model has a {self.family}: use v2 region features (mode="v2")')

    # -- training controls ------------------------------------------------------------------------------
    @abc.abstractmethod
    def param_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        """Named parameter groups in the order used for locking (the reference CLIM order: stem first,
        deepest block last); ``lock(n)`` leaves the last ``n`` groups trainable. Parameters that map into
        the text space (final norm + projection; a ResNet's attention pool) are in no group: they stay
        frozen (see :meth:`head_parameters`)."""

    @abc.abstractmethod
    def head_parameters(self) -> list[nn.Parameter]:
        """The parameters in no locking group (final norm, projection)."""

    def lock(self, unlocked_groups: int = 0) -> None:
        """Freeze the tower except its last ``unlocked_groups`` groups (0 freezes everything; more than
        there are unlocks every group). The head parameters always stay frozen."""
        if unlocked_groups < 0:
            raise ValueError(f'unlocked_groups must be >= 0, got {unlocked_groups}')
        for p in self.module.parameters():
            p.requires_grad = False
        if unlocked_groups:
            for _, group in self.param_groups()[-unlocked_groups:]:
                for p in group:
                    p.requires_grad = True

    @abc.abstractmethod
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Activation checkpointing of the tower's blocks (honoured by every forward of the adapter)."""


class ViTImageTower(ImageTower):
    """A class-token ViT tower. Families implement :meth:`embed`, :meth:`run_blocks`, :meth:`v2_block`,
    :meth:`head` (plus the geometry and :meth:`param_groups`); the feature algorithms below use only
    those."""

    #: whether :meth:`encode` runs the upstream module's own forward at the native size (its exact numbers,
    #: patch dropout in train mode included) and :meth:`encode_any_size` only off it
    upstream_encode_at_native = False

    @property
    def is_vit(self) -> bool:
        return True

    @property
    def stride(self) -> int:
        return self.patch_size

    @property
    @abc.abstractmethod
    def patch_size(self) -> int:
        """p, the (square) patch size."""

    @property
    @abc.abstractmethod
    def num_blocks(self) -> int:
        """L, the number of transformer blocks."""

    @property
    def native_grid(self) -> tuple[int, int]:
        """The patch grid of the native input size."""
        h, w = self.image_size
        return h // self.patch_size, w // self.patch_size

    def grid_of(self, images: torch.Tensor) -> tuple[int, int]:
        """The patch grid (h, w) of ``images`` (B, 3, H, W); raises if H or W is not a multiple of p."""
        p = self.patch_size
        if images.shape[-2] % p or images.shape[-1] % p:
            raise ValueError(f'image size {tuple(images.shape[-2:])} is not a multiple of the patch size {p}')
        return images.shape[-2] // p, images.shape[-1] // p

    # -- the pieces each family implements ---------------------------------------------------------------
    @abc.abstractmethod
    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Tokens ready for block 0, at the images' own grid.

        Args:
            images: (B, 3, H, W), H and W multiples of p.

        Returns:
            ``(x, (h, w))``: x (B, 1 + h * w, W): class token first, patch tokens row-major, positional
            embedding (resized to (h, w) when not native) added, pre-norm applied if the family has one.
            No patch dropout (dense features need every location).
        """

    @abc.abstractmethod
    def run_blocks(self, x: torch.Tensor, grid: tuple[int, int], blocks: range,
                   keep: Collection[int] = ()) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Run the ordinary blocks ``blocks`` (absolute indices, increasing) on ``x``.

        Args:
            x: (B, 1 + h * w, W) tokens at patch grid ``grid`` (rotary families build their tables for it).
            blocks: e.g. ``range(L - 1)``.
            keep: block indices whose outputs are returned too.

        Returns:
            ``(x, kept)``: tokens after the last block run, (B, T, W), and ``{index: (B, T, W)}``.
        """

    @abc.abstractmethod
    def v2_block(self, x: torch.Tensor) -> torch.Tensor:
        """The last block without query-key attention (every token attends only to itself):
        x + attn_out(V(norm1(x))), then x + mlp(norm2(x)), with the family's layer scale / sub-norms.

        Args:
            x: (B, n, W) tokens; each is processed independently (no positions needed).

        Returns:
            (B, n, W).
        """

    @abc.abstractmethod
    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        """Final norm + projection into the joint space, per token: (..., W) -> (..., D), not normalized."""

    # -- algorithms, once --------------------------------------------------------------------------------
    def _block_ids(self, block_ids: Sequence[int]) -> list[int]:
        n = self.num_blocks
        ids = [b + n if b < 0 else b for b in block_ids]
        if any(not 0 <= b < n for b in ids):
            raise ValueError(f'block id out of range for a {n}-block ViT: {list(block_ids)}')
        return ids

    def v2_tokens(self, images: torch.Tensor, block_ids: Sequence[int] = ()
                  ) -> tuple[list[torch.Tensor], torch.Tensor, tuple[int, int]]:
        """Intermediate token maps and the v2 last-block patch tokens (F-ViT's taps).

        Args:
            images: (B, 3, H, W).
            block_ids: 0-based block indices (negative count from the end); the last block's entry is the
                v2 block output.

        Returns:
            ``(maps, final, (h, w))``: ``maps[i]`` (B, W, h, w) after block ``block_ids[i]``; ``final``
            (B, W, h, w) the v2 patch tokens before the final norm.
        """
        ids = self._block_ids(block_ids)
        last = self.num_blocks - 1
        x, grid = self.embed(images)
        x, kept = self.run_blocks(x, grid, range(last), keep=[b for b in ids if b < last])
        # Tokens are independent in the v2 block: the class token is dropped before it.
        final = self.v2_block(x[:, 1:])
        patches = {i: t[:, 1:] for i, t in kept.items()}
        patches[last] = final
        return [tokens_to_map(patches[b], grid) for b in ids], tokens_to_map(final, grid), grid

    def project(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Final norm + projection per location.

        Args:
            tokens: (B, W, h, w), e.g. :meth:`v2_tokens`' ``final``.

        Returns:
            (B, D, h, w), L2-normalized over D when ``normalize``.
        """
        grid = (tokens.shape[-2], tokens.shape[-1])
        x = self.head(tokens.flatten(2).transpose(1, 2))
        if normalize:
            x = F.normalize(x, dim=-1)
        return tokens_to_map(x, grid)

    def dense(self, images: torch.Tensor, mode: str = 'v2', normalize: bool = True) -> torch.Tensor:
        if mode == 'v2':
            return self.project(self.v2_tokens(images)[1], normalize)
        if mode == 'plain':
            x, grid = self.embed(images)
            x, _ = self.run_blocks(x, grid, range(self.num_blocks))
            return self.project(tokens_to_map(x[:, 1:], grid), normalize)
        raise ValueError(f"dense mode must be 'v2' or 'plain' (v1 is a region pooling: use region_features), "
                         f'got {mode!r}')

    def encode_any_size(self, images: torch.Tensor) -> torch.Tensor:
        """The image embedding through :meth:`embed` / :meth:`run_blocks` / :meth:`head` (positional
        embeddings resized off the native grid): (B, 3, H, W) -> (B, D), not normalized."""
        x, grid = self.embed(images)
        x, _ = self.run_blocks(x, grid, range(self.num_blocks))
        return self.head(x[:, 0])

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        if self.upstream_encode_at_native and tuple(images.shape[-2:]) == self.image_size:
            return self.module(images)
        return self.encode_any_size(images)
