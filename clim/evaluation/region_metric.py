"""Per-class-averaged top-1 / top-5 accuracy of region classification, things and stuff apart."""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmdet.registry import METRICS

from ..datasets.region_protocol import RegionProtocol, get_region_protocol

__all__ = ['RegionRecognitionMetric', 'mean_class_accuracy', 'format_region_table']

KINDS = ('box', 'mask', 'crop')


def mean_class_accuracy(labels: np.ndarray, correct: np.ndarray, classes: np.ndarray | None = None,
                        round_fp16: bool = False) -> float:
    """Mean over classes of the fraction of correct regions, in percent.

    Args:
        labels: (n,) ground-truth class per region.
        correct: (n,) bool per region.
        classes: the classes to average over (default: those present in ``labels``); classes with no
            region are skipped (an accuracy of 0/0 is undefined).
        round_fp16: round each class's accuracy (a float32 fraction) to float16 before the mean, as
            the reference does (``zero_shot.py``: ``.mean().half()``).

    Returns:
        mAcc in [0, 100]; NaN when no class has a region.
    """
    present = np.unique(labels) if classes is None else np.intersect1d(classes, np.unique(labels))
    if present.size == 0:
        return float('nan')
    if not round_fp16:
        return float(np.mean([correct[labels == c].mean() for c in present]) * 100.0)
    import torch
    accs = [torch.from_numpy(correct[labels == c].astype(np.float32)).mean().half().item() for c in present]
    return sum(accs) / len(accs) * 100.0


@METRICS.register_module()
class RegionRecognitionMetric(BaseMetric):
    """Region-recognition mAcc (the CLIM/CLIPSelf region test), for boxes, masks and crops.

    Reads from each predicted sample ``gt_labels`` (n,) and ``pred_{box,mask,crop}_topk`` (n, k),
    and from ``dataset_meta`` the ``isthing`` flag per class (default: all things).

    Reports ``{kind}_{top1,top5}_{things,stuff,all}`` (percent, per-class averaged), for the kinds
    that were predicted; stuff keys only when the dataset has stuff classes ("all" is ours: the
    reference reports things and stuff only). The keys carry the protocol: prefix ``region`` for
    ``'clim-ovd'``, ``region_<protocol>`` otherwise (e.g. ``region_reference/box_top1_things``,
    ``region_reference_antialias/...``), and the logged table is titled with it.

    Args:
        protocol: the data protocol the predictions were made under (:mod:`clim.datasets.region_protocol`);
            None (default): the dataset's (its ``metainfo['region_protocol']``, else ``'clim-ovd'``). Given
            explicitly, it must match the dataset's. ``'reference'`` rounds per-class accuracies to fp16.
    """

    default_prefix = 'region'

    def __init__(self, kinds: Sequence[str] = KINDS, protocol: str | dict | RegionProtocol | None = None,
                 collect_device: str = 'cpu', prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self._fixed_prefix = prefix is not None
        self.protocol = None if protocol is None else get_region_protocol(protocol)
        self.kinds = tuple(kinds)

    def _resolve_protocol(self) -> RegionProtocol:
        """The protocol to score under (checked against the dataset's); sets the key prefix from it."""
        meta = self.dataset_meta or {}
        data_protocol = meta.get('region_protocol')
        fields = meta.get('region_protocol_fields')
        protocol = self.protocol or (RegionProtocol(**fields) if fields else
                                     get_region_protocol(data_protocol or 'clim-ovd'))
        if data_protocol is not None and data_protocol != protocol.name:
            raise ValueError(f'RegionRecognitionMetric(protocol={protocol.name!r}) scores a dataset built '
                             f'with protocol {data_protocol!r}: give both the same protocol')
        if not self._fixed_prefix:
            self.prefix = 'region' if protocol.name == 'clim-ovd' else \
                'region_' + re.sub(r'[^0-9A-Za-z]+', '_', protocol.name)
        return protocol

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
        protocol = self._resolve_protocol()
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
            fp16 = protocol.round_class_acc_fp16
            for split, classes in splits.items():
                out[f'{kind}_top1_{split}'] = mean_class_accuracy(labels, top1, classes, fp16)
                out[f'{kind}_top5_{split}'] = mean_class_accuracy(labels, top5, classes, fp16)
        MMLogger.get_current_instance().info(format_region_table(out, protocol.name, len(labels)))
        return out


def format_region_table(metrics: dict[str, float], protocol: str, num_regions: int) -> str:
    """The mAcc table: rows boxes / masks / crops, columns (things, stuff, all) x (top-1, top-5)."""
    splits = [s for s in ('things', 'stuff', 'all') if any(k.endswith('_' + s) for k in metrics)]
    head = ''.join(f'{f"{s} top-1":>14}{f"{s} top-5":>14}' for s in splits)
    rows = [f'region recognition mAcc (%), protocol {protocol!r}, {num_regions} regions',
            f'{"":<8}{head}']
    for kind, label in (('box', 'boxes'), ('mask', 'masks'), ('crop', 'crops')):
        if not any(k.startswith(kind + '_') for k in metrics):
            continue
        cells = ''.join(f'{metrics.get(f"{kind}_top{k}_{s}", float("nan")):>14.2f}' for s in splits for k in (1, 5))
        rows.append(f'{label:<8}{cells}')
    return '\n'.join(rows)
