"""benchmarks/ovcoco_eval.py still runs end to end (one tiny iteration; no timing asserted)."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ovcoco_eval_benchmark_smoke(tmp_path: Path, capsys) -> None:
    bench = importlib.import_module("benchmarks.ovcoco_eval")
    assert bench.main(["--num-images", "12", "--dets-per-image", "20", "--repeats", "1", "--warmup", "0",
                       "--isolation", "none", "--out-dir", str(tmp_path)]) == 0
    (out,) = tmp_path.glob("ovcoco-eval-*.json")  # benchmarks.common.write_results names it
    res = json.loads(out.read_text())
    runs = {r["run"]: r for r in res["rows"]}
    assert {"pycocotools/full", "pycocotools/ap50", "OVCocoMetric"} <= set(runs)
    assert all(r.get("match_1e-9") for r in runs.values()), runs
    assert out.with_suffix(".md").read_text().startswith("# ovcoco-eval")
