"""Helpers of the CLIPSelf tests (imported by name: tests/clipself is on sys.path under pytest)."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
DET_SIZE = 128  # the tiny config's student input: an 8 x 8 dense map
CROP_SIZE = 64  # the tiny CLIP's input size


def build_tiny_clipself(tiny_clip_cfg: dict, seed: int = 0, **kwargs):
    """A tiny random-weight CLIPSelf (every block trainable, as the tiny config); same weights per seed."""
    import clim  # noqa: F401
    from mmdet.registry import MODELS
    torch.manual_seed(seed)
    cfg = dict(type='CLIPSelf', clip=dict(type='CLIPModel', model_cfg=copy.deepcopy(tiny_clip_cfg)),
               **{'unlocked_groups': 3, **kwargs})
    return MODELS.build(cfg)


def random_distill_batch(counts: tuple[int, ...] = (3, 2), seed: int = 0) -> dict:
    """A collated batch as ``PackCLIPSelfInputs`` + the dataloader give it: uint8 full images
    (DET_SIZE), per sample ``counts[i]`` random normalized boxes and uint8 crops (CROP_SIZE)."""
    from mmengine.structures import BaseDataElement
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (len(counts), 3, DET_SIZE, DET_SIZE), generator=g, dtype=torch.uint8)
    samples = []
    for k in counts:
        xy = torch.rand(k, 2, generator=g) * 0.6
        wh = 0.1 + torch.rand(k, 2, generator=g) * 0.3
        s = BaseDataElement(metainfo=dict(img_id=len(samples)))
        s.boxes = torch.cat([xy, xy + wh], dim=1)
        s.crops = torch.randint(0, 256, (k, 3, CROP_SIZE, CROP_SIZE), generator=g, dtype=torch.uint8)
        samples.append(s)
    return dict(inputs=list(images), data_samples=samples)


def write_image(path: Path, w: int, h: int, seed: int = 0) -> None:
    """A random RGB PNG of w x h pixels."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
