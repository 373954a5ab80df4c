"""Per-class-averaged top-1 / top-5 accuracy of region classification, things and stuff apart."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmdet.registry import METRICS

__all__ = ['RegionRecognitionMetric', 'mean_class_accuracy']

KINDS = ('box', 'mask', 'crop')


def mean_class_accuracy(labels: np.ndarray, correct: np.ndarray, classes: np.ndarray | None = None) -> float:
    """Mean over classes of the fraction of correct regions, in percent.

    Args:
        labels: (n,) ground-truth class per region.
        correct: (n,) bool per region.
        classes: the classes to average over (default: those present in ``labels``); classes with no
            region are skipped (an accuracy of 0/0 is undefined).

    Returns:
        mAcc in [0, 100]; NaN when no class has a region.
    """
    present = np.unique(labels) if classes is None else np.intersect1d(classes, np.unique(labels))
    if present.size == 0:
        return float('nan')
    return float(np.mean([correct[labels == c].mean() for c in present]) * 100.0)


@METRICS.register_module()
class RegionRecognitionMetric(BaseMetric):
    """Region-recognition mAcc (the CLIM/CLIPSelf region test), for boxes, masks and crops.

    Reads from each predicted sample ``gt_labels`` (n,) and ``pred_{box,mask,crop}_topk`` (n, k),
    and from ``dataset_meta`` the ``isthing`` flag per class (default: all things).

    Reports ``{kind}_{top1,top5}_{things,stuff,all}`` (percent, per-class averaged), for the kinds
    that were predicted; stuff keys only when the dataset has stuff classes.
    """

    default_prefix = 'region'

    def __init__(self, kinds: Sequence[str] = KINDS, collect_device: str = 'cpu',
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.kinds = tuple(kinds)

    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        for s in data_samples:
            get = s.get if isinstance(s, dict) else (lambda k, d=None, _s=s: getattr(_s, k, d))
            labels = get('gt_labels')
            labels = labels.cpu() if hasattr(labels, 'cpu') else labels
            entry = dict(labels=np.asarray(labels, dtype=np.int64))
            for kind in self.kinds:
                topk = get(f'pred_{kind}_topk')
                if topk is not None:
                    entry[kind] = np.asarray(topk.cpu() if hasattr(topk, 'cpu') else topk, dtype=np.int64)
            self.results.append(entry)

    def compute_metrics(self, results: list) -> dict[str, float]:
        labels = np.concatenate([r['labels'] for r in results]) if results else np.zeros(0, np.int64)
        meta = self.dataset_meta or {}
        isthing = np.asarray(meta.get('isthing', ()), dtype=bool)
        num_classes = len(isthing) if isthing.size else int(labels.max(initial=-1)) + 1
        if not isthing.size:
            isthing = np.ones(num_classes, dtype=bool)
        splits = {'things': np.nonzero(isthing)[0], 'stuff': np.nonzero(~isthing)[0],
                  'all': np.arange(num_classes)}
        if not splits['stuff'].size:
            del splits['stuff']
        out: dict[str, float] = {}
        for kind in self.kinds:
            if not results or any(kind not in r for r in results):
                continue
            topk = np.concatenate([r[kind] for r in results])
            top1 = topk[:, 0] == labels
            top5 = (topk[:, :5] == labels[:, None]).any(axis=1)
            for split, classes in splits.items():
                out[f'{kind}_top1_{split}'] = mean_class_accuracy(labels, top1, classes)
                out[f'{kind}_top5_{split}'] = mean_class_accuracy(labels, top5, classes)
        MMLogger.get_current_instance().info(
            f'region recognition over {len(labels)} regions: '
            + ', '.join(f'{k}={v:.2f}' for k, v in out.items()))
        return out
