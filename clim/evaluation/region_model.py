"""Zero-shot classification of ground-truth regions with a CLIP (the CLIM paper's region-recognition test).

For each ground-truth region: the dense map pooled inside its box (RoIAlign 1x1) and inside its
mask (mean over the mask's cells), and optionally the image crop through the ordinary image
forward, each scored by cosine similarity against prompt-ensembled class text embeddings.

Crops come from the pipeline when the samples carry them (``gt_crops``, uint8, cut from the original
image by :class:`~clim.datasets.RegionEvalTransform` as the reference protocol does), else they are
cut here from the resized, normalized input and stretched to a square (the ``'clim-ovd'`` protocol).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from mmdet.registry import MODELS

from ..models.templates import encode_vild_class_names
from ..models.factory import build_clip

__all__ = ['RegionClassifier', 'RegionRecognition', 'normalize_crops']


def normalize_crops(crops: torch.Tensor, mean: Sequence[float] | torch.Tensor,
                    std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """uint8 crops (n, 3, S, S) -> float32, as torchvision's ``ToTensor`` + ``Normalize`` compute it
    (the reference's crop transform): ``x / 255``, minus the mean, over the std, on the 0-1 scale.

    ``mean`` / ``std`` are on the 0-255 scale (the data preprocessor's); for OpenAI CLIP's the exact
    0-1 constants of ``open_clip`` are used, so the crops are bit-identical to the reference's.
    """
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    m = torch.as_tensor(mean, dtype=torch.float64).flatten().cpu() / 255
    s = torch.as_tensor(std, dtype=torch.float64).flatten().cpu() / 255
    if torch.allclose(m, torch.tensor(OPENAI_DATASET_MEAN, dtype=torch.float64), rtol=0, atol=1e-6) and \
            torch.allclose(s, torch.tensor(OPENAI_DATASET_STD, dtype=torch.float64), rtol=0, atol=1e-6):
        m, s = torch.tensor(OPENAI_DATASET_MEAN), torch.tensor(OPENAI_DATASET_STD)
    m = m.to(device=crops.device, dtype=torch.float32).view(1, -1, 1, 1)
    s = s.to(device=crops.device, dtype=torch.float32).view(1, -1, 1, 1)
    return (crops.float().div(255) - m) / s


class RegionClassifier:
    """Scores the ground-truth regions of a batch with a :class:`~clim.models.CLIPModel`.

    Args:
        mode: dense extraction, ``'v2'`` (default), ``'plain'`` (the dense map of the ordinary last
            block) or ``'v1'`` (mask attention pooling).
        with_boxes / with_masks / with_crops: which region features to score.
        crop_size: side crops cut here are resized to (default: the CLIP's native input size).
        templates: prompt templates for :meth:`CLIPModel.encode_class_names` (None: the full ensemble),
            or ``'vild'``: the references' 63 ViLD prompts on the raw category names
            (:func:`~clim.models.templates.encode_vild_class_names`).
        class_embeddings: a ``.npy`` file (C, D) to score against instead (rows in class-index order,
            e.g. from ``tools/gen_text_embeddings.py``); renormalized, as the reference does.
        topk: how many class indices to keep per region (top-1 and top-5 need 5).
        crop_batch: crops per image forward.

    :meth:`predict` adds ``pred_{box,mask,crop}_topk`` (n, k) LongTensors (CPU) to each sample, whose
    ``gt_bboxes`` (n, 4) are pixels of the input, ``gt_masks`` (n, gh, gw) bool cells of the dense grid
    (top-left aligned), optionally ``gt_crops`` (n, 3, S, S) uint8, and metainfo ``classes`` the class
    names (``category_names``: the raw ones, for ``'vild'``).
    """

    def __init__(self, mode: str = 'v2', with_boxes: bool = True, with_masks: bool = True,
                 with_crops: bool = False, crop_size: int | None = None,
                 templates: str | Sequence[str] | None = None, class_embeddings: str | None = None,
                 topk: int = 5, crop_batch: int = 64) -> None:
        if mode not in ('v1', 'v2', 'plain'):
            raise ValueError(f"mode must be 'v1', 'v2' or 'plain', got {mode!r}")
        self.mode = mode
        self.with_boxes, self.with_masks, self.with_crops = with_boxes, with_masks, with_crops
        self.crop_size = crop_size
        self.templates = templates
        self.class_embeddings_file = class_embeddings
        self.topk = int(topk)
        self.crop_batch = int(crop_batch)
        self._cache: dict[tuple[str, ...], torch.Tensor] = {}

    def reset(self) -> None:
        """Forget cached class embeddings (call when the text tower may have changed)."""
        self._cache.clear()

    def class_embeddings(self, clip, classes: Sequence[str]) -> torch.Tensor:
        """(C, D) normalized class embeddings, cached per class list: from ``class_embeddings`` (a file),
        else computed from ``classes`` (for ``templates='vild'``: pass the raw category names)."""
        key = tuple(classes)
        if key not in self._cache:
            if self.class_embeddings_file is not None:
                self._cache[key] = self._load_embeddings(len(key), clip.embed_dim)
            elif isinstance(self.templates, str) and self.templates == 'vild':
                self._cache[key] = encode_vild_class_names(clip, list(key)).float()
            else:
                self._cache[key] = clip.encode_class_names(list(key), templates=self.templates).float()
        return self._cache[key]

    def _load_embeddings(self, num_classes: int, dim: int) -> torch.Tensor:
        path = Path(self.class_embeddings_file)
        if not path.is_file():
            raise FileNotFoundError(f'class embeddings {path} not found (write them with '
                                    f'tools/gen_text_embeddings.py)')
        emb = np.load(path)
        if emb.ndim != 2 or emb.shape != (num_classes, dim):
            raise ValueError(f'class embeddings {path} have shape {tuple(emb.shape)}; the dataset has '
                             f'{num_classes} classes and the CLIP embeds in {dim} dims')
        return F.normalize(torch.from_numpy(emb).float(), dim=-1)

    def _topk(self, feats: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        k = min(self.topk, text.shape[0])
        return (feats.float() @ text.t()).topk(k, dim=1).indices.cpu()

    def _crops(self, clip, image: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        size = self.crop_size or clip.image_size[0]
        h, w = image.shape[-2:]
        crops = []
        for x1, y1, x2, y2 in boxes.tolist():
            x1, y1 = max(0, int(x1)), max(0, int(y1))
            x2, y2 = min(w, max(x1 + 1, int(round(x2)))), min(h, max(y1 + 1, int(round(y2))))
            crop = image[:, y1:y2, x1:x2].unsqueeze(0).float()
            crops.append(F.interpolate(crop, size=(size, size), mode='bicubic', align_corners=False))
        if not crops:
            return image.new_zeros(0, clip.embed_dim)
        crops_t = torch.cat(crops).to(image.dtype)
        return torch.cat([clip.encode_image(crops_t[i:i + self.crop_batch])
                          for i in range(0, len(crops_t), self.crop_batch)])

    def _pipeline_crops(self, clip, crops: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Image embeddings of uint8 crops (n, 3, S, S) (``mean`` / ``std``: see :func:`normalize_crops`)."""
        dtype = next(clip.parameters()).dtype
        out = [clip.encode_image(normalize_crops(crops[i:i + self.crop_batch], mean, std).to(dtype))
               for i in range(0, len(crops), self.crop_batch)]
        return torch.cat(out) if out else crops.new_zeros(0, clip.embed_dim, dtype=torch.float32)

    @torch.no_grad()
    def predict(self, clip, inputs: torch.Tensor, data_samples: Sequence[BaseDataElement],
                pixel_mean: Sequence[float] | torch.Tensor | None = None,
                pixel_std: Sequence[float] | torch.Tensor | None = None) -> list:
        """Score every region of the batch; returns ``data_samples`` with the predictions added.

        ``pixel_mean`` / ``pixel_std`` (0-255 scale; default OpenAI CLIP's) normalize pipeline crops.
        """
        meta = data_samples[0].metainfo
        vild = isinstance(self.templates, str) and self.templates == 'vild'
        classes = meta.get('category_names' if vild else 'classes')
        if classes is None:
            raise ValueError('region recognition needs the class names in the samples\' metainfo '
                             '("classes" / "category_names"; RegionRecognitionDataset adds them)')
        text = self.class_embeddings(clip, classes)
        boxes = [s.gt_bboxes.to(inputs.device).float() for s in data_samples]
        counts = [len(b) for b in boxes]
        grid = (inputs.shape[-2] // clip.stride, inputs.shape[-1] // clip.stride)
        masks = None
        if self.with_masks:
            masks = [F.pad(s.gt_masks.to(inputs.device), (0, grid[1] - s.gt_masks.shape[-1],
                                                          0, grid[0] - s.gt_masks.shape[-2]))
                     for s in data_samples]
        preds: dict[str, torch.Tensor] = {}
        if self.mode == 'v1':
            if self.with_boxes:
                feats = clip.region_features(inputs, boxes, normalized=False, mode='v1')
                preds['box'] = self._topk(feats, text)
            if masks is not None:
                preds['mask'] = self._topk(clip.mask_attention_pool(inputs, [m.bool() for m in masks]), text)
        elif self.with_boxes or self.with_masks:
            dense = clip.dense_features(inputs, mode=self.mode)
            if self.with_boxes:
                preds['box'] = self._topk(clip.pool_boxes(dense, boxes, normalized=False), text)
            if masks is not None:
                preds['mask'] = self._topk(clip.pool_masks(dense, masks), text)
        if self.with_crops:
            if all('gt_crops' in s for s in data_samples):
                from ..method.data_preprocessor import CLIP_MEAN, CLIP_STD
                mean = CLIP_MEAN if pixel_mean is None else pixel_mean
                std = CLIP_STD if pixel_std is None else pixel_std
                crops = torch.cat([s.gt_crops.to(inputs.device) for s in data_samples])
                feats = self._pipeline_crops(clip, crops, mean, std)
            else:
                feats = torch.cat([self._crops(clip, img, b) for img, b in zip(inputs, boxes)])
            preds['crop'] = self._topk(feats, text)
        for kind, topk in preds.items():
            for sample, part in zip(data_samples, topk.split(counts)):
                sample.set_field(part, f'pred_{kind}_topk')
        return list(data_samples)


@MODELS.register_module()
class RegionRecognition(BaseModel):
    """Region-recognition evaluator of any CLIP checkpoint (``tools/test.py``).

    Args:
        clip: a ``CLIPModel`` config (``pretrained`` = the checkpoint to judge: the original CLIP for
            the baseline, a CLIM export for the refined one); ``ZooModel`` / ``HFTextCLIPModel`` configs work
            too. Built as CLIM and F-ViT build theirs (:func:`clim.models.build_clip`), so a
            ``CLIPModel`` config naming a CLIM export of an ``HFTextCLIPModel`` / EVA-02 CLIP builds that class.
        classifier: :class:`RegionClassifier` options (mode, with_boxes, with_masks, with_crops, ...).
        data_preprocessor: defaults to ``CLIMDataPreprocessor`` padding to a multiple of 16.

    ``forward(inputs (B, 3, H, W), data_samples, mode='predict')`` -> samples with
    ``pred_{box,mask,crop}_topk``; ``mode='tensor'`` returns the dense map (B, D, H/p, W/p).
    """

    def __init__(self, clip: dict, classifier: dict | None = None, data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        from ..method.data_preprocessor import build_data_preprocessor
        super().__init__(data_preprocessor=build_data_preprocessor(
            data_preprocessor or dict(type='CLIMDataPreprocessor', pad_size_divisor=16)), init_cfg=init_cfg)
        self.clip = build_clip(clip)  # the class follows what the weights and config say
        self.classifier = RegionClassifier(**(classifier or {}))

    def train(self, mode: bool = True) -> RegionRecognition:
        self.classifier.reset()
        return super().train(mode)

    def forward(self, inputs: torch.Tensor, data_samples: list | None = None, mode: str = 'predict'):
        if mode == 'predict':
            pre = self.data_preprocessor
            return self.classifier.predict(self.clip, inputs, data_samples, getattr(pre, 'mean', None),
                                           getattr(pre, 'std', None))
        if mode == 'tensor':
            return self.clip.dense_features(inputs, mode='v2')
        raise ValueError(f'RegionRecognition only evaluates (mode "predict" / "tensor"), got {mode!r}')
