"""OVCocoDataset: classes and base/novel metainfo read from the json; mmdet pipelines run on it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ovd_demo.shapes import SHAPE_BASE_CLASSES, SHAPE_CLASSES, SHAPE_NOVEL_CLASSES


@pytest.fixture(autouse=True)
def _scope() -> None:
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")


def _build(ds: dict, split: str, **kw):
    from mmdet.registry import DATASETS

    ann = {"train": "annotations/instances_train.json", "val": "annotations/instances_val.json"}[split]
    cfg = dict(type="OVCocoDataset", data_root=ds["root"], ann_file=ann,
               data_prefix=dict(img=f"images/{split}/"), pipeline=kw.pop("pipeline", []), **kw)
    return DATASETS.build(cfg)


def test_classes_come_from_the_file(synthetic_dataset: dict) -> None:
    val = _build(synthetic_dataset, "val", test_mode=True)
    assert val.metainfo["classes"] == SHAPE_CLASSES
    assert val.metainfo["novel_classes"] == SHAPE_NOVEL_CLASSES
    assert val.metainfo["base_classes"] == SHAPE_BASE_CLASSES
    assert len(val.metainfo["palette"]) == len(SHAPE_CLASSES)
    assert len(val) == 8

    train = _build(synthetic_dataset, "train", filter_cfg=dict(filter_empty_gt=True))
    assert train.metainfo["classes"] == SHAPE_BASE_CLASSES and train.metainfo["novel_classes"] == ()
    with open(synthetic_dataset["train_json"]) as f:
        assert len(train) == len(json.load(f)["images"])
    labels = {inst["bbox_label"] for i in range(len(train)) for inst in train.get_data_info(i)["instances"]}
    assert labels <= set(range(len(SHAPE_BASE_CLASSES)))


def test_config_classes_select_and_order(synthetic_dataset: dict) -> None:
    chosen = ("star", "circle")
    ds = _build(synthetic_dataset, "val", test_mode=True, metainfo=dict(classes=chosen))
    assert ds.metainfo["classes"] == chosen and ds.metainfo["novel_classes"] == ("star",)
    with open(synthetic_dataset["val_json"]) as f:
        gt = json.load(f)
    names = {c["id"]: c["name"] for c in gt["categories"]}
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        expect = sorted(chosen.index(names[a["category_id"]]) for a in gt["annotations"]
                        if a["image_id"] == info["img_id"] and names[a["category_id"]] in chosen)
        assert sorted(inst["bbox_label"] for inst in info["instances"]) == expect
    with pytest.raises(ValueError, match="none of the configured classes"):
        _build(synthetic_dataset, "val", test_mode=True, metainfo=dict(classes=("dodecahedron",)))


def test_base_only_train_file_with_the_full_label_space(synthetic_dataset: dict) -> None:
    """The detector's label space holds novel classes too; the base-only train file lacks them."""
    from ovd_demo.shapes import SHAPE_CLASSES, SHAPE_NOVEL_CLASSES

    ds = _build(synthetic_dataset, "train", test_mode=False, metainfo=dict(classes=SHAPE_CLASSES))
    assert ds.metainfo["classes"] == SHAPE_CLASSES
    labels = [inst["bbox_label"] for i in range(len(ds)) for inst in ds.get_data_info(i)["instances"]]
    assert labels, "the base boxes must still be loaded"
    novel = {SHAPE_CLASSES.index(n) for n in SHAPE_NOVEL_CLASSES}
    assert not novel & set(labels)
    with open(synthetic_dataset["train_json"]) as f:
        gt = json.load(f)
    names = {c["id"]: c["name"] for c in gt["categories"]}
    assert sorted(labels) == sorted(SHAPE_CLASSES.index(names[a["category_id"]]) for a in gt["annotations"])


def test_mmdet_pipeline_with_masks(synthetic_dataset: dict) -> None:
    pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
                dict(type="PackDetInputs")]
    ds = _build(synthetic_dataset, "val", test_mode=False, pipeline=pipeline)
    item = ds[0]
    sample = item["data_samples"]
    assert tuple(item["inputs"].shape) == (3, 64, 64)
    masks = sample.gt_instances.masks.to_ndarray()
    boxes = sample.gt_instances.bboxes.tensor.numpy()
    assert len(masks) == len(boxes) >= 1
    for m, b in zip(masks, boxes):
        ys, xs = np.nonzero(m)
        assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == pytest.approx(b.tolist())
