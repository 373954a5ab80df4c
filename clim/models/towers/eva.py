"""EVA-02 CLIP image tower: an adapter over upstream timm's ``Eva`` trunk (``eva02_base_patch16_clip_224``,
``eva02_large_patch14_clip_336``), plus the key converter from the EVA-CLIP release layout.

What the adapter computes (the reference spec's ``eva_clip.md``), at any patch grid (h, w):

- tokens: conv patch embed (bias), class token first, absolute positional embedding (patch rows resized
  bicubic, align_corners=False, **no antialias** as the reference does; timm's own dynamic size
  antialiases), no ln_pre;
- blocks: timm ``EvaBlock`` with the rotary table **recomputed** for (h, w): rows rotate the first half of
  each head, columns the second, position i of an axis of size s at ``i * 16 / s`` (EVA-CLIP's
  ``pt_hw_seq_len`` 16, timm's ``ref_feat_shape``). Square grids are the reference's. Non-square grids
  (the reference cannot run them; it pads inputs to square) use the same rule per axis (rows
  ``i * 16 / h``, columns ``j * 16 / w``), timm's generalisation;
- v2 last block: x += proj(inner_ln(Wv norm1(x) + v_bias)), x += mlp(norm2(x)) (no q/k, no RoPE);
- head: final LayerNorm ``norm`` then ``head`` (Linear with bias) per token.

Shapes as in :mod:`clim.models.towers.base`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .timm_trunk import TimmTrunkTower

__all__ = ['EvaImageTower', 'eva_rope_table', 'checkpoint_filter_fn', 'timm_to_eva_name', 'is_eva_release_layout',
           'is_rope_buffer']

# EVA-CLIP release name -> timm name, for the part of a key after ``blocks.<i>.`` (timm eva.py's
# checkpoint_filter_fn applies the same renames; tests compare the two).
_BLOCK_MODULE_RENAMES = {
    'attn.inner_attn_ln': 'attn.norm',
    'mlp.ffn_ln': 'mlp.norm',
    'mlp.w1': 'mlp.fc1_g',
    'mlp.w2': 'mlp.fc1_x',
    'mlp.w3': 'mlp.fc2',
}
_BLOCK_RENAMES = {
    'attn.q_bias': 'attn.q_proj.bias',
    'attn.v_bias': 'attn.v_proj.bias',
    **{f'{old}.{p}': f'{new}.{p}' for old, new in _BLOCK_MODULE_RENAMES.items() for p in ('weight', 'bias')},
}
_BLOCK_RENAMES_INV = {v: k for k, v in _BLOCK_RENAMES.items()}
_BLOCK_KEY = re.compile(r'^(blocks\.\d+\.)(.+)$')


def is_rope_buffer(key: str) -> bool:
    """Rotary tables the release files persist (``rope.freqs_cos``, ``blocks.i.attn.rope.freqs_sin``):
    derived from the grid, never learned."""
    return key.startswith('rope.') or '.rope.' in key


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """EVA-CLIP release image-tower keys -> timm ``Eva`` keys.

    Args:
        state_dict: the image tower in EVA names *without* the ``visual.`` prefix (``cls_token``,
            ``blocks.0.attn.q_bias``, ``blocks.0.mlp.w1.weight``, ...).

    Returns:
        The same tensors under timm names (``blocks.0.attn.q_proj.bias``, ``blocks.0.mlp.fc1_g.weight``,
        ...), rope buffers dropped; every other name passes unchanged (the strict load names leftovers).
    """
    out = {}
    for k, v in state_dict.items():
        if is_rope_buffer(k):
            continue
        m = _BLOCK_KEY.match(k)
        if m:
            k = m.group(1) + _BLOCK_RENAMES.get(m.group(2), m.group(2))
        out[k] = v
    return out


def timm_to_eva_name(key: str) -> str:
    """The EVA-CLIP release name of a timm ``Eva`` key (inverse of :func:`checkpoint_filter_fn`'s renames),
    so load errors name what the file should hold."""
    m = _BLOCK_KEY.match(key)
    return m.group(1) + _BLOCK_RENAMES_INV.get(m.group(2), m.group(2)) if m else key


def is_eva_release_layout(state_dict: Mapping[str, torch.Tensor], prefix: str = 'visual.') -> bool:
    """Whether the image tower under ``prefix`` is in EVA-CLIP release names (as opposed to timm's)."""
    matches = (_BLOCK_KEY.match(k[len(prefix):]) for k in state_dict if k.startswith(prefix))
    return any(m is not None and m.group(2) in _BLOCK_RENAMES for m in matches)


def eva_rope_table(rope: nn.Module, grid: tuple[int, int], device: torch.device | None = None) -> torch.Tensor:
    """The rotary table of a timm ``RotaryEmbeddingCat`` recomputed for another patch grid.

    Args:
        rope: the trunk's rotary module (its bands, reference shape and layout are used as configured).
        grid: (h, w).

    Returns:
        (h * w, 2 * head_dim) float32: ``cat([sin, cos])``, rows row-major, in the layout timm's
        ``apply_rot_embed_cat`` expects (per head: row bands then column bands, each band on an adjacent
        pair).
    """
    from timm.layers.pos_embed_sincos import build_rotary_pos_embed

    sin, cos = build_rotary_pos_embed(
        list(grid), bands=rope.bands.float(), in_pixels=rope.in_pixels, ref_feat_shape=rope.ref_feat_shape,
        grid_offset=rope.grid_offset, grid_indexing=rope.grid_indexing, rotate_half=rope.rotate_half,
        device=device if device is not None else rope.bands.device, dtype=torch.float32,
        grid_type=rope.grid_type)
    return torch.cat([sin, cos], dim=-1)


def _check_trunk(trunk: nn.Module) -> None:
    from timm.layers.pos_embed_sincos import RotaryEmbeddingCat
    from timm.models.eva import Eva, EvaAttention, EvaBlock

    if not isinstance(trunk, Eva):
        raise TypeError(f'expected a timm Eva trunk, got {type(trunk).__name__}')
    if trunk.cls_token is None or trunk.reg_token is not None or trunk.no_embed_class or \
            trunk.pos_embed is None or trunk.global_pool != 'token' or trunk.attn_pool is not None:
        raise NotImplementedError('the EVA tower adapter needs class-token pooling, no register tokens and an '
                                  'absolute positional embedding covering the class token (EVA-02 CLIP)')
    if trunk.rope is not None and (not isinstance(trunk.rope, RotaryEmbeddingCat) or trunk.rope_mixed):
        raise NotImplementedError(f'unsupported rotary embedding {type(trunk.rope).__name__} (EVA-02 uses '
                                  f'RotaryEmbeddingCat)')
    for i, block in enumerate(trunk.blocks):
        if not isinstance(block, EvaBlock) or not isinstance(block.attn, EvaAttention) or \
                block.attn.gate is not None:
            raise NotImplementedError(f'block {i} is {type(block).__name__}: the adapter supports pre-norm '
                                      f'EvaBlock with EvaAttention (not EVA02-E post-norm)')


class EvaImageTower(TimmTrunkTower):
    """EVA-02 image tower on a timm ``Eva`` trunk (see the module docstring for what it computes).

    Args:
        trunk: a timm ``Eva`` built with ``global_pool='token'`` and ``num_classes=D`` (its ``head`` is the
            CLIP projection), e.g. ``timm.create_model('eva02_base_patch16_clip_224', num_classes=512)``.
        image_size: the native input size (default: the trunk's).

    ``embed`` / ``encode`` / ``dense`` / ``v2_tokens`` accept any input size that is a multiple of the
    patch size; at the native size ``encode`` equals ``trunk(images)``.
    """

    family = 'EVA-02 tower (the reference extracts its regions from the v2 dense map)'

    def __init__(self, trunk: nn.Module, image_size: int | tuple[int, int] | None = None) -> None:
        _check_trunk(trunk)
        super().__init__(trunk, trunk)
        size = image_size if image_size is not None else trunk.patch_embed.img_size
        self._image_size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        ph, pw = trunk.patch_embed.patch_size
        if ph != pw:
            raise NotImplementedError(f'square patches only, got {(ph, pw)}')
        self._rope_cache: dict[tuple, torch.Tensor] = {}

    # -- geometry ---------------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        head = self.trunk.head
        return int(head.out_features) if isinstance(head, nn.Linear) else self.width

    @property
    def image_size(self) -> tuple[int, int]:
        return self._image_size

    # -- pieces -----------------------------------------------------------------------------------------
    def rope(self, grid: tuple[int, int], device: torch.device) -> torch.Tensor | None:
        """The rotary table for ``grid`` (see :func:`eva_rope_table`), cached per grid and device in float32
        (the reference caches extra grids in the dtype of their first call; fp16 under AMP)."""
        if self.trunk.rope is None:
            return None
        key = (tuple(grid), str(device))
        table = self._rope_cache.get(key)
        if table is None:
            table = self._rope_cache[key] = eva_rope_table(self.trunk.rope, grid, device)
        return table

    def block_kwargs(self, grid: tuple[int, int], device: torch.device) -> dict[str, torch.Tensor | None]:
        """Every EVA block takes the rotary table of the current grid."""
        return dict(rope=self.rope(grid, device))

    def v2_block(self, x: torch.Tensor) -> torch.Tensor:
        block = self.trunk.blocks[-1]
        attn = block.attn
        y = block.norm1(x)
        if attn.qkv is not None:  # fused-qkv EVA variants: the value slice, bias v_bias
            dim = attn.head_dim * attn.num_heads
            v = F.linear(y, attn.qkv.weight[2 * dim:], attn.v_bias)
        else:
            v = attn.v_proj(y)
        x_attn = attn.proj(attn.norm(v))
        if block.gamma_1 is not None:
            x_attn = block.gamma_1 * x_attn
        x = x + block.drop_path1(x_attn)
        x_mlp = block.mlp(block.norm2(x))
        if block.gamma_2 is not None:
            x_mlp = block.gamma_2 * x_mlp
        return x + block.drop_path2(x_mlp)

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        t = self.trunk
        return t.head(t.head_drop(t.fc_norm(t.norm(tokens))))

    # -- training controls ------------------------------------------------------------------------------
    def head_parameters(self) -> list[nn.Parameter]:
        t = self.trunk
        return [*t.norm.parameters(), *t.fc_norm.parameters(), *t.head.parameters()]
