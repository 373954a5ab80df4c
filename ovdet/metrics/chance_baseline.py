"""The chance baseline of the OV-COCO metric: the same boxes with random class labels and scores."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mmdet.registry import METRICS

from .ov_coco_metric import OVCocoMetric


@METRICS.register_module()
class OVCocoChanceMetric(OVCocoMetric):
    """:class:`OVCocoMetric` on a detector's boxes after replacing every label and score at random.

    Evaluated next to the real metric in the same test run, it answers "how much AP50 do these
    boxes get without any recognition?": open-vocabulary transfer is real only if the detector's
    novel AP50 is well above this one. Labels are uniform over the dataset's classes, scores
    uniform in [0, 1), from a seeded generator (same numbers for the same predictions).

    Args:
        seed: seed of the label/score generator.
        **kwargs: as :class:`OVCocoMetric`; keys are prefixed ``chance/``.
    """

    default_prefix: str | None = 'chance'

    def __init__(self, seed: int = 0, **kwargs) -> None:
        kwargs.setdefault('classwise', False)
        super().__init__(**kwargs)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def process(self, data_batch: dict | None, data_samples: Sequence[dict]) -> None:
        start = len(self.results)
        super().process(data_batch, data_samples)
        classes = self._classes()
        num_classes = len(classes) if classes else len(self._gt['categories']) if self._gt else None
        if not num_classes:
            raise ValueError('OVCocoChanceMetric needs dataset_meta["classes"] or an ann_file')
        for res in self.results[start:]:
            n = len(res['labels'])
            res['labels'] = self._rng.integers(0, num_classes, size=n)
            res['scores'] = self._rng.random(n)
