"""Helpers shared by the CLIM tests (imported by name: tests/clim is on sys.path under pytest)."""
from __future__ import annotations

import copy
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_CLIM_KW = dict(train_image_size=128, unlocked_groups=2)


def build_tiny_clim(tiny_clip_cfg: dict, seed: int = 0, **kwargs):
    """A tiny random-weight CLIM model (same weights for the same seed)."""
    import clim  # noqa: F401
    from mmdet.registry import MODELS
    torch.manual_seed(seed)
    cfg = dict(type='CLIM', clip=dict(type='CLIPModel', model_cfg=copy.deepcopy(tiny_clip_cfg)),
               **{**TINY_CLIM_KW, **kwargs})
    return MODELS.build(cfg)


def random_batch(n: int, size: int = 64, context_length: int = 32, seed: int = 0) -> dict:
    """A collated batch as the dataloader gives it: uint8 images and samples with caption tokens."""
    from mmengine.structures import BaseDataElement

    from clim.datasets.transforms import get_tokenizer
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    tok = get_tokenizer(context_length)
    samples = []
    for i in range(n):
        s = BaseDataElement(metainfo=dict(caption=f'caption number {i}'))
        s.text = tok([f'caption number {i}'])[0]
        samples.append(s)
    return dict(inputs=list(images), data_samples=samples)


def run_tool(args: list[str], timeout: int = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a repo tool (``tools/train.py`` ...) in a subprocess with two threads; returns the result."""
    env = dict(os.environ, OMP_NUM_THREADS='2', MKL_NUM_THREADS='2', PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, *args], cwd=cwd or REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def step_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    """The AdamW of the distributed-equivalence test. eps=1e-6 (open_clip's ViT setting) keeps the first
    Adam step ``lr * g / (|g| + eps)`` from amplifying float rounding in near-zero gradients."""
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, betas=(0.9, 0.98),
                             eps=1e-6, weight_decay=0.1)


def sgd_optimizer(model: torch.nn.Module, lr: float = 1.0) -> torch.optim.Optimizer:
    """Plain SGD (no momentum, no decay): the weight change is ``-lr * grad``, so a gradient of the wrong
    scale shows in the weights one to one (Adam's first step ``lr * g / |g|`` hides it)."""
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)


def png_bytes(colour, size: tuple[int, int] = (40, 48)) -> bytes:
    """A PNG of one flat colour (``size`` = (height, width)), as a webdataset shard member."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.full((*size, 3), colour, np.uint8)).save(buf, format='PNG')
    return buf.getvalue()


def write_shard(path: Path, members: list[tuple[str, bytes]]) -> None:
    """A webdataset tar shard holding ``members`` ((name, bytes)) in that order."""
    with tarfile.open(path, 'w') as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
