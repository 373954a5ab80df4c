"""How concentrated a region classifier's top-1 predictions are: the share of the most predicted class."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from mmdet.registry import METRICS


@METRICS.register_module()
class PredictedClassShareMetric(BaseMetric):
    """Share (percent) of the regions whose top-1 prediction is the one most predicted class.

    Reads ``pred_{kind}_topk`` (n, k) of each sample (as :class:`~clim.evaluation.RegionClassifier`
    writes them) and reports ``{kind}_top_class_share`` (0-100; 100 / C for evenly spread predictions,
    100 when every region gets the same class) and ``{kind}_top_class`` (that class's index), for each
    kind that was predicted. It sits next to ``RegionRecognitionMetric``: a dense map that puts almost
    every box closest to one class name has a mAcc near chance and a share near 100.
    """

    default_prefix = 'region_share'

    def __init__(self, kinds: Sequence[str] = ('box', 'mask'), collect_device: str = 'cpu',
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.kinds = tuple(kinds)

    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        for s in data_samples:
            get = s.get if isinstance(s, dict) else (lambda k, d=None, _s=s: getattr(_s, k, d))
            entry = {}
            for kind in self.kinds:
                topk = get(f'pred_{kind}_topk')
                if topk is not None:
                    topk = topk.cpu() if hasattr(topk, 'cpu') else topk
                    entry[kind] = np.asarray(topk, dtype=np.int64).reshape(len(topk), -1)[:, 0]
            self.results.append(entry)

    def compute_metrics(self, results: list) -> dict[str, float]:
        out: dict[str, float] = {}
        for kind in self.kinds:
            if not results or any(kind not in r for r in results):
                continue
            top1 = np.concatenate([r[kind] for r in results])
            if not top1.size:
                out[f'{kind}_top_class_share'] = float('nan')
                continue
            counts = np.bincount(top1)
            out[f'{kind}_top_class_share'] = 100.0 * float(counts.max()) / len(top1)
            out[f'{kind}_top_class'] = int(counts.argmax())
        return out
