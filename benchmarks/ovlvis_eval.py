"""Benchmark "ovlvis-eval": OVLVISMetric against the ``lvis`` package's own LVISEval, masks and boxes.

A seeded synthetic LVIS v1 val set (default 5000 images of 640x480 / 480x640, 1203 categories tagged
r / c / f in LVIS v1's proportions 337 / 461 / 405 and drawn with frequent >> common >> rare,
~12 ground-truth objects per image as polygon masks (rectangles and ellipses), per-image
``neg_category_ids`` and ``not_exhaustive_category_ids``) and 300 detections per image: jittered
copies of the ground truth (some with a wrong class) plus background detections of present, negative
and unverified classes, each with an RLE mask; scores rounded to 3 decimals so that ties occur.

Timed, per IoU type, interleaved (lvis, ours, lvis, ours, ...; ``benchmarks.common.time_interleaved``),
one warm-up then ``--repeats`` runs, median reported:

* ``lvis``: the package as its README drives it -- ``LVIS(gt json)``, ``LVISResults(gt, results list,
  max_dets=300)``, ``LVISEval(gt, dt, iou_type).run()``, from a ready LVIS-format result list: the
  baseline;
* ``OVLVISMetric``: the registered metric -- constructed on the gt json, then ``compute_metrics`` over
  the per-image predictions as its ``process`` stores them (masks already RLE: the encoding of dense
  masks in ``process`` is not timed, the baseline's list has RLEs too).

Both load the gt json from disk in every run. Both run lvis' LVISEval (through
:mod:`ovdet.metrics.lvis_api`, which restores numpy's removed ``np.float`` for ``lvis.eval``), so the
ratio is the metric's overhead (result conversion, checks); the numbers must be equal: the nine
summary APs and the per-category AP (to 1e-12; "bit-exact" says whether every one is equal as floats).
Peak memory: RSS growth during a run (one process, so a rough figure). LVIS evaluation is CPU-only.

    python -m benchmarks.ovlvis_eval                                   # full size (minutes)
    python -m benchmarks.ovlvis_eval --num-images 100 --repeats 1 --warmup 0   # quick look
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import PeakMemory, machine_info, time_interleaved, write_results

# LVIS v1's frequency groups: (tag, categories of 1203), and how often a group's categories occur.
LVIS_V1_GROUPS: tuple[tuple[str, int], ...] = (('r', 337), ('c', 461), ('f', 405))
_GROUP_WEIGHT = {'r': 0.03, 'c': 0.15, 'f': 1.0}
IOU_TYPES = ('segm', 'bbox')


# ---------------------------------------------------------------------------------------------
# synthetic data
# ---------------------------------------------------------------------------------------------


def _categories(num_categories: int, rng: np.random.Generator) -> tuple[list[dict], np.ndarray]:
    """LVIS-style categories (ids 1..N, groups shuffled over ids as LVIS' alphabetical ids are) and the
    probability of each being drawn."""
    total = sum(n for _, n in LVIS_V1_GROUPS)
    sizes = [max(1, round(num_categories * n / total)) for _, n in LVIS_V1_GROUPS[:2]]
    sizes.append(num_categories - sum(sizes))
    if sizes[-1] < 1:
        raise ValueError(f'--num-categories {num_categories}: need at least 3 (one per frequency group)')
    tags = np.array([t for (t, _), n in zip(LVIS_V1_GROUPS, sizes) for _ in range(n)])
    rng.shuffle(tags)
    weight = np.array([_GROUP_WEIGHT[t] for t in tags]) * rng.lognormal(0.0, 0.5, num_categories)
    cats = [{'id': i + 1, 'name': f'category_{i + 1:04d}', 'synonyms': [f'category_{i + 1:04d}'], 'def': '',
             'synset': f'category_{i + 1:04d}.n.01', 'frequency': str(t), 'image_count': 0, 'instance_count': 0}
            for i, t in enumerate(tags)]
    return cats, weight / weight.sum()


def _boxes(rng: np.random.Generator, n: int, h: int, w: int, min_side: float, max_frac: float) -> np.ndarray:
    """(n, 4) xyxy boxes, sides log-uniform in [min_side, max_frac * image side]."""
    side = np.exp(rng.uniform(np.log(min_side), np.log(min(h, w) * max_frac), size=(n, 2)))
    x0 = rng.uniform(0, w - side[:, 0])
    y0 = rng.uniform(0, h - side[:, 1])
    return np.stack([x0, y0, x0 + side[:, 0], y0 + side[:, 1]], 1)


_ANGLES = np.linspace(0, 2 * np.pi, 12, endpoint=False)


def _polygon(box: np.ndarray, ellipse: bool) -> list[float]:
    """A rectangle or 12-point ellipse filling ``box`` (xyxy), as a flat COCO polygon."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not ellipse:
        return [x1, y1, x2, y1, x2, y2, x1, y2]
    cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    return np.stack([cx + rx * np.cos(_ANGLES), cy + ry * np.sin(_ANGLES)], 1).ravel().tolist()


def make_eval_data(num_images: int = 5000, dets_per_image: int = 300, seed: int = 0, num_categories: int = 1203,
                   gt_per_image: float = 12.3, neg_per_image: float = 8.0) -> tuple[dict, list[dict]]:
    """A synthetic LVIS v1 val json (dict) and per-image predictions for it, as ``OVLVISMetric.process``
    stores them: ``{img_id, bboxes (k, 4) xyxy float64, scores (k,), labels (k,) indexing the
    categories in file order, masks: k RLEs (counts as str)}``. Seeded: equal arguments give equal data."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    cats, p = _categories(num_categories, rng)
    all_ids = np.arange(1, num_categories + 1)
    images, anns, preds = [], [], []
    for k in range(num_images):
        img_id = 3 * k + 1  # non-contiguous ids
        h, w = (480, 640) if rng.random() < 0.7 else (640, 480)
        n_present = 0 if rng.random() < 0.02 else min(num_categories, 1 + int(rng.poisson(gt_per_image / 3.5 - 1)))
        present = rng.choice(all_ids, size=n_present, replace=False, p=p) if n_present else np.zeros(0, int)
        gt_cats = np.repeat(present, 1 + rng.poisson(2.5, size=n_present)) if n_present else np.zeros(0, int)
        gt_boxes = _boxes(rng, len(gt_cats), h, w, 4.0, 0.9)
        gt_ellipse = rng.random(len(gt_cats)) < 0.5
        for box, c, ell in zip(gt_boxes, gt_cats, gt_ellipse):
            bw, bh = box[2] - box[0], box[3] - box[1]
            anns.append({'id': len(anns) + 1, 'image_id': img_id, 'category_id': int(c),
                         'segmentation': [_polygon(box, ell)], 'bbox': [float(box[0]), float(box[1]), bw, bh],
                         'area': float(bw * bh * (np.pi / 4 if ell else 1.0))})
        absent_p = p.copy()
        absent_p[present - 1] = 0
        n_neg = min(int(rng.poisson(neg_per_image)), int((absent_p > 0).sum()))
        neg = rng.choice(all_ids, size=n_neg, replace=False, p=absent_p / absent_p.sum()) if n_neg else []
        images.append({'id': img_id, 'height': h, 'width': w, 'coco_url': f'http://images.cocodataset.org/'
                       f'val2017/{img_id:012d}.jpg', 'neg_category_ids': sorted(int(c) for c in neg),
                       'not_exhaustive_category_ids': sorted(int(c) for c in present if rng.random() < 0.15)})
        # detections: 0-3 jittered copies per object (70% with its class), then background boxes
        n_copies = rng.integers(0, 4, size=len(gt_cats))
        src = np.repeat(np.arange(len(gt_cats)), n_copies)[:dets_per_image]
        size = np.tile(gt_boxes[src, 2:] - gt_boxes[src, :2], 2)
        boxes = gt_boxes[src] + rng.normal(0, 0.1, size=(len(src), 4)) * size
        labels = np.where(rng.random(len(src)) < 0.7, gt_cats[src], rng.choice(all_ids, size=len(src), p=p))
        ellipse = gt_ellipse[src]
        scores = rng.beta(4, 2, size=len(src))
        n_bg = dets_per_image - len(src)
        pool = [present, np.asarray(neg, int), all_ids]
        which = rng.choice(3, size=n_bg, p=[0.3, 0.3, 0.4])
        bg_labels = np.array([rng.choice(pool[j]) if len(pool[j]) else rng.choice(all_ids) for j in which], int)
        boxes = np.concatenate([boxes, _boxes(rng, n_bg, h, w, 4.0, 0.8)])
        boxes = np.clip(boxes, 0, [w, h, w, h])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        labels = np.concatenate([labels, bg_labels]).astype(np.int64)
        ellipse = np.concatenate([ellipse, rng.random(n_bg) < 0.5])
        scores = np.round(np.concatenate([scores, rng.beta(1.2, 5, size=n_bg)]), 3)
        polys = [_polygon(b, e) for b, e in zip(boxes, ellipse)]
        rles = mask_utils.frPyObjects(polys, h, w) if polys else []
        for r in rles:
            r['counts'] = r['counts'].decode('ascii')
        preds.append({'img_id': img_id, 'bboxes': boxes.astype(np.float64), 'scores': scores.astype(np.float64),
                      'labels': labels - 1, 'masks': rles})
    # counts as an LVIS json carries them (not used by the evaluation)
    inst = np.bincount([a['category_id'] for a in anns], minlength=num_categories + 1)
    imgs = np.bincount([c for _, c in {(a['image_id'], a['category_id']) for a in anns}],
                       minlength=num_categories + 1)
    for c in cats:
        c['image_count'], c['instance_count'] = int(imgs[c['id']]), int(inst[c['id']])
    gt = {'info': {'description': f'synthetic LVIS v1 val, seed {seed}'}, 'licenses': [], 'images': images,
          'annotations': anns, 'categories': cats}
    return gt, preds


def to_lvis_results(gt: dict, preds: list[dict], iou_type: str) -> list[dict]:
    """The LVIS results-format list (what ``lvis``' README evaluates): ``image_id, category_id, bbox (xywh),
    score`` (+ ``segmentation`` RLE for segm; the box is kept, as MMDetection's LVISMetric writes it)."""
    cat_ids = [c['id'] for c in gt['categories']]
    out = []
    for pr in preds:
        for i, label in enumerate(pr['labels']):
            x1, y1, x2, y2 = (float(v) for v in pr['bboxes'][i])
            det = {'image_id': pr['img_id'], 'category_id': cat_ids[label], 'bbox': [x1, y1, x2 - x1, y2 - y1],
                   'score': float(pr['scores'][i])}
            if iou_type == 'segm':
                det['segmentation'] = pr['masks'][i]
            out.append(det)
    return out


# ---------------------------------------------------------------------------------------------
# the two evaluations
# ---------------------------------------------------------------------------------------------


def _per_category(ev) -> dict[int, float]:
    """AP per category id from LVISEval's precision array (iou, recall, category, area): the mean of its
    valid entries over IoUs and recall points at area 'all'; NaN for a category without ground truth."""
    prec = ev.eval['precision']
    out = {}
    for k, cat_id in enumerate(ev.params.cat_ids):
        v = prec[:, :, k, 0]
        v = v[v > -1]
        out[int(cat_id)] = float(v.mean()) if v.size else float('nan')
    return out


def run_lvis(gt_path: str, results: list[dict], iou_type: str, max_dets: int = 300) -> dict[str, Any]:
    """The baseline: lvis' LVIS / LVISResults / LVISEval on the result list. Returns the summary (NaN for
    lvis' -1) and ``per_category`` {category id: AP}."""
    from ovdet.metrics.lvis_api import import_lvis, quiet_lvis_loggers

    LVIS, LVISResults, LVISEval = import_lvis()
    with quiet_lvis_loggers():
        lvis_gt = LVIS(gt_path)
        ev = LVISEval(lvis_gt, LVISResults(lvis_gt, results, max_dets=max_dets), iou_type)
        ev.params.max_dets = max_dets
        ev.run()
    out = {k: (float('nan') if float(v) == -1 else float(v)) for k, v in ev.results.items()}  # AP and AR keys
    return {'summary': out, 'per_category': _per_category(ev)}


def run_metric(gt_path: str, gt: dict, preds: list[dict], iou_type: str, max_dets: int = 300) -> dict[str, Any]:
    """OVLVISMetric built on the json, then ``compute_metrics`` over the stored predictions. Returns the
    summary and ``per_category`` {category id: AP} (from its classwise keys)."""
    from ovdet.metrics import OVLVISMetric
    from ovdet.metrics.ov_lvis_metric import LVIS_SUMMARY_KEYS

    metric = OVLVISMetric(ann_file=gt_path, metric=iou_type, max_dets=max_dets, classwise=True)
    metric.dataset_meta = {'classes': tuple(c['name'] for c in gt['categories'])}
    out = metric.compute_metrics(preds)
    id_of = {c['name']: c['id'] for c in gt['categories']}
    per_cat = {id_of[k.split('/', 1)[1]]: v for k, v in out.items() if k.startswith(f'{iou_type}_AP/')}
    return {'summary': {k: out[f'{iou_type}_{k}'] for k in LVIS_SUMMARY_KEYS}, 'per_category': per_cat}


def compare(ref: dict[str, Any], other: dict[str, Any]) -> tuple[float, bool, int]:
    """(max |difference| over the summary keys and the categories with ground truth, all bit-identical
    (NaN placement included), number of values compared)."""
    from ovdet.metrics.ov_lvis_metric import LVIS_SUMMARY_KEYS

    pairs = [(ref['summary'][k], other['summary'].get(k, float('nan'))) for k in LVIS_SUMMARY_KEYS]
    exact = True
    cats = {k: v for k, v in ref['per_category'].items() if not math.isnan(v)}
    exact &= set(cats) == {k for k, v in other['per_category'].items() if not math.isnan(v)}
    pairs += [(v, other['per_category'].get(k, float('nan'))) for k, v in cats.items()]
    diff = 0.0
    for a, b in pairs:
        if math.isnan(a) or math.isnan(b):
            if math.isnan(a) != math.isnan(b):
                diff, exact = float('inf'), False
            continue
        diff = max(diff, abs(a - b))
        exact &= a == b
    return diff, exact, len(pairs)


def _measured(name: str, fn: Callable[[], dict], outs: dict[str, dict], mem: dict[str, float],
              cpu: dict[str, list[float]]) -> None:
    """Run ``fn``; keep its output in ``outs[name]``, the largest RSS growth seen in ``mem[name]`` and its
    CPU seconds in ``cpu[name]`` (on a loaded machine the wall time overstates the work; the CPU time
    does not)."""
    c0 = time.process_time()
    with PeakMemory() as pm:
        outs[name] = fn()
    cpu.setdefault(name, []).append(time.process_time() - c0)
    mem[name] = max(mem.get(name, 0.0), pm.result['delta_rss_mib'])


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ('lvis', 'pycocotools', 'numpy'):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print and write the table and JSON. Exit 1 if any number differs (> 1e-12)."""
    ap = argparse.ArgumentParser(description='OVLVISMetric vs lvis LVISEval (benchmark ovlvis-eval)',
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument('--num-images', type=int, default=5000)
    ap.add_argument('--dets-per-image', type=int, default=300)
    ap.add_argument('--num-categories', type=int, default=1203)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--iou-types', nargs='+', choices=IOU_TYPES, default=list(IOU_TYPES))
    ap.add_argument('--repeats', type=int, default=3, help='timed runs of each (median reported)')
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--out-dir', default=None, help='where the JSON and table go (default benchmarks/results)')
    args = ap.parse_args(argv)

    from mmengine.logging import MMLogger

    import ovdet.metrics  # noqa: F401  (imported before timing: the first import of the stack takes seconds)

    if not MMLogger.check_instance_created('ovlvis_bench'):
        MMLogger.get_instance('ovlvis_bench', log_level='WARNING')  # the metric's summary lines stay quiet

    t0 = time.perf_counter()
    gt, preds = make_eval_data(args.num_images, args.dets_per_image, args.seed, args.num_categories)
    n_dets = sum(len(p['scores']) for p in preds)
    made_s = time.perf_counter() - t0
    print(f"data: {len(gt['images'])} images, {len(gt['annotations'])} GT objects, {n_dets} detections with "
          f"masks, {len(gt['categories'])} categories (made in {made_s:.1f} s)", flush=True)

    rows, runs_out = [], {}
    with tempfile.TemporaryDirectory(prefix='ovlvis_eval_') as tmp:
        gt_path = str(Path(tmp) / 'lvis_val_synthetic.json')
        Path(gt_path).write_text(json.dumps(gt))
        for iou_type in args.iou_types:
            results = to_lvis_results(gt, preds, iou_type)
            outs: dict[str, dict] = {}
            mem: dict[str, float] = {}
            cpu: dict[str, list[float]] = {}
            runs = {'lvis': partial(run_lvis, gt_path, results, iou_type),
                    'OVLVISMetric': partial(run_metric, gt_path, gt, preds, iou_type)}
            print(f'{iou_type}: lvis and OVLVISMetric interleaved (warm-up {args.warmup}, {args.repeats} timed) ...',
                  flush=True)
            times = time_interleaved({name: partial(_measured, name, fn, outs, mem, cpu) for name, fn in runs.items()},
                                     repeats=args.repeats, warmup=args.warmup)
            base = times['lvis']['median_s']
            for name in ('lvis', 'OVLVISMetric'):
                diff, exact, n = compare(outs['lvis'], outs[name])
                s = outs[name]['summary']
                rows.append({'iou_type': iou_type, 'run': name, 'median_s': times[name]['median_s'],
                             'times_s': times[name]['times_s'],
                             'cpu_median_s': statistics.median(cpu[name][args.warmup:]),
                             'ratio_vs_lvis': times[name]['median_s'] / base,
                             'AP': s['AP'], 'APr': s['APr'], 'APc': s['APc'], 'APf': s['APf'],
                             'values_compared': n, 'max_abs_diff': diff, 'match_1e-12': diff <= 1e-12,
                             'bit_exact': exact, 'peak_extra_rss_mib': mem[name]})
                print(f"  {name}: median {times[name]['median_s']:.3f} s, x{times[name]['median_s'] / base:.3f} "
                      f"of lvis, max diff {diff:.1e}", flush=True)
            runs_out[iou_type] = {k: v['summary'] for k, v in outs.items()}

    info = machine_info('cpu')
    vers = _versions()

    def pct(v: float) -> str:
        return 'n/a' if math.isnan(v) else f'{100 * v:.3f}'

    lines = [f"# ovlvis-eval: {len(gt['images'])} images x {args.dets_per_image} detections ({n_dets} total, "
             f"with masks), {len(gt['annotations'])} GT, {len(gt['categories'])} categories, seed {args.seed}",
             f"machine: {info['cpu']} | cores {info['cpu_count']} | python {info['python']} | "
             f"load avg 1m {info.get('load_avg_1m', '?')} | lvis {vers['lvis']} | pycocotools {vers['pycocotools']}"
             f" | numpy {vers['numpy']} (LVIS evaluation is CPU-only)",
             f"median of {args.repeats} after {args.warmup} warm-up, interleaved; baseline: lvis LVISEval", '',
             '| IoU | run | median s | CPU s | x lvis | AP | APr | APc | APf | values compared | max abs diff '
             '| <=1e-12 | bit-exact | peak +RSS MiB |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['iou_type']} | {r['run']} | {r['median_s']:.3f} | {r['cpu_median_s']:.3f} | "
                     f"{r['ratio_vs_lvis']:.3f} | "
                     f"{pct(r['AP'])} | {pct(r['APr'])} | {pct(r['APc'])} | {pct(r['APf'])} | "
                     f"{r['values_compared']} | {r['max_abs_diff']:.1e} | {'yes' if r['match_1e-12'] else 'NO'} | "
                     f"{'yes' if r['bit_exact'] else 'no'} | {r['peak_extra_rss_mib']:.0f} |")
    table = '\n'.join(lines)
    payload = {'args': vars(args), 'machine': info, 'versions': vers, 'data_seconds': made_s,
               'num_detections': n_dets, 'num_gt': len(gt['annotations']), 'rows': rows, 'summaries': runs_out}
    write_results('ovlvis_eval', payload, table, out_dir=args.out_dir,
                  argv=['-m', 'benchmarks.ovlvis_eval', *(argv if argv is not None else sys.argv[1:])])
    return 0 if all(r['match_1e-12'] for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
