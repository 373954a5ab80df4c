"""Open-vocabulary detection for people: load a detector, name the classes, detect.

    from ovdet.apis import load_detector, detect
    model = load_detector('configs/fvit/fvit_vitb16_clim_ovcoco.py', 'work_dirs/.../epoch_3.pth')
    result = detect('street.jpg', 'cat, zebra, red umbrella', model=model)
    result.pred_instances  # bboxes (k, 4) in image pixels, scores (k,), labels (k,) indexing the vocabulary
    detect('street.jpg', 'cat, zebra', model=model, out_file='result.png')  # also draws the boxes

Custom vocabularies: every class counts as *novel* in the detector / CLIP ensemble (exponent beta on
CLIP's score) unless it is listed in ``base_classes``: the detector never trained on boxes of
arbitrary names, so CLIP's recognition should carry them, exactly as for OV-COCO's novel classes.
Name the classes the detector was trained on (e.g. OV-COCO's 48 base classes) in ``base_classes``
to give them the base treatment (alpha).
"""
from __future__ import annotations

import copy
import logging
import os
import os.path as osp
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from torch import nn

__all__ = ['ImageReadError', 'load_detector', 'detect', 'parse_vocabulary', 'read_image']


def parse_vocabulary(vocabulary: str | Sequence[str]) -> list[str]:
    """``"cat, zebra, red umbrella"`` or a list -> unique, stripped, non-empty names in order."""
    items = vocabulary.split(',') if isinstance(vocabulary, str) else list(vocabulary)
    names: list[str] = []
    for item in items:
        name = ' '.join(str(item).split())
        if name and name not in names:
            names.append(name)
    if not names:
        raise ValueError(f'empty vocabulary: {vocabulary!r}')
    return names


def _clip_embed_dim(clip_cfg: dict) -> int | None:
    if clip_cfg.get('model_cfg'):
        return int(clip_cfg['model_cfg']['embed_dim'])
    if clip_cfg.get('model_name'):
        import open_clip

        cfg = open_clip.get_model_config(str(clip_cfg['model_name']).replace('/', '-'))
        return int(cfg['embed_dim']) if cfg else None
    return None


def _prepare_model_cfg(model_cfg: dict, checkpoint: str | None) -> bool:
    """Adjust (in place) for building from a checkpoint; returns whether the vocabulary is a placeholder."""
    clip_cfg = model_cfg.get('backbone', {}).get('clip_cfg')
    arch_explicit = bool(clip_cfg) and (bool(clip_cfg.get('model_cfg')) or (
        bool(clip_cfg.get('model_name')) and clip_cfg.get('quick_gelu') is not None))
    if checkpoint is not None and clip_cfg and clip_cfg.get('pretrained') and \
            not osp.isfile(clip_cfg['pretrained']) and arch_explicit:
        # The detector checkpoint holds the frozen CLIP too; the original CLIP file is not needed.
        print_log(f"{clip_cfg['pretrained']} not found: the CLIP weights come from {checkpoint}",
                  logger='current', level=logging.INFO)
        clip_cfg['pretrained'] = None
    head = model_cfg.get('roi_head', {}).get('bbox_head', {})
    path = head.get('class_embeddings')
    if isinstance(path, (str, os.PathLike)) and not osp.isfile(path):
        dim = _clip_embed_dim(clip_cfg or {})
        if dim is None:
            return False  # let the head raise its own error naming the file
        print_log(f'class-embedding file {path} not found: using a placeholder vocabulary; pass one to '
                  f'detect() / model.set_vocabulary()', logger='current', level=logging.WARNING)
        placeholder = np.zeros((int(head['num_classes']), dim), dtype=np.float32)
        placeholder[:, 0] = 1.0
        head['class_embeddings'] = placeholder
        return True
    return False


def load_detector(config: str | Path | Config, checkpoint: str | None = None, device: str = 'cpu',
                  cfg_options: dict | None = None) -> nn.Module:
    """Build a detector from a config and load a trained checkpoint (``init_detector`` for ovdet).

    Args:
        config: config file or :class:`Config`.
        checkpoint: an MMEngine checkpoint of the whole detector (frozen CLIP included); ``None`` gives
            randomly initialized heads (for benchmarks and tests).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ...
        cfg_options: config overrides (``merge_from_dict``).

    Returns:
        the detector in eval mode, with ``.cfg`` and ``.dataset_meta`` (``classes``) set. When the
        config's class-embedding file is absent, the vocabulary is a placeholder until
        :func:`detect` or ``model.set_vocabulary`` sets one.
    """
    import clim  # noqa: F401  (registers CLIPModel, safe checkpoint loading)
    import ovdet  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.runner import load_checkpoint

    cfg = Config.fromfile(str(config)) if isinstance(config, (str, Path)) else copy.deepcopy(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = copy.deepcopy(cfg.model)
    placeholder = _prepare_model_cfg(model_cfg, checkpoint)
    model = MODELS.build(model_cfg)
    model = revert_sync_batchnorm(model)
    classes: tuple[str, ...] | None = None
    if checkpoint is not None:
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu', strict=False)
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        classes = tuple(meta.get('dataset_meta', {}).get('classes', ()) or ()) or None
    else:
        model.init_weights()
    if classes is None:
        ds = cfg.get('test_dataloader', {}).get('dataset', {})
        classes = tuple(ds.get('metainfo', {}).get('classes', ()) or ()) or None
    model.dataset_meta = {'classes': classes} if classes else {}
    model.cfg = cfg
    model._ovdet_placeholder_vocabulary = placeholder
    model._ovdet_vocabulary_key = None
    return model.to(device).eval()


def _test_pipeline(cfg: Config, from_array: bool):
    from mmcv.transforms import Compose
    from mmdet.utils import get_test_pipeline_cfg

    steps = []
    for step in copy.deepcopy(get_test_pipeline_cfg(cfg)):
        kind = str(step['type']).split('.')[-1]
        if kind == 'LoadAnnotations':
            continue  # a user's image has no annotations
        if kind == 'LoadImageFromFile' and from_array:
            # Same dtype as the file path gives (the reference loads float32).
            step = dict(type='mmdet.LoadImageFromNDArray', to_float32=step.get('to_float32', False))
        steps.append(step)
    return Compose(steps)


class ImageReadError(ValueError):
    """An input image is missing or cannot be decoded (the message names the file)."""


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into an (H, W, 3) uint8 BGR array.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ImageReadError: the file exists but is not a decodable image (names the file).
    """
    import mmcv

    path = os.fspath(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    try:
        image = mmcv.imread(path)  # BGR; None when OpenCV cannot decode the bytes
    except Exception as e:  # noqa: BLE001 - decoders raise many types on broken files
        raise ImageReadError(f'{path}: could not be decoded as an image ({type(e).__name__}: {e})') from e
    if image is None or image.size == 0:
        raise ImageReadError(f'{path}: could not be decoded as an image (not a JPEG / PNG / BMP / ... file, '
                             f'or truncated)')
    return image


def detect(image: str | os.PathLike | np.ndarray, vocabulary: str | Sequence[str] | None = None,
           model: nn.Module | None = None, *, config: str | Config | None = None,
           checkpoint: str | None = None,
           base_classes: Sequence[str] = (), templates: str | Sequence[str] | None = None,
           score_thr: float = 0.0, device: str = 'cpu', out_file: str | os.PathLike | None = None,
           draw_thr: float | None = None):
    """Detect the classes of ``vocabulary`` in one image.

    Args:
        image: image path, or an (H, W, 3) uint8 array in BGR order (as ``mmcv.imread`` gives).
        vocabulary: ``"cat, zebra, red umbrella"`` or a list of names; ``None`` keeps the model's current
            classes (the training vocabulary from its embedding file, or the last one given).
        model: a detector from :func:`load_detector`; otherwise built from ``config`` / ``checkpoint``.
        base_classes: vocabulary names to treat as base in the ensemble (default: none, all novel;
            see the module doc).
        templates: prompt templates for the class embeddings (default: CLIP's full prompt ensemble).
        score_thr: drop detections scoring below this.
        device: for a model built here.
        out_file: also draw the detections on the image and write it here (e.g. ``result.png``).
        draw_thr: score threshold for drawing (default: ``max(score_thr, 0.3)``).

    Returns:
        a ``DetDataSample`` whose ``pred_instances`` holds bboxes (k, 4) (original-image pixels),
        scores (k,) and labels (k,) indexing ``model.dataset_meta['classes']``.
    """
    if model is None:
        if config is None:
            raise ValueError('detect() needs a model or a config (+ checkpoint)')
        model = load_detector(config, checkpoint, device=device)
    if vocabulary is not None:
        names = parse_vocabulary(vocabulary)
        key = (tuple(names), tuple(base_classes), templates if isinstance(templates, (str, type(None)))
               else tuple(templates))
        if getattr(model, '_ovdet_vocabulary_key', None) != key:
            model.set_vocabulary(names, base_classes=base_classes, templates=templates)
            model._ovdet_vocabulary_key = key
            model._ovdet_placeholder_vocabulary = False
    elif getattr(model, '_ovdet_placeholder_vocabulary', False):
        raise ValueError('this detector has no vocabulary (its class-embedding file was not found): '
                         'pass vocabulary="name, name, ..."')
    if not isinstance(image, np.ndarray):
        image = read_image(image)
    pipeline = _test_pipeline(model.cfg, from_array=True)
    data = pipeline(dict(img=image, img_id=0))
    batch = dict(inputs=[data['inputs']], data_samples=[data['data_samples']])
    with torch.no_grad():
        result = model.test_step(batch)[0]
    if score_thr > 0:
        result.pred_instances = result.pred_instances[result.pred_instances.scores >= score_thr]
    if out_file is not None:
        from .visualization import draw_detections

        draw_detections(image, result, model.dataset_meta.get('classes') or (), out_file,
                        score_thr=max(score_thr, 0.3) if draw_thr is None else draw_thr)
    return result
