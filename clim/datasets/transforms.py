"""Transforms of the caption pipeline: decode, random resized crop, tokenize, pack.

They read and write a ``results`` dict (the mmcv convention) and are registered in mmdet's
``TRANSFORMS``. Randomness comes from ``results['rng']`` (a ``numpy.random.Generator`` the caption
dataset keys by (seed, epoch, index)), so a sample does not depend on which worker made it.
Normalization is left to the data preprocessor (on the device, from uint8).
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from mmengine.structures import BaseDataElement
from PIL import Image

from mmdet.registry import TRANSFORMS

from .errors import UnreadableImageError

__all__ = ['build_pipeline', 'LoadCaptionImage', 'CaptionRandomResizedCrop', 'CaptionResize',
           'TokenizeCaption',
           'PackCaptionInputs', 'open_rgb', 'get_tokenizer']

def build_pipeline(pipeline: Any) -> list:
    """Build transform configs with mmdet's registry, so datasets work without a Runner's default scope."""
    return [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in (pipeline or [])]


_PIL_INTERP = {'bicubic': Image.BICUBIC, 'bilinear': Image.BILINEAR, 'nearest': Image.NEAREST,
               'lanczos': Image.LANCZOS}


def open_rgb(path_or_file: Any, name: str | None = None) -> Image.Image:
    """Decode an image fully into RGB, turning every failure into :class:`UnreadableImageError`."""
    name = name or str(path_or_file)
    try:
        with Image.open(path_or_file) as im:
            return im.convert('RGB')  # convert() forces the full decode: truncation surfaces here
    except FileNotFoundError:
        raise UnreadableImageError(name, 'file not found') from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UnreadableImageError(name, f'{type(e).__name__}: {e}') from None


@TRANSFORMS.register_module()
class LoadCaptionImage:
    """Read ``results['img_path']`` into ``results['img']`` (PIL RGB) and set ``ori_shape`` (h, w)."""

    def __call__(self, results: dict) -> dict:
        if results.get('img') is not None:  # already decoded (streaming shards)
            return results
        img = open_rgb(results['img_path'])
        results['img'] = img
        results['ori_shape'] = (img.height, img.width)
        return results


def _rng(results: dict) -> np.random.Generator:
    rng = results.get('rng')
    return rng if rng is not None else np.random.default_rng()


@TRANSFORMS.register_module()
class CaptionRandomResizedCrop:
    """CLIP's training crop: a random region of ``scale`` x the area and aspect in ``ratio``, resized.

    Args:
        size: output side (the model's input size, e.g. 224 for ViT-B/16).
        scale: range of the crop's area as a fraction of the image area (CLIM: (0.9, 1.0)).
        ratio: range of the crop's aspect ratio (w / h), sampled log-uniformly.
        interpolation: PIL resampling filter name.

    Input ``results['img']``: PIL image; output: PIL image of ``size x size``, ``img_shape``.
    """

    def __init__(self, size: int, scale: tuple[float, float] = (0.9, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), interpolation: str = 'bicubic') -> None:
        if interpolation not in _PIL_INTERP:
            raise ValueError(f'interpolation must be one of {sorted(_PIL_INTERP)}, got {interpolation!r}')
        self.size = int(size)
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.interpolation = interpolation

    def crop_box(self, width: int, height: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(left, top, w, h) of the crop; the same procedure as torchvision's RandomResizedCrop."""
        area = width * height
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
        # Fallback: the largest centred crop within the ratio range.
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            w, h = width, height
        return (width - w) // 2, (height - h) // 2, w, h

    def __call__(self, results: dict) -> dict:
        img: Image.Image = results['img']
        left, top, w, h = self.crop_box(img.width, img.height, _rng(results))
        results['img'] = img.crop((left, top, left + w, top + h)).resize(
            (self.size, self.size), _PIL_INTERP[self.interpolation])
        results['img_shape'] = (self.size, self.size)
        results['crop_box'] = (left, top, w, h)
        return results


@TRANSFORMS.register_module()
class CaptionResize:
    """Deterministic eval transform: resize the shorter side to ``size`` and centre-crop ``size x size``."""

    def __init__(self, size: int, interpolation: str = 'bicubic') -> None:
        self.size = int(size)
        self.interpolation = interpolation

    def __call__(self, results: dict) -> dict:
        img: Image.Image = results['img']
        s = self.size / min(img.width, img.height)
        w, h = max(self.size, round(img.width * s)), max(self.size, round(img.height * s))
        img = img.resize((w, h), _PIL_INTERP[self.interpolation])
        left, top = (w - self.size) // 2, (h - self.size) // 2
        results['img'] = img.crop((left, top, left + self.size, top + self.size))
        results['img_shape'] = (self.size, self.size)
        return results


@lru_cache(maxsize=4)
def get_tokenizer(context_length: int):
    """open_clip's CLIP BPE tokenizer (ships with open_clip; no download), one per process."""
    from open_clip.tokenizer import SimpleTokenizer
    return SimpleTokenizer(context_length=context_length)


@TRANSFORMS.register_module()
class TokenizeCaption:
    """Tokenize ``results['caption']`` with the CLIP tokenizer into ``results['text']`` (LongTensor (L,)).

    This is open_clip's BPE, the tokenizer of every ``CLIPModel``. Models with a tokenizer of their own
    (``HFTextCLIPModel``: UniMed-CLIP, BiomedCLIP) tokenize the packed ``caption`` themselves and ignore
    ``text``, so their configs leave this transform out of the pipeline.

    Args:
        context_length: the text tower's context length (``text_cfg.context_length`` of the model:
            77 for OpenAI CLIP). The model checks that the tokens it receives have this length.
    """

    def __init__(self, context_length: int = 77) -> None:
        self.context_length = int(context_length)

    def __call__(self, results: dict) -> dict:
        results['text'] = get_tokenizer(self.context_length)([results['caption']])[0]
        return results


@TRANSFORMS.register_module()
class PackCaptionInputs:
    """Pack an image and its caption for the model.

    Output: ``{'inputs': uint8 tensor (3, H, W), 'data_samples': BaseDataElement}`` whose metainfo
    holds ``meta_keys`` found in ``results`` and whose ``text`` field holds the tokens (if tokenized).
    """

    def __init__(self, meta_keys: tuple[str, ...] = ('img_id', 'img_path', 'caption', 'ori_shape',
                                                       'img_shape', 'sample_idx')) -> None:
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        img = results['img']
        arr = np.asarray(img, dtype=np.uint8) if isinstance(img, Image.Image) else np.asarray(img)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        inputs = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
        sample = BaseDataElement(metainfo={k: results[k] for k in self.meta_keys if k in results})
        if 'text' in results:
            sample.text = results['text']
        return dict(inputs=inputs, data_samples=sample)
