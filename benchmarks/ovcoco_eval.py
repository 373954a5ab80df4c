"""Benchmark row "ovcoco-eval": the OV-COCO AP50 metric against pycocotools' COCOeval.

A seeded synthetic OV-COCO val set (default 5000 images, the 65 OV-COCO categories with COCO ids and
base/novel tags, ~7 ground-truth boxes per image, a few crowd boxes) and 100 detections per image
(jittered copies of ground truth, some with a wrong class, plus background boxes; scores rounded to
3 decimals so that ties occur, as they do with float32 detector scores).

Measured, each backend in its own fresh Python process (so peak memory is its own), one warm-up then
``--repeats`` timed runs, median reported:
* ``pycocotools/full``: stock COCOeval parameters (10 IoUs, 4 areas, 3 maxDets), what MMDetection's
  CocoMetric runs: the baseline;
* ``<backend>/ap50``: every installed backend with only IoU 0.5 / area all / maxDets 100;
* ``OVCocoMetric``: the registered metric end to end (per-image predictions -> novel/base/all) with
  the backend it picks by default.
Each time covers building the COCO index from the in-memory ground truth, loading the detection
array, evaluate and accumulate. Per-category AP50 of every run is compared with pycocotools/full
(must agree to 1e-9; "bit-exact" says whether all are equal as floats).

COCO evaluation runs on the CPU only: with CUDA present the numbers are the same kind (noted).

    python -m benchmarks.ovcoco_eval                       # full size
    python -m benchmarks.ovcoco_eval --num-images 200 --repeats 1   # smoke
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine_info as common_machine_info
from benchmarks.common import write_results

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# machine / memory helpers (memory is per child process: VmHWM after a reset, not a sampler)
# ---------------------------------------------------------------------------------------------


def machine_info() -> dict:
    """``benchmarks.common.machine_info`` plus usable cores, the CUDA device and the COCO libraries' versions."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    info = common_machine_info("cpu")
    info.update(numpy=np.__version__, RAYON_NUM_THREADS=os.environ.get("RAYON_NUM_THREADS", "(unset)"),
                usable_cores=(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                              else os.cpu_count()),
                cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    for dist in ("pycocotools", "faster-coco-eval", "hotcoco", "ultrafast-pycocotools"):
        try:
            info[dist] = version(dist)
        except PackageNotFoundError:
            info[dist] = None
    return info


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    # Linux: writing 5 to clear_refs resets VmHWM, so the peak is this run's own.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# synthetic data
# ---------------------------------------------------------------------------------------------


def make_eval_data(num_images: int = 5000, dets_per_image: int = 100, seed: int = 0,
                   gt_per_image: float = 7.3, crowd_frac: float = 0.01) -> tuple[dict, np.ndarray]:
    """A COCO-format OV-COCO-like val set and an ``(N, 7)`` detection array for it (seeded)."""
    from ovdet.datasets.ov_coco import COCO_CATEGORIES, OV_COCO_CLASSES, OV_COCO_NOVEL_CLASSES

    rng = np.random.default_rng(seed)
    cats = [{"id": i, "name": n, "supercategory": "thing",
             "split": "novel" if n in OV_COCO_NOVEL_CLASSES else "base"}
            for i, n in COCO_CATEGORIES if n in OV_COCO_CLASSES]
    cat_ids = np.array([c["id"] for c in cats])
    # Long-tailed class frequencies, as in COCO (person dominates).
    freq = rng.pareto(1.2, len(cats)) + 0.05
    freq /= freq.sum()
    images, anns, rows = [], [], []
    for i in range(num_images):
        img_id = 100000 + 7 * i  # non-contiguous ids, as COCO's
        h, w = (480, 640) if rng.random() < 0.7 else (640, 480)
        images.append({"id": img_id, "file_name": f"{img_id:012d}.jpg", "height": h, "width": w})
        n_gt = int(rng.poisson(gt_per_image)) if rng.random() > 0.02 else 0
        side = np.exp(rng.uniform(np.log(6), np.log(min(h, w) * 0.9), size=(n_gt, 2)))
        x0 = rng.uniform(0, w - side[:, 0])
        y0 = rng.uniform(0, h - side[:, 1])
        gcat = rng.choice(cat_ids, size=n_gt, p=freq)
        crowd = rng.random(n_gt) < crowd_frac
        boxes = np.stack([x0, y0, side[:, 0], side[:, 1]], 1) if n_gt else np.zeros((0, 4))
        for b, c, cr in zip(boxes, gcat, crowd):
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": int(c),
                         "bbox": [round(float(v), 2) for v in b], "area": float(b[2] * b[3]) * 0.8,
                         "iscrowd": int(cr)})
        # detections: 0-3 noisy copies per GT, the rest background boxes
        dets = []
        for b, c in zip(boxes, gcat):
            for _ in range(int(rng.integers(0, 4))):
                j = rng.normal(0, 0.12, 4) * np.array([b[2], b[3], b[2], b[3]])
                dc = c if rng.random() < 0.75 else rng.choice(cat_ids)
                dets.append([b[0] + j[0], b[1] + j[1], max(1.0, b[2] + j[2]), max(1.0, b[3] + j[3]),
                             min(1.0, rng.beta(4, 2)), dc])
        dets = dets[:dets_per_image]
        n_bg = dets_per_image - len(dets)
        if n_bg:
            bw = np.exp(rng.uniform(np.log(4), np.log(min(h, w) * 0.8), size=(n_bg, 2)))
            bx = rng.uniform(0, w - bw[:, 0])
            by = rng.uniform(0, h - bw[:, 1])
            for k in range(n_bg):
                dets.append([bx[k], by[k], bw[k, 0], bw[k, 1], rng.beta(1.2, 5), rng.choice(cat_ids, p=freq)])
        d = np.asarray(dets, dtype=np.float64)
        d[:, 4] = np.round(d[:, 4], 3)  # score ties, as float32 detector scores produce
        rows.append(np.concatenate([np.full((len(d), 1), img_id, dtype=np.float64), d], 1))
    gt = {"info": {"description": f"synthetic OV-COCO val, seed {seed}"}, "images": images,
          "annotations": anns, "categories": cats}
    return gt, np.concatenate(rows)


def to_metric_results(gt: dict, dets: np.ndarray) -> tuple[list[dict], tuple[str, ...]]:
    """Per-image prediction dicts as OVCocoMetric.process stores them (labels index the classes)."""
    classes = tuple(c["name"] for c in gt["categories"])
    label_of = {c["id"]: i for i, c in enumerate(gt["categories"])}
    order = np.argsort(dets[:, 0], kind="stable")
    d = dets[order]
    ids, starts = np.unique(d[:, 0], return_index=True)
    bounds = list(starts[1:]) + [len(d)]
    by_img = {int(i): d[s:e] for i, s, e in zip(ids, starts, bounds)}
    results = []
    for im in gt["images"]:
        x = by_img.get(im["id"], np.zeros((0, 7)))
        results.append({"img_id": im["id"],
                        "bboxes": np.concatenate([x[:, 1:3], x[:, 1:3] + x[:, 3:5]], 1),
                        "scores": x[:, 5].copy(),
                        "labels": np.array([label_of[int(c)] for c in x[:, 6]], dtype=np.int64)})
    return results, classes


# ---------------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------------
_DATA: dict = {}


def _one_run(kind: str) -> tuple[dict[int, float] | dict[str, float], float]:
    from ovdet.metrics.ap50 import per_category_ap50

    gt, dets = _DATA["gt"], _DATA["dets"]
    t0 = time.perf_counter()
    if kind == "OVCocoMetric":
        from mmengine.logging import MMLogger

        from ovdet.metrics import OVCocoMetric

        if not MMLogger.check_instance_created("ovcoco_bench"):
            MMLogger.get_instance("ovcoco_bench", log_level="WARNING")  # keep the timed loop quiet
        metric = OVCocoMetric(classwise=False)
        metric._gt = gt  # the json load is I/O, the same for every backend: not timed
        metric.dataset_meta = {"classes": _DATA["classes"]}
        out = metric.compute_metrics(_DATA["results"])
        return out, time.perf_counter() - t0
    backend, protocol = kind.split("/")
    out = per_category_ap50(gt, dets, backend=backend, protocol=protocol)
    return out, time.perf_counter() - t0


def _worker(kind: str, warmup: int, repeats: int) -> dict:
    try:
        for _ in range(warmup):
            _one_run(kind)
        reset = _reset_peak_rss()
        rss0 = _status_kb("VmRSS")
        times, out = [], None
        for _ in range(repeats):
            out, dt = _one_run(kind)
            times.append(dt)
        peak = _status_kb("VmHWM") if reset else None
        return {"kind": kind, "times": times, "median_s": statistics.median(times), "result": out,
                "rss_before_mb": rss0 / 1024 if rss0 else None,
                "peak_rss_mb": peak / 1024 if peak else None,
                "peak_extra_mb": (peak - rss0) / 1024 if peak and rss0 else None}
    except Exception as e:  # a backend that fails is reported, not fatal
        return {"kind": kind, "error": f"{type(e).__name__}: {e}"}


def run_isolated(kind: str, warmup: int, repeats: int, data_dir: Path) -> dict:
    """Run ``kind`` in a fresh interpreter reading the data from ``data_dir``: its peak memory is its
    own, and no thread pool of an earlier backend is inherited (forking after a Rust/Rayon pool has
    started can deadlock the child)."""
    res_file = data_dir / f"result_{kind.replace('/', '_')}.pkl"
    cmd = [sys.executable, "-m", "benchmarks.ovcoco_eval", "--_worker", kind, "--_data", str(data_dir),
           "--warmup", str(warmup), "--repeats", str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0 or not res_file.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"kind": kind, "error": f"worker exited {proc.returncode}: {' | '.join(tail)}"}
    with open(res_file, "rb") as f:
        return pickle.load(f)


def _worker_main(kind: str, data_dir: Path, warmup: int, repeats: int) -> int:
    """Child side of :func:`run_isolated`: load the data, run, pickle the result next to the data."""
    with open(data_dir / "gt.json") as f:
        gt = json.load(f)
    dets = np.load(data_dir / "dets.npy")
    results, classes = to_metric_results(gt, dets)
    _DATA.update(gt=gt, dets=dets, results=results, classes=classes)
    out = _worker(kind, warmup, repeats)
    with open(data_dir / f"result_{kind.replace('/', '_')}.pkl", "wb") as f:
        pickle.dump(out, f)
    return 0


def compare(ref: dict[int, float], other: dict[int, float]) -> tuple[float, bool]:
    """(max |difference| over categories, all bit-identical incl. NaN placement)."""
    diff, exact = 0.0, set(ref) == set(other)
    for k, v in ref.items():
        o = other.get(k, float("nan"))
        if math.isnan(v) or math.isnan(o):
            exact &= math.isnan(v) and math.isnan(o)
            if math.isnan(v) != math.isnan(o):
                diff = float("inf")
            continue
        diff = max(diff, abs(v - o))
        exact &= v == o
    return diff, exact


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write JSON + markdown next to each other."""
    ap = argparse.ArgumentParser(
        description="OV-COCO AP50 metric vs pycocotools COCOeval (benchmark ovcoco-eval)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--num-images", type=int, default=5000)
    ap.add_argument("--dets-per-image", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per backend (median reported)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--backends", nargs="*", default=None,
                    help="subset of pycocotools faster_coco_eval hotcoco ultrafast_pycocotools")
    ap.add_argument("--skip-full-baseline", action="store_true",
                    help="use pycocotools/ap50 as the reference instead of the stock-parameter run (faster)")
    ap.add_argument("--isolation", choices=("process", "none"), default="process",
                    help="process: each run in a fresh interpreter (own peak memory); none: all in this "
                         "process (quick smoke runs; memory figures then mean little)")
    ap.add_argument("--out-dir", help="results directory (default benchmarks/results)")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument("--_data", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        return _worker_main(args._worker, Path(args._data), args.warmup, args.repeats)

    from ovdet.metrics.ap50 import available_backends, resolve_backend

    avail = available_backends()
    backends = [b for b in (args.backends or avail) if b in avail]
    missing = sorted(set(args.backends or []) - set(avail))
    t0 = time.perf_counter()
    gt, dets = make_eval_data(args.num_images, args.dets_per_image, args.seed)
    results, classes = to_metric_results(gt, dets)
    _DATA.update(gt=gt, dets=dets, results=results, classes=classes)
    print(f"data: {len(gt['images'])} images, {len(gt['annotations'])} GT boxes, {len(dets)} detections, "
          f"{len(gt['categories'])} categories (made in {time.perf_counter() - t0:.1f} s)", flush=True)

    kinds = [] if args.skip_full_baseline else ["pycocotools/full"]
    kinds += [f"{b}/ap50" for b in (["pycocotools"] + [b for b in backends if b != "pycocotools"])]
    kinds.append("OVCocoMetric")
    runs = {}
    tmp = tempfile.TemporaryDirectory(prefix="ovcoco_eval_")
    data_dir = Path(tmp.name)
    if args.isolation == "process":
        with open(data_dir / "gt.json", "w") as f:
            json.dump(gt, f)
        np.save(data_dir / "dets.npy", dets)
    for kind in kinds:
        print(f"running {kind} (warm-up {args.warmup}, {args.repeats} timed) ...", flush=True)
        if args.isolation == "process":
            runs[kind] = run_isolated(kind, args.warmup, args.repeats, data_dir)
        else:
            runs[kind] = _worker(kind, args.warmup, args.repeats)
        if "error" in runs[kind]:
            print(f"  failed: {runs[kind]['error']}")
        else:
            times = ", ".join(f"{t:.3f}" for t in runs[kind]["times"])
            print(f"  median {runs[kind]['median_s']:.3f} s  runs [{times}]",
                  flush=True)
    tmp.cleanup()

    ref_kind = "pycocotools/ap50" if args.skip_full_baseline else "pycocotools/full"
    if "error" in runs[ref_kind]:
        print(f"reference run {ref_kind} failed: {runs[ref_kind]['error']}", file=sys.stderr)
        return 1
    ref = runs[ref_kind]["result"]
    t_full = runs.get("pycocotools/full", {}).get("median_s")
    t_ap50 = runs["pycocotools/ap50"].get("median_s")
    from ovdet.metrics.ov_coco_metric import summarize_ov_ap50

    ref_means = summarize_ov_ap50(ref, gt["categories"], {c["name"]: c["split"] for c in gt["categories"]})
    rows = []
    for kind, r in runs.items():
        if "error" in r:
            rows.append({"run": kind, "error": r["error"]})
            continue
        if kind == "OVCocoMetric":
            diff = max(abs(r["result"][k] - ref_means[k]) for k in ref_means)
            exact = all(r["result"][k] == ref_means[k] for k in ref_means)
        else:
            diff, exact = compare(ref, r["result"])
        rows.append({"run": kind, "median_s": r["median_s"], "times_s": r["times"],
                     "ratio_vs_pycocotools_full": r["median_s"] / t_full if t_full else None,
                     "ratio_vs_pycocotools_ap50": r["median_s"] / t_ap50 if t_ap50 else None,
                     "max_abs_diff": diff, "match_1e-9": diff <= 1e-9, "bit_exact": exact,
                     "peak_rss_mb": r["peak_rss_mb"], "peak_extra_mb": r["peak_extra_mb"]})

    info = machine_info()
    chosen = resolve_backend("auto")
    lines = [f"# ovcoco-eval: {len(gt['images'])} images x {args.dets_per_image} detections "
             f"({len(dets)} total), {len(gt['annotations'])} GT, 65 categories, seed {args.seed}",
             f"machine: {info['cpu']} | usable cores {info['usable_cores']} | python {info['python']} | "
             f"torch {info.get('torch')} | load avg 1m {info.get('load_avg_1m', '?')} | "
             f"CUDA: {info.get('cuda') or 'none'} (COCO eval is CPU-only)",
             f"versions: pycocotools {info['pycocotools']}, faster-coco-eval {info['faster-coco-eval']}, "
             f"hotcoco {info['hotcoco']}, ultrafast-pycocotools {info['ultrafast-pycocotools']}",
             f"reference: {ref_kind}; median of {args.repeats} after {args.warmup} warm-up; "
             f"isolation: {args.isolation}; "
             f"OVCocoMetric default backend: {chosen}", "",
             "| run | median s | x pycocotools full | x pycocotools ap50 | max abs diff AP50 | <=1e-9 "
             "| bit-exact "
             "| peak RSS MB (+during) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['run']} | failed: {r['error']} | | | | | | |")
            continue
        rf = f"{r['ratio_vs_pycocotools_full']:.3f}" if r["ratio_vs_pycocotools_full"] else "-"
        ra = f"{r['ratio_vs_pycocotools_ap50']:.3f}" if r["ratio_vs_pycocotools_ap50"] else "-"
        mem = f"{r['peak_rss_mb']:.0f} (+{r['peak_extra_mb']:.0f})" if r["peak_rss_mb"] else "-"
        lines.append(f"| {r['run']} | {r['median_s']:.3f} | {rf} | {ra} | {r['max_abs_diff']:.1e} | "
                     f"{'yes' if r['match_1e-9'] else 'NO'} | {'yes' if r['bit_exact'] else 'no'} | {mem} |")
    lines.append("")
    lines.append(f"pycocotools reference means: novel {100 * ref_means['novel_ap50']:.3f}, "
                 f"base {100 * ref_means['base_ap50']:.3f}, all {100 * ref_means['all_ap50']:.3f}")
    if missing:
        lines.append(f"not installed: {', '.join(missing)}")
    table = "\n".join(lines)
    payload = {"args": vars(args), "machine": info, "reference": ref_kind, "default_backend": chosen,
               "rows": rows, "reference_means": ref_means}
    write_results("ovcoco-eval", payload, table, out_dir=args.out_dir,
                  argv=["-m", "benchmarks.ovcoco_eval", *(argv if argv is not None else sys.argv[1:])])
    bad = [r["run"] for r in rows if "error" not in r and not r["match_1e-9"]]
    return 1 if bad and any(r.startswith(chosen) or r == "OVCocoMetric" for r in bad) else 0


if __name__ == "__main__":
    sys.exit(main())
