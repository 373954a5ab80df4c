"""PredictedClassShareMetric: the share of regions given the one most predicted class, by hand."""
from __future__ import annotations

import math

import torch
from mmengine.structures import BaseDataElement

from ovd_demo.prediction_share import PredictedClassShareMetric


def _sample(box_topk: list[list[int]], mask_topk: list[list[int]] | None = None) -> BaseDataElement:
    s = BaseDataElement()
    s.pred_box_topk = torch.tensor(box_topk)
    if mask_topk is not None:
        s.pred_mask_topk = torch.tensor(mask_topk)
    return s


def test_share_of_the_most_predicted_top1_class() -> None:
    metric = PredictedClassShareMetric()
    # top-1 over both images: boxes 3, 3, 1, 3, 0 -> class 3 takes 3 of 5; the top-5 columns do not count
    metric.process({}, [_sample([[3, 1, 0], [3, 0, 1], [1, 3, 3]], [[2, 3, 3], [2, 3, 3], [0, 2, 2]]),
                        _sample([[3, 1, 1], [0, 1, 1]], [[1, 2, 2], [2, 3, 3]])])
    out = metric.compute_metrics(metric.results)
    assert math.isclose(out['box_top_class_share'], 60.0) and out['box_top_class'] == 3
    assert math.isclose(out['mask_top_class_share'], 60.0) and out['mask_top_class'] == 2


def test_kinds_without_predictions_are_left_out_and_every_region_on_one_class_is_100() -> None:
    metric = PredictedClassShareMetric()
    metric.process({}, [_sample([[4, 0], [4, 1]]), _sample([[4, 2]])])
    out = metric.compute_metrics(metric.results)
    assert out == {'box_top_class_share': 100.0, 'box_top_class': 4}
