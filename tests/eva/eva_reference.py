"""Test-side EVA-02 CLIP pieces written from shared/spec/eva_clip.md alone (no project or timm code):
the release-file key list with shapes, random weights in that layout, and a hand-written forward from
the raw release names (full image embedding, v2 dense map, the RoPE rotation)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def release_shapes(width: int, depth: int, patch: int, grid: int, embed: int, text_width: int,
                   text_layers: int, context: int, vocab: int, with_rope: bool = True) -> dict[str, tuple]:
    """Every key of an EVA-CLIP release state dict and its shape (spec "Checkpoints users hold")."""
    hidden = int(width * 2.6667)  # SwiGLU hidden, spec table
    head_dim = 64
    n = grid * grid
    s: dict[str, tuple] = {
        'visual.cls_token': (1, 1, width), 'visual.pos_embed': (1, 1 + n, width),
        'visual.patch_embed.proj.weight': (width, 3, patch, patch), 'visual.patch_embed.proj.bias': (width,),
        'visual.norm.weight': (width,), 'visual.norm.bias': (width,),
        'visual.head.weight': (embed, width), 'visual.head.bias': (embed,),
    }
    for i in range(depth):
        b = f'visual.blocks.{i}.'
        for ln in ('norm1', 'norm2', 'attn.inner_attn_ln'):
            s[b + ln + '.weight'] = s[b + ln + '.bias'] = (width,)
        for proj in ('q_proj', 'k_proj', 'v_proj'):
            s[b + f'attn.{proj}.weight'] = (width, width)
        s[b + 'attn.q_bias'] = s[b + 'attn.v_bias'] = (width,)
        s[b + 'attn.proj.weight'], s[b + 'attn.proj.bias'] = (width, width), (width,)
        for w in ('w1', 'w2'):
            s[b + f'mlp.{w}.weight'], s[b + f'mlp.{w}.bias'] = (hidden, width), (hidden,)
        s[b + 'mlp.ffn_ln.weight'] = s[b + 'mlp.ffn_ln.bias'] = (hidden,)
        s[b + 'mlp.w3.weight'], s[b + 'mlp.w3.bias'] = (width, hidden), (width,)
        if with_rope:
            s[b + 'attn.rope.freqs_cos'] = s[b + 'attn.rope.freqs_sin'] = (n, head_dim)
    if with_rope:
        s['visual.rope.freqs_cos'] = s['visual.rope.freqs_sin'] = (n, head_dim)
    s.update({'text.token_embedding.weight': (vocab, text_width),
              'text.positional_embedding': (context, text_width),
              'text.ln_final.weight': (text_width,), 'text.ln_final.bias': (text_width,),
              'text.text_projection': (text_width, embed), 'logit_scale': ()})
    for i in range(text_layers):
        b = f'text.transformer.resblocks.{i}.'
        for ln in ('ln_1', 'ln_2'):
            s[b + ln + '.weight'] = s[b + ln + '.bias'] = (text_width,)
        s[b + 'attn.in_proj_weight'], s[b + 'attn.in_proj_bias'] = (3 * text_width, text_width), (3 * text_width,)
        s[b + 'attn.out_proj.weight'], s[b + 'attn.out_proj.bias'] = (text_width, text_width), (text_width,)
        s[b + 'mlp.c_fc.weight'], s[b + 'mlp.c_fc.bias'] = (4 * text_width, text_width), (4 * text_width,)
        s[b + 'mlp.c_proj.weight'], s[b + 'mlp.c_proj.bias'] = (text_width, 4 * text_width), (text_width,)
    return s


def random_release_state(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights that exercise every term: LayerNorm gains near 1, non-zero biases, unit-variance
    activations (zero-initialised biases would hide a swapped or dropped bias)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in shapes.items():
        if k == 'logit_scale':
            t = torch.tensor(math.log(1 / 0.07))
        elif k.endswith('.weight') and len(shape) == 1:  # LayerNorm gains
            t = 1 + 0.2 * torch.randn(shape, generator=g)
        elif len(shape) >= 2 and not any(n in k for n in ('pos_embed', 'cls_token', 'embedding', 'rope')):
            fan_in = math.prod(shape[1:])
            t = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        else:
            t = 0.5 * torch.randn(shape, generator=g)
        out[k] = t
    return out


# ------------------------------------------------------------------------------------------------------
# hand-written forward from release names
# ------------------------------------------------------------------------------------------------------
def rope_rotate(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Spec RoPE on (..., N, 64) patch tokens, row-major over ``grid``: position i of an axis of size s is
    i * 16 / s; f_k = 10000^(-k/16), k = 0..15; dims [0, 32) rotate by the row, [32, 64) by the column,
    pair (2k, 2k+1) of each half by angle p * f_k: (a, b) -> (a cos - b sin, b cos + a sin)."""
    h, w = grid
    rows = torch.arange(h, dtype=torch.float64).repeat_interleave(w) * 16 / h
    cols = torch.arange(w, dtype=torch.float64).repeat(h) * 16 / w
    f = 10000.0 ** (-torch.arange(16, dtype=torch.float64) / 16)
    angles = torch.cat([rows[:, None] * f, cols[:, None] * f], dim=1)     # (N, 32): one per pair
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    pairs = x.reshape(*x.shape[:-1], 32, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    return torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1).reshape(x.shape)


def _ln(x: torch.Tensor, sd: dict, name: str) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[name + '.weight'], sd[name + '.bias'], eps=1e-6)


def _lin(x: torch.Tensor, sd: dict, name: str) -> torch.Tensor:
    return x @ sd[name + '.weight'].T + sd[name + '.bias']


def _mlp(x: torch.Tensor, sd: dict, b: str) -> torch.Tensor:
    y = _ln(x, sd, b + 'norm2')
    hid = F.silu(_lin(y, sd, b + 'mlp.w1')) * _lin(y, sd, b + 'mlp.w2')
    return x + _lin(_ln(hid, sd, b + 'mlp.ffn_ln'), sd, b + 'mlp.w3')


def _attention_block(x: torch.Tensor, sd: dict, b: str, heads: int, grid: tuple[int, int]) -> torch.Tensor:
    bsz, t, width = x.shape
    y = _ln(x, sd, b + 'norm1')
    q = y @ sd[b + 'attn.q_proj.weight'].T + sd[b + 'attn.q_bias']
    k = y @ sd[b + 'attn.k_proj.weight'].T                                  # no k bias
    v = y @ sd[b + 'attn.v_proj.weight'].T + sd[b + 'attn.v_bias']
    q, k, v = (z.reshape(bsz, t, heads, width // heads).transpose(1, 2) for z in (q, k, v))
    q = torch.cat([q[:, :, :1], rope_rotate(q[:, :, 1:], grid)], dim=2)   # class token: no RoPE
    k = torch.cat([k[:, :, :1], rope_rotate(k[:, :, 1:], grid)], dim=2)
    attn = (q @ k.transpose(-1, -2) / math.sqrt(width // heads)).softmax(dim=-1)
    out = (attn @ v).transpose(1, 2).reshape(bsz, t, width)
    x = x + _lin(_ln(out, sd, b + 'attn.inner_attn_ln'), sd, b + 'attn.proj')
    return _mlp(x, sd, b)


def _v2_block(x: torch.Tensor, sd: dict, b: str) -> torch.Tensor:
    v = _ln(x, sd, b + 'norm1') @ sd[b + 'attn.v_proj.weight'].T + sd[b + 'attn.v_bias']
    x = x + _lin(_ln(v, sd, b + 'attn.inner_attn_ln'), sd, b + 'attn.proj')
    return _mlp(x, sd, b)


def _tokens(sd: dict, images: torch.Tensor, patch: int) -> tuple[torch.Tensor, tuple[int, int]]:
    x = F.conv2d(images, sd['visual.patch_embed.proj.weight'], sd['visual.patch_embed.proj.bias'], stride=patch)
    grid = (x.shape[-2], x.shape[-1])
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([sd['visual.cls_token'].expand(x.shape[0], -1, -1), x], dim=1)
    pos = sd['visual.pos_embed'][0]
    g0 = int(round(math.sqrt(pos.shape[0] - 1)))
    if (g0, g0) != grid:
        patch_pos = pos[1:].reshape(1, g0, g0, -1).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(patch_pos, size=grid, mode='bicubic', align_corners=False, antialias=False)
        pos = torch.cat([pos[:1], patch_pos.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1)])
    return x + pos, grid                                                     # no ln_pre


def reference_encode_image(sd: dict, images: torch.Tensor, depth: int, heads: int, patch: int) -> torch.Tensor:
    """(B, D) un-normalized: class token after every block -> norm -> head (with bias)."""
    x, grid = _tokens(sd, images, patch)
    for i in range(depth):
        x = _attention_block(x, sd, f'visual.blocks.{i}.', heads, grid)
    return _lin(_ln(x[:, 0], sd, 'visual.norm'), sd, 'visual.head')


def reference_dense(sd: dict, images: torch.Tensor, depth: int, heads: int, patch: int
                    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """v2 dense map (B, D, h, w) L2-normalized per location, and every block's patch tokens (B, W, h, w)."""
    x, grid = _tokens(sd, images, patch)
    taps = {}
    for i in range(depth - 1):
        x = _attention_block(x, sd, f'visual.blocks.{i}.', heads, grid)
        taps[i] = x[:, 1:]
    x = _v2_block(x[:, 1:], sd, f'visual.blocks.{depth - 1}.')
    taps[depth - 1] = x
    y = F.normalize(_lin(_ln(x, sd, 'visual.norm'), sd, 'visual.head'), dim=-1)

    def as_map(t: torch.Tensor) -> torch.Tensor:
        return t.transpose(1, 2).reshape(t.shape[0], t.shape[-1], *grid)
    return as_map(y), {i: as_map(t) for i, t in taps.items()}
