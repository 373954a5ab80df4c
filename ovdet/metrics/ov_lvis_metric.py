"""OV-LVIS metric: mask and box AP, APr / APc / APf through the official ``lvis`` package (LVISEval).

Protocol (the OV-LVIS evaluation of the references): federated LVIS evaluation, at most 300 detections per
image (highest scores kept), IoU 0.50:0.05:0.95, 101 recall points; a detection of class c in image I
is scored only if I has a ground-truth c or c is in I's ``neg_category_ids``; unmatched detections
of I's ``not_exhaustive_category_ids`` are ignored. AP = mean over categories with ground truth;
APr / APc / APf over the val json's frequency groups. The headline is mask APr (``segm_APr``).

``lvis`` 0.5.3 (2020) comes through :mod:`ovdet.metrics.lvis_api`, which contains its import-time
logging setup and patches around what breaks on numpy 2 and Python 3.13.
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp
from collections.abc import Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path
from mmengine.logging import MMLogger

from mmdet.registry import METRICS

from ..datasets.ov_lvis import check_lvis
from .lvis_api import import_lvis, quiet_lvis_loggers

__all__ = ['OVLVISMetric', 'import_lvis', 'LVIS_SUMMARY_KEYS']

# What LVISEval.summarize reports as AP (AR keys are left out).
LVIS_SUMMARY_KEYS: tuple[str, ...] = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf')


@METRICS.register_module()
class OVLVISMetric(BaseMetric):
    """Federated LVIS mask / box AP (``segm_AP``, ``segm_APr``, ..., ``bbox_APf``) via ``lvis.LVISEval``.

    Values are fractions in [0, 1]; a group without ground-truth categories among the evaluated images
    is NaN (LVISEval's -1). Keys are prefixed ``ov_lvis/`` by MMEngine (``ov_lvis/segm_APr``).

    Inputs (``process``): data samples with ``img_id`` and ``pred_instances`` holding ``bboxes``
    (k, 4) xyxy original-image pixels, ``scores`` (k,), ``labels`` (k,) indexing
    ``dataset_meta['classes']`` (matched to the file's categories by name; without dataset_meta,
    labels index the file's categories in file order) and, for ``segm``, ``masks`` (k, H, W) bool at
    the original size.

    Args:
        ann_file: the LVIS v1 val json (its categories carry the ``frequency`` tags and images the
            neg / not-exhaustive lists).
        metric: ``'segm'`` and / or ``'bbox'``. Mask results also carry their box, as MMDetection's
            LVISMetric writes them (the reference), so LVISResults takes a mask's *area* from its box:
            this moves only the APs / APm / APl split, never AP or APr / APc / APf.
        max_dets: detections kept per image (LVIS: 300).
        classwise: log per-category AP tables (and return ``{metric}_AP/<name>`` keys).
        outfile_prefix: also write ``<prefix>.bbox.json`` / ``<prefix>.segm.json`` (LVIS results format);
            ``format_only`` writes only those.
        collect_device / prefix / backend_args: as in :class:`mmengine.evaluator.BaseMetric`.
    """

    default_prefix: str | None = 'ov_lvis'

    def __init__(self, ann_file: str, metric: str | Sequence[str] = ('segm', 'bbox'), max_dets: int = 300,
                 classwise: bool = False, format_only: bool = False, outfile_prefix: str | None = None,
                 collect_device: str = 'cpu', prefix: str | None = None,
                 backend_args: dict | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.metrics = [metric] if isinstance(metric, str) else list(metric)
        bad = [m for m in self.metrics if m not in ('segm', 'bbox')]
        if bad or not self.metrics:
            raise ValueError(f"metric must be 'segm' and/or 'bbox', got {metric!r}")
        self.max_dets = int(max_dets)
        self.classwise = classwise
        if format_only and not outfile_prefix:
            raise ValueError('format_only=True needs outfile_prefix')
        self.format_only = format_only
        self.outfile_prefix = outfile_prefix
        LVIS, _, _ = import_lvis()
        if not osp.isfile(ann_file) and backend_args is None:
            raise FileNotFoundError(f'OVLVISMetric: annotation file not found: {ann_file} (the LVIS v1 val '
                                    'json, see data/README.md)')
        with get_local_path(ann_file, backend_args=backend_args) as local_path:
            try:
                with quiet_lvis_loggers():
                    self._lvis_gt = LVIS(local_path)
            except json.JSONDecodeError as e:
                raise ValueError(f'{ann_file} is not valid JSON: {e.msg} at line {e.lineno}') from None
        check_lvis(self._lvis_gt.dataset, ann_file)
        self.ann_file = ann_file

    # ------------------------------------------------------------------------------------------
    def process(self, data_batch: dict | None, data_samples: Sequence[dict]) -> None:
        """Keep each image's predictions, masks as RLE (the memory of 300 full-size masks is too much)."""
        for ds in data_samples:
            pred = ds['pred_instances']
            res = {'img_id': int(ds['img_id']),
                   'bboxes': _to_numpy(pred['bboxes']).reshape(-1, 4).astype(np.float64),
                   'scores': _to_numpy(pred['scores']).reshape(-1).astype(np.float64),
                   'labels': _to_numpy(pred['labels']).reshape(-1).astype(np.int64)}
            if 'segm' in self.metrics:
                if 'masks' not in pred:
                    raise KeyError("OVLVISMetric(metric='segm') needs pred_instances.masks: use a detector "
                                   "with a mask head, or metric='bbox'")
                res['masks'] = encode_masks(_to_numpy(pred['masks']))
            self.results.append(res)

    # ------------------------------------------------------------------------------------------
    def _label_to_cat_id(self) -> np.ndarray:
        cats = self._lvis_gt.dataset['categories']
        classes = (self.dataset_meta or {}).get('classes')
        if not classes:
            return np.array([int(c['id']) for c in cats], dtype=np.int64)
        name_to_id = {c['name']: int(c['id']) for c in cats}
        missing = [n for n in classes if n not in name_to_id]
        if missing:
            raise ValueError(f'{self.ann_file}: {len(missing)} predicted classes are not among its categories, '
                             f'e.g. {missing[:5]}')
        return np.array([name_to_id[n] for n in classes], dtype=np.int64)

    def results_to_json(self, results: list[dict]) -> dict[str, list[dict]]:
        """LVIS results format per metric: ``{image_id, category_id, bbox (xywh), score}`` (+
        ``segmentation`` RLE for ``segm``)."""
        lut = self._label_to_cat_id()
        out: dict[str, list[dict]] = {m: [] for m in self.metrics}
        for r in results:
            labels = r['labels']
            if len(labels) and (labels.min() < 0 or labels.max() >= len(lut)):
                raise ValueError(f"image {r['img_id']}: predicted label outside the {len(lut)} classes")
            xywh = r['bboxes'].copy()
            xywh[:, 2:] -= xywh[:, :2]
            for i, label in enumerate(labels):
                det = {'image_id': r['img_id'], 'category_id': int(lut[label]),
                       'bbox': [float(v) for v in xywh[i]], 'score': float(r['scores'][i])}
                if 'bbox' in out:
                    out['bbox'].append(det)
                if 'segm' in out:
                    out['segm'].append({**det, 'segmentation': r['masks'][i]})
        return out

    def _dump(self, dets: dict[str, list[dict]]) -> list[str]:
        paths = []
        os.makedirs(osp.dirname(osp.abspath(self.outfile_prefix)), exist_ok=True)
        for m, anns in dets.items():
            path = f'{self.outfile_prefix}.{m}.json'
            with open(path, 'w') as f:
                json.dump(anns, f)
            paths.append(path)
        return paths

    def evaluate_results(self, dets: list[dict], iou_type: str, img_ids: Sequence[int]):
        """One official LVISEval run over ``img_ids``; returns the evaluator (``results``, ``eval``)
        or None when there is no detection at all (LVISResults cannot take an empty list)."""
        _, LVISResults, LVISEval = import_lvis()
        if not dets:
            return None
        with quiet_lvis_loggers():
            lvis_dt = LVISResults(self._lvis_gt, dets, max_dets=self.max_dets)
            ev = LVISEval(self._lvis_gt, lvis_dt, iou_type)
            ev.params.img_ids = sorted(int(i) for i in img_ids)
            ev.params.max_dets = self.max_dets
            ev.run()
        return ev

    def compute_metrics(self, results: list) -> dict[str, float]:
        """Run LVISEval per metric over the processed images."""
        logger = MMLogger.get_current_instance()
        dets = self.results_to_json(results)
        if self.outfile_prefix:
            logger.info(f'OVLVISMetric: detections written to {", ".join(self._dump(dets))}')
            if self.format_only:
                return {}
        img_ids = sorted({r['img_id'] for r in results})
        unknown = [i for i in img_ids if i not in self._lvis_gt.imgs]
        if unknown:
            raise ValueError(f'{len(unknown)} evaluated images are not in {self.ann_file}, e.g. {unknown[:5]}')
        metrics: dict[str, float] = {}
        for m in self.metrics:
            ev = self.evaluate_results(dets[m], m, img_ids)
            if ev is None:
                logger.warning(f'OVLVISMetric: no {m} detections at all: every AP is 0')
                values = self._no_detection_values(img_ids)
            else:
                values = {k: _nan_if_missing(ev.results[k]) for k in LVIS_SUMMARY_KEYS}
                if self.classwise:
                    per_cat = _per_category_ap(ev)
                    logger.info(f'\n{m} AP per category:\n' + _table(per_cat, self._lvis_gt.cats))
                    for cat_id, ap in per_cat.items():
                        metrics[f"{m}_AP/{self._lvis_gt.cats[cat_id]['name']}"] = ap
            metrics.update({f'{m}_{k}': v for k, v in values.items()})
        summary = '  '.join(f'{"mask" if m == "segm" else "box"} AP {_pct(metrics[f"{m}_AP"])} '
                            f'APr {_pct(metrics[f"{m}_APr"])} APc {_pct(metrics[f"{m}_APc"])} '
                            f'APf {_pct(metrics[f"{m}_APf"])}' for m in self.metrics)
        logger.info(f'OV-LVIS ({len(img_ids)} images, federated, {self.max_dets} dets/image): {summary}')
        return metrics

    def _no_detection_values(self, img_ids: Sequence[int]) -> dict[str, float]:
        # Every category with ground truth scores 0; a group without any stays NaN, as LVISEval has it.
        keep = set(img_ids)
        with_gt = {a['category_id'] for a in self._lvis_gt.dataset['annotations'] if a['image_id'] in keep}
        freq = {f: any(self._lvis_gt.cats[c]['frequency'] == f for c in with_gt) for f in 'rcf'}
        values = {k: 0.0 if with_gt else float('nan') for k in LVIS_SUMMARY_KEYS}
        for f in 'rcf':
            values[f'AP{f}'] = 0.0 if freq[f] else float('nan')
        return values


def encode_masks(masks: np.ndarray) -> list[dict]:
    """(k, H, W) binary masks -> k COCO RLEs with ``counts`` as str (json-ready)."""
    from pycocotools import mask as mask_utils

    if masks.ndim != 3:
        raise ValueError(f'masks must be (k, H, W), got shape {masks.shape}')
    if masks.shape[0] == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    for rle in rles:
        rle['counts'] = rle['counts'].decode('ascii')
    return rles


def _per_category_ap(ev) -> dict[int, float]:
    prec = ev.eval['precision']  # (iou, recall, category, area)
    out = {}
    for k, cat_id in enumerate(ev.params.cat_ids):
        p = prec[:, :, k, 0]
        p = p[p > -1]
        out[int(cat_id)] = float(np.mean(p)) if p.size else float('nan')
    return out


def _nan_if_missing(v) -> float:
    v = float(v)
    return float('nan') if v == -1 else v


def _pct(v: float) -> str:
    return 'n/a' if math.isnan(v) else f'{100 * v:.2f}'


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, 'detach'):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _table(per_cat: dict[int, float], cats: dict[int, dict]) -> str:
    cells = [(f"{cats[c]['name']} ({cats[c]['frequency']})", _pct(v)) for c, v in per_cat.items()
             if not math.isnan(v)]
    w = max((len(n) for n, _ in cells), default=8)
    rows = [cells[i:i + 3] for i in range(0, len(cells), 3)]
    return '\n'.join('   '.join(f'{n:<{w}} {v:>6}' for n, v in row) for row in rows) + \
        f'\n({len(cells)} categories with ground truth)'

