"""OV-COCO box metric: novel / base / all AP50 from one COCOeval run.

Protocol (the OV-COCO evaluation of the references): per-category AP at IoU 0.5, 101-point interpolated
precision, maxDets 100, area "all", from a single COCOeval over the val set; a category with no
ground truth is left out of a mean. Base / novel membership comes from the annotation file's
category ``split`` tags (as ``tools/prepare_ov_coco.py`` writes them) or from
``novel_classes`` / ``base_classes`` in the config.
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
from mmengine.logging import MMLogger, print_log

import mmdet.evaluation  # noqa: F401  (registers mmdet's own OVCocoMetric first, see below)
from mmdet.registry import METRICS

from ..datasets.ov_coco import category_splits
from .ap50 import per_category_ap50, resolve_backend

__all__ = ["OVCocoMetric", "summarize_ov_ap50"]


def summarize_ov_ap50(ap50: dict[int, float], categories: Sequence[dict],
                      splits: dict[str, str]) -> dict[str, float]:
    """Means of per-category AP50 over novel, base and all (= novel + base) categories.

    ``ap50`` maps category id -> AP50 (NaN: no GT, left out); ``splits`` maps name -> base/novel. With
    no split information at all, ``all`` is the mean over every category that has ground truth.
    """
    def mean(ids: list[int]) -> float:
        vals = [ap50[i] for i in ids if i in ap50 and not math.isnan(ap50[i])]
        return float(np.mean(vals)) if vals else float("nan")

    by_split: dict[str, list[int]] = {"base": [], "novel": []}
    for c in categories:
        s = splits.get(c["name"])
        if s in by_split:
            by_split[s].append(int(c["id"]))
    all_ids = by_split["novel"] + by_split["base"] if splits else [int(c["id"]) for c in categories]
    return {"novel_ap50": mean(by_split["novel"]), "base_ap50": mean(by_split["base"]),
            "all_ap50": mean(all_ids)}


# mmdet 3.3 ships a metric of the same name (CocoMetric + base/novel mAP for its grounding models);
# ours replaces it in the registry (force=True), which is why mmdet.evaluation is imported first.
# 'OVCocoAP50Metric' is an unambiguous alias.
@METRICS.register_module(name=["OVCocoMetric", "OVCocoAP50Metric"], force=True)
class OVCocoMetric(BaseMetric):
    """Open-vocabulary COCO box metric reporting ``novel_ap50``, ``base_ap50`` and ``all_ap50``.

    Values are fractions in [0, 1] (papers print them x100). Keys are prefixed ``ov_coco/`` by
    MMEngine (e.g. ``ov_coco/novel_ap50`` for ``save_best``).

    Args:
        ann_file: COCO-format val json. Without it the ground truth is rebuilt from the data
            samples' ``instances`` (category ids = label + 1, splits from ``novel_classes`` or the
            dataset's ``novel_classes`` metainfo).
        novel_classes / base_classes: class names overriding the file's ``split`` tags. With only
            ``novel_classes``, every other category of the file counts as base.
        backend: ``'auto'`` (fastest installed backend that reproduces pycocotools exactly, see
            :data:`ovdet.metrics.ap50.PREFERRED_BACKENDS`), ``'pycocotools'``, ``'faster_coco_eval'``,
            ``'hotcoco'`` or ``'ultrafast_pycocotools'``.
        classwise: log a per-class AP50 table; ``classwise_results`` also returns one key per class
            (``AP50/<name>``).
        outfile_prefix: also write the detections as ``<prefix>.bbox.json`` (COCO results format,
            category ids of the file) for the official tools; ``format_only`` writes only that.
        collect_device / prefix: as in :class:`mmengine.evaluator.BaseMetric`.
    """

    default_prefix: str | None = "ov_coco"

    def __init__(self, ann_file: str | None = None, novel_classes: Sequence[str] | None = None,
                 base_classes: Sequence[str] | None = None, backend: str = "auto", classwise: bool = True,
                 classwise_results: bool = False, format_only: bool = False,
                 outfile_prefix: str | None = None, collect_device: str = "cpu", prefix: str | None = None,
                 backend_args: dict | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ann_file = ann_file
        self.novel_classes = tuple(novel_classes) if novel_classes is not None else None
        self.base_classes = tuple(base_classes) if base_classes is not None else None
        if self.novel_classes is None and self.base_classes is not None:
            raise ValueError("base_classes needs novel_classes as well")
        self.backend = resolve_backend(backend)
        self.classwise = classwise
        self.classwise_results = classwise_results
        if format_only and not outfile_prefix:
            raise ValueError("format_only=True needs outfile_prefix")
        self.format_only = format_only
        self.outfile_prefix = outfile_prefix
        self._gt: dict | None = None
        if ann_file is not None:
            with get_local_path(ann_file, backend_args=backend_args) as local_path:
                with open(local_path) as f:
                    self._gt = json.load(f)
            for key in ("images", "annotations", "categories"):
                if key not in self._gt:
                    raise ValueError(f"{ann_file}: not a COCO instances file (no '{key}')")

    # ------------------------------------------------------------------------------------------
    def process(self, data_batch: dict | None, data_samples: Sequence[dict]) -> None:
        """Keep each image's predictions (boxes xyxy in original-image pixels, scores, labels) and,
        without ``ann_file``, its ground truth."""
        for ds in data_samples:
            pred = ds["pred_instances"]
            res = {"img_id": int(ds["img_id"]),
                   "bboxes": _to_numpy(pred["bboxes"]).reshape(-1, 4).astype(np.float64),
                   "scores": _to_numpy(pred["scores"]).reshape(-1).astype(np.float64),
                   "labels": _to_numpy(pred["labels"]).reshape(-1).astype(np.int64)}
            if self._gt is None:
                if "instances" not in ds:
                    raise KeyError("OVCocoMetric without ann_file needs data samples with 'instances'")
                h, w = ds["ori_shape"][:2]
                res["gt"] = {"width": int(w), "height": int(h), "instances": list(ds["instances"])}
            self.results.append(res)

    # ------------------------------------------------------------------------------------------
    def _ground_truth(self, results: list[dict]) -> dict:
        if self._gt is not None:
            return self._gt
        classes = self._classes()
        if classes is None:
            raise ValueError("OVCocoMetric without ann_file needs dataset_meta['classes']")
        meta_splits = (self.dataset_meta or {}).get("category_splits", {})
        cats = [{"id": i + 1, "name": n, **({"split": meta_splits[n]} if n in meta_splits else {})}
                for i, n in enumerate(classes)]
        images, anns = [], []
        for r in results:
            g = r["gt"]
            images.append({"id": r["img_id"], "width": g["width"], "height": g["height"]})
            for inst in g["instances"]:
                x1, y1, x2, y2 = (float(v) for v in inst["bbox"])
                anns.append({"id": len(anns) + 1, "image_id": r["img_id"],
                             "category_id": int(inst["bbox_label"]) + 1,
                             "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                             "iscrowd": int(inst.get("ignore_flag", 0))})
        return {"images": images, "annotations": anns, "categories": cats}

    def _classes(self) -> tuple[str, ...] | None:
        meta = self.dataset_meta or {}
        return tuple(meta["classes"]) if meta.get("classes") else None

    def _label_to_cat_id(self, gt: dict) -> np.ndarray:
        """Category id per model label (-1: a class the annotation file does not hold)."""
        classes = self._classes()
        if classes is None:
            # Standalone use: labels index the file's categories in file order (as CocoDataset does).
            return np.array([int(c["id"]) for c in gt["categories"]], dtype=np.int64)
        name_to_id = {c["name"]: int(c["id"]) for c in gt["categories"]}
        missing = [n for n in classes if n not in name_to_id]
        if missing:
            print_log(f"OVCocoMetric: {len(missing)} predicted classes are not categories of the "
                      f"annotation file and are not evaluated: {missing[:10]}", logger="current")
        return np.array([name_to_id.get(n, -1) for n in classes], dtype=np.int64)

    def _splits(self, gt: dict) -> dict[str, str]:
        if self.novel_classes is not None:
            return category_splits(gt["categories"], self.novel_classes, self.base_classes)
        splits = category_splits(gt["categories"])
        if not splits:
            meta = self.dataset_meta or {}
            if meta.get("novel_classes"):
                return category_splits(gt["categories"], meta["novel_classes"], meta.get("base_classes"))
        return splits

    def protocol_summary(self, gt: dict, splits: dict[str, str]) -> str:
        """One line naming the test vocabulary (how many classes the detector scored, how many of them
        are evaluated) and the val protocol (every image, or only those holding an evaluated class)."""
        evaluated = {c["name"] for c in gt["categories"] if c["name"] in splits} if splits \
            else {c["name"] for c in gt["categories"]}
        classes = self._classes() or tuple(c["name"] for c in gt["categories"])
        live = len(classes)
        scored = sum(1 for n in classes if n in evaluated)
        n_base = sum(1 for n in classes if splits.get(n) == "base")
        n_novel = sum(1 for n in classes if splits.get(n) == "novel")
        vocab = (f"test vocabulary {live} classes ({scored} evaluated: {n_base} base + {n_novel} novel"
                 + (f"; {live - scored} predicted but not evaluated" if live > scored else "") + ")")
        eval_ids = {int(c["id"]) for c in gt["categories"] if c["name"] in evaluated}
        holding = {a["image_id"] for a in gt["annotations"] if a["category_id"] in eval_ids}
        declared = (gt.get("ov_coco") or {}).get("val_protocol")
        n_img = len(gt["images"])
        how = "as the annotation file records"
        if declared is None:  # files from before the tag, or not from tools/prepare_ov_coco.py
            declared = "ovr" if n_img and len(holding) == n_img else "all"
            how = "inferred from the file"
        proto = ("every val image" if declared == "all"
                 else "only images holding an evaluated class (OVR-CNN)")
        return (f"{vocab}; val protocol '{declared}' ({how}): {proto}, {n_img} images, "
                f"{len(holding)} with evaluated objects")

    def detections_array(self, results: list[dict], gt: dict) -> np.ndarray:
        """``(N, 7)`` ``[image_id, x, y, w, h, score, category_id]`` of all kept predictions."""
        lut = self._label_to_cat_id(gt)
        if not results:
            return np.zeros((0, 7), dtype=np.float64)
        counts = np.array([len(r["scores"]) for r in results])
        img = np.repeat(np.array([r["img_id"] for r in results], dtype=np.float64), counts)
        boxes = np.concatenate([r["bboxes"].reshape(-1, 4) for r in results]).astype(np.float64)
        scores = np.concatenate([r["scores"] for r in results]).astype(np.float64)
        labels = np.concatenate([r["labels"] for r in results]).astype(np.int64)
        bad = (labels < 0) | (labels >= len(lut))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"image {int(img[i])}: predicted label {int(labels[i])} outside the "
                             f"{len(lut)} classes")
        cat = lut[labels]
        keep = cat >= 0
        out = np.empty((int(keep.sum()), 7), dtype=np.float64)
        out[:, 0] = img[keep]
        out[:, 1:3] = boxes[keep, :2]
        out[:, 3:5] = boxes[keep, 2:] - boxes[keep, :2]
        out[:, 5] = scores[keep]
        out[:, 6] = cat[keep]
        return out

    def _dump(self, dets: np.ndarray) -> str:
        path = f"{self.outfile_prefix}.bbox.json"
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        out = [{"image_id": int(d[0]), "bbox": [float(v) for v in d[1:5]], "score": float(d[5]),
                "category_id": int(d[6])} for d in dets]
        with open(path, "w") as f:
            json.dump(out, f)
        return path

    def compute_metrics(self, results: list) -> dict[str, float]:
        """Run COCOeval once over the processed images; return the three means (and per-class AP50
        with ``classwise_results``)."""
        logger = MMLogger.get_current_instance()
        gt = self._ground_truth(results)
        dets = self.detections_array(results, gt)
        if self.outfile_prefix:
            path = self._dump(dets)
            logger.info(f"OVCocoMetric: detections written to {path}")
            if self.format_only:
                return {}
        img_ids = sorted({r["img_id"] for r in results})
        known = {im["id"] for im in gt["images"]}
        unknown = [i for i in img_ids if i not in known]
        if unknown:
            raise ValueError(f"{len(unknown)} evaluated images are not in the annotation file, "
                             f"e.g. {unknown[:5]}")
        ap50 = per_category_ap50(gt, dets, backend=self.backend, protocol="ap50", img_ids=img_ids)
        splits = self._splits(gt)
        if not splits:
            logger.warning("OVCocoMetric: no base/novel split known (no 'split' tags in the annotation "
                           "file, no novel_classes): only all_ap50 is meaningful")
        metrics = summarize_ov_ap50(ap50, gt["categories"], splits)
        if self.classwise:
            logger.info("\n" + _table(ap50, gt["categories"], splits, metrics))
        if self.classwise_results:
            for c in gt["categories"]:
                metrics[f"AP50/{c['name']}"] = ap50.get(int(c["id"]), float("nan"))
        logger.info(f"OVCocoMetric protocol: {self.protocol_summary(gt, splits)}")
        logger.info(f"OV-COCO AP50 ({len(img_ids)} images, backend {self.backend}): "
                    f"novel {100 * metrics['novel_ap50']:.2f}  base {100 * metrics['base_ap50']:.2f}  "
                    f"all {100 * metrics['all_ap50']:.2f}")
        return metrics


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _table(ap50: dict[int, float], categories: Sequence[dict], splits: dict[str, str],
           means: dict[str, float]) -> str:
    rows = [("category", "split", "AP50")]
    for c in categories:
        v = ap50.get(int(c["id"]), float("nan"))
        rows.append((c["name"], splits.get(c["name"], "-"), "n/a" if math.isnan(v) else f"{100 * v:.2f}"))
    for k in ("novel_ap50", "base_ap50", "all_ap50"):
        v = means[k]
        rows.append((f"[mean {k.split('_')[0]}]", "", "n/a" if math.isnan(v) else f"{100 * v:.2f}"))
    w0 = max(len(r[0]) for r in rows)
    return "\n".join(f"{r[0]:<{w0}}  {r[1]:<5}  {r[2]:>6}" for r in rows)
