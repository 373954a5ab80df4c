"""Per-category box AP50 through interchangeable COCOeval implementations.

pycocotools is the reference. The other backends (faster-coco-eval, hotcoco,
ultrafast-pycocotools) expose pycocotools-style ``COCO`` / ``COCOeval`` classes; each adapter below
feeds them the same ground-truth dict and the same ``(N, 7)`` detection array
``[image_id, x, y, w, h, score, category_id]`` and reads back ``eval['precision']``.

``protocol='ap50'`` restricts COCOeval to what AP50 needs (IoU 0.5, area "all", maxDets 100). This
is the same number as the standard run's AP50 (``precision[0, :, k, 0, -1]``): for one category,
IoU threshold 0.5, area "all" and the top-100 detections per image, matching and accumulation do not
depend on the other thresholds, ranges or caps. ``protocol='full'`` runs the stock parameters.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import math
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "BACKENDS",
    "PREFERRED_BACKENDS",
    "available_backends",
    "resolve_backend",
    "per_category_ap50",
    "ap_from_precision",
]

BACKENDS: tuple[str, ...] = ("pycocotools", "faster_coco_eval", "hotcoco", "ultrafast_pycocotools")
_MODULES = {"pycocotools": "pycocotools", "faster_coco_eval": "faster_coco_eval", "hotcoco": "hotcoco",
            "ultrafast_pycocotools": "ultrafast_pycocotools"}
# Order used by backend='auto': fastest first among those matching pycocotools (why: see
# docs/performance.md#coco-evaluation-backends).
PREFERRED_BACKENDS: tuple[str, ...] = ("ultrafast_pycocotools", "hotcoco", "faster_coco_eval", "pycocotools")

AREA_ALL = [0.0, 1e5**2]


def available_backends() -> list[str]:
    """The backends importable in this environment (pycocotools first)."""
    return [b for b in BACKENDS if importlib.util.find_spec(_MODULES[b]) is not None]


def resolve_backend(backend: str | None = "auto") -> str:
    """Turn ``'auto'`` / ``None`` into the first installed backend of :data:`PREFERRED_BACKENDS`;
    check that an explicit one is known and installed."""
    if backend in (None, "auto"):
        avail = set(available_backends())
        for b in PREFERRED_BACKENDS:
            if b in avail:
                return b
        raise ImportError("no COCO evaluation backend is installed (pip install pycocotools)")
    name = backend.replace("-", "_")
    if name == "ultrafast":
        name = "ultrafast_pycocotools"
    if name not in BACKENDS:
        raise ValueError(f"unknown COCO eval backend {backend!r}; choose one of {BACKENDS} or 'auto'")
    if importlib.util.find_spec(_MODULES[name]) is None:
        raise ImportError(f"COCO eval backend {name!r} is not installed")
    return name


def ap_from_precision(precision: np.ndarray) -> float:
    """AP of one category from its precision row over recall thresholds (COCO: -1 = no GT -> NaN)."""
    valid = precision[precision > -1]
    return float(np.mean(valid)) if valid.size else float("nan")


def _gt_copy(gt: dict, img_ids: Iterable[int] | None) -> dict:
    # COCOeval writes 'ignore' flags into the GT annotation dicts: hand it copies, never the caller's.
    if img_ids is None:
        images = list(gt["images"])
        anns = [dict(a) for a in gt["annotations"]]
    else:
        keep = set(int(i) for i in img_ids)
        images = [im for im in gt["images"] if im["id"] in keep]
        anns = [dict(a) for a in gt["annotations"] if a["image_id"] in keep]
    return {"images": images, "annotations": anns, "categories": list(gt["categories"])}


def _set_params(params, protocol: str, img_ids: Sequence[int] | None, snake: bool = False) -> None:
    if img_ids is not None:
        setattr(params, "img_ids" if snake else "imgIds", sorted(int(i) for i in img_ids))
    if protocol == "ap50":
        if snake:
            params.iou_thrs = [0.5]
            params.area_rng = [AREA_ALL]
            params.area_rng_lbl = ["all"]
            params.max_dets = [100]
        else:
            params.iouThrs = np.array([0.5])
            params.areaRng = [AREA_ALL]
            params.areaRngLbl = ["all"]
            params.maxDets = [100]
    elif protocol != "full":
        raise ValueError(f"protocol must be 'ap50' or 'full', got {protocol!r}")


def _read_ap50(precision: np.ndarray, iou_thrs: Sequence[float], max_dets: Sequence[int],
               cat_ids: Sequence[int]) -> dict[int, float]:
    t = [i for i, v in enumerate(iou_thrs) if abs(float(v) - 0.5) < 1e-12]
    m = [i for i, v in enumerate(max_dets) if int(v) == 100]
    if not t or not m:
        raise ValueError("COCOeval was run without IoU 0.5 or maxDets 100")
    prec = np.asarray(precision)
    # Area range 0 is "all" in both the stock and the restricted parameters.
    return {int(c): ap_from_precision(prec[t[0], :, k, 0, m[0]]) for k, c in enumerate(cat_ids)}


def _run_pycocotools_like(coco_mod, eval_cls, gt: dict, dets: np.ndarray, protocol: str,
                          img_ids: Sequence[int] | None, **eval_kwargs) -> dict[int, float]:
    coco_gt = coco_mod()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    coco_dt = coco_gt.loadRes(dets)
    ev = eval_cls(coco_gt, coco_dt, "bbox", **eval_kwargs)
    _set_params(ev.params, protocol, img_ids)
    ev.evaluate()
    ev.accumulate()
    p = ev.params
    return _read_ap50(ev.eval["precision"], list(p.iouThrs), list(p.maxDets), list(p.catIds))


def _pycocotools(gt: dict, dets: np.ndarray, protocol: str,
                 img_ids: Sequence[int] | None) -> dict[int, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    return _run_pycocotools_like(COCO, COCOeval, gt, dets, protocol, img_ids)


def _faster_coco_eval(gt: dict, dets: np.ndarray, protocol: str,
                      img_ids: Sequence[int] | None) -> dict[int, float]:
    from faster_coco_eval import COCO, COCOeval_faster

    coco_gt = COCO(gt, print_function=lambda *a, **k: None)
    coco_dt = coco_gt.loadRes(dets)
    ev = COCOeval_faster(coco_gt, coco_dt, "bbox", print_function=lambda *a, **k: None)
    _set_params(ev.params, protocol, img_ids)
    ev.evaluate()
    ev.accumulate()
    p = ev.params
    return _read_ap50(ev.eval["precision"], list(p.iouThrs), list(p.maxDets), list(p.catIds))


def _hotcoco(gt: dict, dets: np.ndarray, protocol: str, img_ids: Sequence[int] | None) -> dict[int, float]:
    import hotcoco

    coco_gt = hotcoco.COCO(gt)
    coco_dt = coco_gt.load_res(dets)
    ev = hotcoco.COCOeval(coco_gt, coco_dt, "bbox")
    # hotcoco's Params hands out copies on attribute reads: assign whole values.
    _set_params(ev.params, protocol, img_ids, snake=True)
    ev.evaluate()
    ev.accumulate()
    p = ev.params
    return _read_ap50(ev.eval["precision"], list(p.iou_thrs), list(p.max_dets), list(p.cat_ids))


def _ultrafast(gt: dict, dets: np.ndarray, protocol: str, img_ids: Sequence[int] | None) -> dict[int, float]:
    from ultrafast_pycocotools import COCO, COCOeval

    coco_gt = COCO(gt, verbose=False)
    coco_dt = coco_gt.loadRes(dets)
    ev = COCOeval(coco_gt, coco_dt, "bbox", print_function=lambda *a, **k: None)
    _set_params(ev.params, protocol, img_ids)
    ev.evaluate()
    ev.accumulate()
    p = ev.params
    return _read_ap50(ev.eval["precision"], list(p.iouThrs), list(p.maxDets), list(p.catIds))


_RUNNERS = {"pycocotools": _pycocotools, "faster_coco_eval": _faster_coco_eval, "hotcoco": _hotcoco,
            "ultrafast_pycocotools": _ultrafast}


def _no_detections(gt: dict, img_ids: Iterable[int] | None) -> dict[int, float]:
    # COCO: a category with a non-crowd GT and no detection scores 0; one without scores NaN.
    keep = None if img_ids is None else set(int(i) for i in img_ids)
    has_gt = {a["category_id"] for a in gt["annotations"]
              if not a.get("iscrowd", 0) and (keep is None or a["image_id"] in keep)}
    return {int(c["id"]): (0.0 if c["id"] in has_gt else math.nan) for c in gt["categories"]}


def per_category_ap50(gt: dict, dets: np.ndarray, backend: str = "pycocotools", protocol: str = "ap50",
                      img_ids: Sequence[int] | None = None, quiet: bool = True) -> dict[int, float]:
    """Box AP50 per category id (NaN for a category without ground truth) from one COCOeval run.

    Args:
        gt: COCO-format ground truth (``images``, ``annotations``, ``categories``); not modified.
        dets: ``(N, 7)`` array ``[image_id, x, y, w, h, score, category_id]`` (boxes xywh, pixels).
        backend: one of :data:`BACKENDS` or ``'auto'``.
        protocol: ``'ap50'`` (IoU 0.5 / area all / maxDets 100 only; same AP50, less work) or
            ``'full'`` (stock COCOeval parameters).
        img_ids: evaluate only these images (default: every image of ``gt``).
        quiet: swallow the backends' progress prints.
    """
    backend = resolve_backend(backend)
    dets = np.asarray(dets, dtype=np.float64).reshape(-1, 7)
    if len(dets) == 0:
        return _no_detections(gt, img_ids)
    if img_ids is not None:
        dets = dets[np.isin(dets[:, 0], np.asarray(list(img_ids), dtype=np.float64))]
        if len(dets) == 0:
            return _no_detections(gt, img_ids)
    gt_c = _gt_copy(gt, img_ids)
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        return _RUNNERS[backend](gt_c, dets, protocol, img_ids)
