"""OVCocoMetric and the AP50 backends against a hand-written pycocotools COCOeval reference."""
from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ovd_demo.shapes import SHAPE_BASE_CLASSES, SHAPE_NOVEL_CLASSES, generate_shapes_dataset
from ovdet.metrics import OVCocoMetric, available_backends, per_category_ap50
from ovdet.metrics.ap50 import resolve_backend


@pytest.fixture(scope="module")
def val_set(tmp_path_factory) -> dict:
    """40 generated val images (all 10 shape classes, 3 novel) and its json."""
    p = generate_shapes_dataset(tmp_path_factory.mktemp("metric_shapes"), 0, 40, image_size=96, seed=11)
    with open(p["val_json"]) as f:
        p["gt"] = json.load(f)
    return p


def random_detections(gt: dict, seed: int = 0, per_image_bg: int = 6) -> np.ndarray:
    """Noisy copies of GT boxes (sometimes the wrong class) plus background boxes; tied scores too."""
    rng = np.random.default_rng(seed)
    cat_ids = [c["id"] for c in gt["categories"]]
    rows = []
    for im in gt["images"]:
        for a in (a for a in gt["annotations"] if a["image_id"] == im["id"]):
            x, y, w, h = a["bbox"]
            for _ in range(int(rng.integers(0, 4))):
                j = rng.normal(0, 0.1, 4) * [w, h, w, h]
                c = a["category_id"] if rng.random() < 0.7 else int(rng.choice(cat_ids))
                rows.append([im["id"], x + j[0], y + j[1], max(1, w + j[2]), max(1, h + j[3]),
                             round(rng.random(), 2), c])
        for _ in range(per_image_bg):
            x, y = rng.uniform(0, im["width"] - 10, 2)
            w, h = rng.uniform(4, 40, 2)
            rows.append([im["id"], x, y, w, h, round(rng.random() * 0.6, 2), int(rng.choice(cat_ids))])
    return np.asarray(rows, dtype=np.float64)


def reference_ap50(ann_file: str, dets: np.ndarray, img_ids=None) -> dict[int, float]:
    """Plain pycocotools, stock parameters, results as the json list the official tools read."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        res = [{"image_id": int(d[0]), "bbox": [float(v) for v in d[1:5]], "score": float(d[5]),
                "category_id": int(d[6])} for d in dets]
        ev = COCOeval(gt, gt.loadRes(res), "bbox")
        if img_ids is not None:
            ev.params.imgIds = list(img_ids)
        ev.evaluate()
        ev.accumulate()
    assert ev.params.iouThrs[0] == 0.5 and ev.params.maxDets[2] == 100 and ev.params.areaRngLbl[0] == "all"
    out = {}
    for k, cat in enumerate(ev.params.catIds):
        prec = ev.eval["precision"][0, :, k, 0, 2]
        prec = prec[prec > -1]
        out[cat] = float(prec.mean()) if prec.size else float("nan")
    return out


def _same(a: dict[int, float], b: dict[int, float], tol: float = 1e-9) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or abs(a[k] - b[k]) <= tol for k in a)


def _means(ap: dict[int, float], gt: dict, novel=SHAPE_NOVEL_CLASSES) -> dict[str, float]:
    name = {c["id"]: c["name"] for c in gt["categories"]}

    def m(ids):
        v = [ap[i] for i in ids if not math.isnan(ap[i])]
        return sum(v) / len(v)

    nov = [i for i in ap if name[i] in novel]
    base = [i for i in ap if name[i] not in novel]
    return {"novel_ap50": m(nov), "base_ap50": m(base), "all_ap50": m(list(ap))}


# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["ap50", "full"])
@pytest.mark.parametrize("backend", ["pycocotools", "faster_coco_eval", "hotcoco", "ultrafast_pycocotools"])
def test_backends_equal_pycocotools(val_set: dict, backend: str, protocol: str) -> None:
    if backend not in available_backends():
        pytest.skip(f"{backend} not installed")
    dets = random_detections(val_set["gt"], seed=1)
    ref = reference_ap50(val_set["val_json"], dets)
    got = per_category_ap50(val_set["gt"], dets, backend=backend, protocol=protocol)
    assert len(ref) == 10 and not any(math.isnan(v) for v in ref.values())
    assert 0.05 < min(ref.values()) and max(ref.values()) < 0.99  # a non-trivial case
    assert _same(got, ref), {k: (got[k], ref[k]) for k in ref if got.get(k) != ref[k]}


def test_gt_not_modified_and_subset_of_images(val_set: dict) -> None:
    gt = val_set["gt"]
    before = copy.deepcopy(gt)
    dets = random_detections(gt, seed=2)
    ids = [im["id"] for im in gt["images"][:15]]
    got = per_category_ap50(gt, dets, backend="pycocotools", img_ids=ids)
    assert gt == before
    assert _same(got, reference_ap50(val_set["val_json"], dets[np.isin(dets[:, 0], ids)], img_ids=ids))


def test_no_detections_and_missing_gt_category(val_set: dict, tmp_path: Path) -> None:
    gt = copy.deepcopy(val_set["gt"])
    star = next(c["id"] for c in gt["categories"] if c["name"] == "star")
    gt["annotations"] = [a for a in gt["annotations"] if a["category_id"] != star]
    ann = tmp_path / "no_star.json"
    ann.write_text(json.dumps(gt))
    zero = per_category_ap50(gt, np.zeros((0, 7)))
    assert math.isnan(zero[star]) and all(v == 0.0 for k, v in zero.items() if k != star)

    dets = random_detections(val_set["gt"], seed=3)  # still predicts stars
    assert (dets[:, 6] == star).any()
    metric = OVCocoMetric(ann_file=str(ann), backend="pycocotools", classwise=False)
    metric.dataset_meta = {"classes": tuple(c["name"] for c in gt["categories"])}
    out = metric.compute_metrics(_results_from_dets(dets, gt))
    ref = reference_ap50(str(ann), dets)
    assert math.isnan(ref[star])
    expect = _means(ref, gt)  # the mean over novel = ring, arrow only
    for k in expect:
        assert out[k] == pytest.approx(expect[k], abs=1e-12)


def _results_from_dets(dets: np.ndarray, gt: dict, classes: tuple[str, ...] | None = None) -> list[dict]:
    classes = classes or tuple(c["name"] for c in gt["categories"])
    name = {c["id"]: c["name"] for c in gt["categories"]}
    out = []
    for im in gt["images"]:
        d = dets[dets[:, 0] == im["id"]]
        out.append({"img_id": im["id"], "bboxes": np.concatenate([d[:, 1:3], d[:, 1:3] + d[:, 3:5]], 1),
                    "scores": d[:, 5], "labels": np.array([classes.index(name[int(c)]) for c in d[:, 6]])})
    return out


def _det_data_samples(dets: np.ndarray, dataset, label_order: tuple[str, ...]) -> list:
    """mmdet DetDataSamples as a detector's predict() returns them (labels index `label_order`)."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    name_by_id = {c["id"]: c["name"] for c in json.load(open(dataset.ann_file))["categories"]}
    samples = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        d = dets[dets[:, 0] == info["img_id"]]
        s = DetDataSample(metainfo={"img_id": info["img_id"], "ori_shape": (info["height"], info["width"]),
                                    "img_path": info["img_path"]})
        pred = InstanceData()
        pred.bboxes = torch.tensor(np.concatenate([d[:, 1:3], d[:, 1:3] + d[:, 3:5]], 1), dtype=torch.float32)
        pred.scores = torch.tensor(d[:, 5], dtype=torch.float32)
        pred.labels = torch.tensor([label_order.index(name_by_id[int(c)]) for c in d[:, 6]], dtype=torch.long)
        s.pred_instances = pred
        s.instances = info["instances"]  # what PackDetInputs does not carry, mmdet's CocoMetric reads
        samples.append(s)
    return samples


def _float32_dets(dets: np.ndarray) -> np.ndarray:
    # Detectors hand out float32 boxes/scores: the reference must see the same numbers.
    d = dets.copy()
    xyxy = np.concatenate([d[:, 1:3], d[:, 1:3] + d[:, 3:5]], 1).astype(np.float32).astype(np.float64)
    d[:, 1:3] = xyxy[:, :2]
    d[:, 3:5] = xyxy[:, 2:] - xyxy[:, :2]
    d[:, 5] = d[:, 5].astype(np.float32).astype(np.float64)
    return d


@pytest.mark.parametrize("with_ann_file", [True, False])
def test_mmengine_evaluator_path(val_set: dict, with_ann_file: bool) -> None:
    """Config -> registry -> Evaluator.process/evaluate with DetDataSamples, as the val loop runs it."""
    from mmdet.registry import DATASETS, METRICS
    from mmengine.evaluator import Evaluator
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    dataset = DATASETS.build(dict(type="OVCocoDataset", data_root=val_set["root"],
                                  ann_file="annotations/instances_val.json",
                                  data_prefix=dict(img="images/val/"), test_mode=True, pipeline=[]))
    assert dataset.metainfo["novel_classes"] == SHAPE_NOVEL_CLASSES
    cfg = dict(type="OVCocoMetric", backend="pycocotools")
    if with_ann_file:
        cfg["ann_file"] = val_set["val_json"]
    evaluator = Evaluator(METRICS.build(cfg))
    evaluator.dataset_meta = dataset.metainfo
    dets = random_detections(val_set["gt"], seed=4)
    samples = _det_data_samples(dets, dataset, dataset.metainfo["classes"])
    for k in range(0, len(samples), 8):
        evaluator.process(data_samples=samples[k:k + 8], data_batch={})
    out = evaluator.evaluate(len(samples))
    assert set(out) == {"ov_coco/novel_ap50", "ov_coco/base_ap50", "ov_coco/all_ap50"}
    ref = _means(reference_ap50(val_set["val_json"], _float32_dets(dets)), val_set["gt"])
    for k, v in ref.items():
        assert out[f"ov_coco/{k}"] == pytest.approx(v, abs=1e-9)
    assert out["ov_coco/novel_ap50"] != out["ov_coco/base_ap50"]


def test_class_order_novel_override_and_classwise(val_set: dict) -> None:
    gt = val_set["gt"]
    dets = random_detections(gt, seed=5)
    ref = reference_ap50(val_set["val_json"], dets)
    # The model's class order differs from the file's: labels are mapped by name.
    classes = tuple(reversed([c["name"] for c in gt["categories"]]))
    metric = OVCocoMetric(ann_file=val_set["val_json"], novel_classes=["circle", "square"],
                          backend="pycocotools", classwise_results=True)
    metric.dataset_meta = {"classes": classes}
    out = metric.compute_metrics(_results_from_dets(dets, gt, classes))
    expect = _means(ref, gt, novel=("circle", "square"))
    for k in expect:
        assert out[k] == pytest.approx(expect[k], abs=1e-12)
    for c in gt["categories"]:
        assert out[f"AP50/{c['name']}"] == pytest.approx(ref[c["id"]], abs=1e-12)


def test_auto_backend_and_format_only(val_set: dict, tmp_path: Path) -> None:
    assert resolve_backend("auto") in available_backends()
    with pytest.raises(ValueError):
        resolve_backend("nope")
    gt = val_set["gt"]
    dets = random_detections(gt, seed=6)
    metric = OVCocoMetric(ann_file=val_set["val_json"], format_only=True, outfile_prefix=str(tmp_path / "r"))
    metric.dataset_meta = {"classes": tuple(c["name"] for c in gt["categories"])}
    assert metric.compute_metrics(_results_from_dets(dets, gt)) == {}
    written = json.loads((tmp_path / "r.bbox.json").read_text())
    assert len(written) == len(dets) and {"image_id", "bbox", "score", "category_id"} <= set(written[0])
    # the dumped file scores the same with the official tool
    ref = reference_ap50(val_set["val_json"], dets)
    re_read = np.array([[r["image_id"], *r["bbox"], r["score"], r["category_id"]] for r in written])
    assert _same(reference_ap50(val_set["val_json"], re_read), ref)


# -- categories in neither split ------------------------------------------------------------------
def _hand_means(ref: dict[int, float], gt: dict, novel: tuple[str, ...], base: tuple[str, ...]) -> dict:
    """Means of the pycocotools AP50 over exactly the named categories (``all`` = novel + base)."""
    name = {c["id"]: c["name"] for c in gt["categories"]}

    def m(names):
        v = [ap for i, ap in ref.items() if name[i] in names and not math.isnan(ap)]
        return sum(v) / len(v)

    return {"novel_ap50": m(novel), "base_ap50": m(base), "all_ap50": m(novel + base)}


def test_explicit_base_classes_leave_the_rest_unevaluated(val_set: dict) -> None:
    """novel_classes + base_classes from the config: the 5 other categories count in no mean."""
    gt = val_set["gt"]
    dets = random_detections(gt, seed=7)
    ref = reference_ap50(val_set["val_json"], dets)
    novel, base = ("star", "ring"), ("circle", "square", "triangle")
    metric = OVCocoMetric(ann_file=val_set["val_json"], novel_classes=novel, base_classes=base,
                          backend="pycocotools", classwise=False)
    metric.dataset_meta = {"classes": tuple(c["name"] for c in gt["categories"])}
    out = metric.compute_metrics(_results_from_dets(dets, gt))
    expect = _hand_means(ref, gt, novel, base)
    for k in expect:
        assert out[k] == pytest.approx(expect[k], abs=1e-12), k
    # the case discriminates: all 10, or every non-novel class as base, give other numbers
    assert abs(expect["base_ap50"] - _hand_means(ref, gt, novel, tuple(
        c["name"] for c in gt["categories"] if c["name"] not in novel))["base_ap50"]) > 1e-3
    assert abs(expect["all_ap50"] - sum(ref.values()) / len(ref)) > 1e-3


def test_untagged_categories_of_the_file_are_in_no_mean(val_set: dict, tmp_path: Path) -> None:
    """An annotation file whose split tags leave 3 categories out (as OV-COCO's 15 unevaluated ones)."""
    gt = copy.deepcopy(val_set["gt"])
    untagged = ("cross", "hexagon", "heart")
    for c in gt["categories"]:
        if c["name"] in untagged:
            del c["split"]
    ann = tmp_path / "partly_tagged.json"
    ann.write_text(json.dumps(gt))
    dets = random_detections(gt, seed=8)
    ref = reference_ap50(str(ann), dets)
    metric = OVCocoMetric(ann_file=str(ann), backend="pycocotools", classwise=False)
    metric.dataset_meta = {"classes": tuple(c["name"] for c in gt["categories"])}
    out = metric.compute_metrics(_results_from_dets(dets, gt))
    base = tuple(n for n in SHAPE_BASE_CLASSES if n not in untagged)
    expect = _hand_means(ref, gt, SHAPE_NOVEL_CLASSES, base)
    for k in expect:
        assert out[k] == pytest.approx(expect[k], abs=1e-12), k
    assert abs(expect["all_ap50"] - sum(ref.values()) / len(ref)) > 1e-3


def test_dataset_split_metainfo_excludes_untagged_categories(val_set: dict, tmp_path: Path) -> None:
    """OVCocoDataset reads the tags: untagged categories are classes but neither base nor novel."""
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    gt = copy.deepcopy(val_set["gt"])
    for c in gt["categories"]:
        if c["name"] in ("cross", "star"):
            del c["split"]
    ann = tmp_path / "partly_tagged.json"
    ann.write_text(json.dumps(gt))
    ds = DATASETS.build(dict(type="OVCocoDataset", data_root=val_set["root"], ann_file=str(ann),
                             data_prefix=dict(img="images/val/"), test_mode=True, pipeline=[]))
    assert len(ds.metainfo["classes"]) == 10
    assert ds.metainfo["novel_classes"] == ("ring", "arrow")
    assert "cross" not in ds.metainfo["base_classes"] and len(ds.metainfo["base_classes"]) == 6
    assert set(ds.metainfo["category_splits"]) == set(ds.metainfo["classes"]) - {"cross", "star"}


# -- the ovr protocol and the chance baseline through the metric ------------------------------------
def test_ovr_protocol_val_json_through_the_metric(val_set: dict, tmp_path: Path) -> None:
    """make_ov_coco_val(protocol='ovr') drops images without an evaluated object; the metric on that
    file equals pycocotools on it, and differs from 'all' when such images hold false positives."""
    from ovdet.datasets.ov_coco import COCO_CATEGORIES, make_ov_coco_val

    raw = copy.deepcopy(val_set["gt"])
    # The shapes under COCO names (novel: dog, cat, bus; base: person, car, boat, bench, kite;
    # unevaluated: traffic light, stop sign), so the OV-COCO split applies.
    rename = {"circle": "person", "square": "car", "triangle": "dog", "star": "cat", "cross": "bus",
              "ring": "traffic light", "hexagon": "boat", "crescent": "bench", "arrow": "stop sign",
              "heart": "kite"}
    coco_id = {n: i for i, n in COCO_CATEGORIES}
    old_to_new = {c["id"]: coco_id[rename[c["name"]]] for c in raw["categories"]}
    raw["categories"] = [{"id": i, "name": n} for i, n in COCO_CATEGORIES]
    first_six = {im["id"] for im in raw["images"][:6]}
    for a in raw["annotations"]:
        # the first 6 images hold only unevaluated objects
        a["category_id"] = coco_id["stop sign"] if a["image_id"] in first_six else old_to_new[a["category_id"]]
    unevaluated = {coco_id["stop sign"], coco_id["traffic light"]}
    dropped = {im["id"] for im in raw["images"]} - {a["image_id"] for a in raw["annotations"]
                                                      if a["category_id"] not in unevaluated}
    assert first_six <= dropped
    ovr, full = make_ov_coco_val(raw, protocol="ovr"), make_ov_coco_val(raw, protocol="all")
    assert {im["id"] for im in ovr["images"]} == {im["id"] for im in raw["images"]} - dropped
    assert len(full["images"]) == len(raw["images"])
    dets = random_detections(full, seed=9)
    # confident false positives of an evaluated class on the images 'ovr' drops
    dets = np.concatenate([dets, [[i, 2, 2, 20, 20, 0.99, coco_id["car"]] for i in sorted(first_six)]])
    out = {}
    for name, coco in (("ovr", ovr), ("all", full)):
        ann = tmp_path / f"val_{name}.json"
        ann.write_text(json.dumps(coco))
        mine = dets[np.isin(dets[:, 0], [im["id"] for im in coco["images"]])]
        metric = OVCocoMetric(ann_file=str(ann), backend="pycocotools", classwise=False)
        metric.dataset_meta = {"classes": tuple(c["name"] for c in coco["categories"])}
        out[name] = metric.compute_metrics(_results_from_dets(mine, coco))
        ref = reference_ap50(str(ann), mine)
        split = {c["id"]: c["split"] for c in coco["categories"]}
        for s in ("novel", "base"):
            vals = [v for i, v in ref.items() if split[i] == s and not math.isnan(v)]
            assert out[name][f"{s}_ap50"] == pytest.approx(sum(vals) / len(vals), abs=1e-12)
    assert out["ovr"]["base_ap50"] > out["all"]["base_ap50"]


def test_chance_metric_is_the_metric_on_relabelled_boxes(val_set: dict) -> None:
    """OVCocoChanceMetric = OVCocoMetric on the same boxes with seeded uniform labels and scores."""
    from ovdet.metrics import OVCocoChanceMetric

    gt = val_set["gt"]
    dets = random_detections(gt, seed=10)
    classes = tuple(c["name"] for c in gt["categories"])
    samples = [{"img_id": r["img_id"], "pred_instances": {"bboxes": r["bboxes"], "scores": r["scores"],
                                                          "labels": r["labels"]}}
               for r in _results_from_dets(dets, gt)]
    chance = OVCocoChanceMetric(ann_file=val_set["val_json"], seed=3, backend="pycocotools")
    chance.dataset_meta = {"classes": classes}
    chance.process({}, samples)
    got = chance.compute_metrics(chance.results)

    rng = np.random.default_rng(3)
    relabelled = []
    for r in _results_from_dets(dets, gt):
        n = len(r["labels"])
        relabelled.append(dict(r, labels=rng.integers(0, len(classes), size=n), scores=rng.random(n)))
    plain = OVCocoMetric(ann_file=val_set["val_json"], backend="pycocotools", classwise=False)
    plain.dataset_meta = {"classes": classes}
    assert got == plain.compute_metrics(relabelled)
    real = plain.compute_metrics(_results_from_dets(dets, gt))
    assert got["novel_ap50"] < real["novel_ap50"] and got["all_ap50"] < real["all_ap50"]
