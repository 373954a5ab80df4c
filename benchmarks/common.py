"""Helpers shared by the benchmark scripts: machine info, median timing with warm-up, peak memory,
and JSON + table output.

Usage::

    from benchmarks.common import machine_info, time_it, PeakMemory, write_results, format_table

(benchmarks run as modules from the repository root: ``python -m benchmarks.<name>``.)
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

RESULTS_DIR = Path(__file__).resolve().parent / 'results'

__all__ = ['RESULTS_DIR', 'machine_info', 'time_it', 'time_interleaved', 'PeakMemory', 'StageTimer',
           'format_table', 'write_results', 'sync']


def _cpu_model() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str | torch.device = 'cpu') -> dict[str, Any]:
    """CPU model, core / thread counts, torch + python versions, total RAM and the GPU when used.

    Returns:
        a flat JSON-serializable dict.
    """
    info: dict[str, Any] = dict(
        cpu=_cpu_model(), cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
        torch=torch.__version__, python=platform.python_version(), platform=platform.platform(),
    )
    try:
        pages, page_size = os.sysconf('SC_PHYS_PAGES'), os.sysconf('SC_PAGE_SIZE')
        info['ram_gib'] = round(pages * page_size / 2 ** 30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        info['load_avg_1m'] = round(os.getloadavg()[0], 2)  # other jobs on a shared machine skew timings
    except OSError:
        pass
    device = torch.device(device)
    if device.type == 'cuda' and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_mem_gib=round(props.total_memory / 2 ** 30, 1),
                    cuda=torch.version.cuda)
    return info


def sync(device: str | torch.device = 'cpu') -> None:
    """Wait for queued GPU work (no-op on CPU) so timings measure the work itself."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def time_it(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1,
            device: str | torch.device = 'cpu') -> dict[str, Any]:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed ones.

    Returns:
        ``{'median_s', 'min_s', 'max_s', 'times_s': [...], 'repeats', 'warmup'}``.
    """
    if repeats < 1:
        raise ValueError('repeats must be >= 1')
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return _summary(times, repeats, warmup)


def _summary(times: list[float], repeats: int, warmup: int) -> dict[str, Any]:
    return dict(median_s=statistics.median(times), min_s=min(times), max_s=max(times),
                times_s=[round(t, 6) for t in times], repeats=repeats, warmup=warmup)


def time_interleaved(fns: dict[str, Callable[[], Any]], repeats: int = 3, warmup: int = 1,
                     device: str | torch.device = 'cpu') -> dict[str, dict[str, Any]]:
    """Time several functions round-robin (A, B, A, B, ...) so drifting load on a shared machine
    hits the thing and its baseline alike.

    Returns:
        ``{name: time_it-style summary}``.
    """
    if repeats < 1:
        raise ValueError('repeats must be >= 1')
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return {k: _summary(v, repeats, warmup) for k, v in times.items()}


def _rss_bytes() -> int:
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        # No /proc: fall back to the process-lifetime peak (ru_maxrss is KiB on Linux, bytes on macOS).
        scale = 1 if sys.platform == 'darwin' else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


class PeakMemory:
    """Peak memory while the ``with`` block runs.

    CPU: resident set size sampled every ``interval`` seconds by a background thread (peak RSS of
    the process during the block, and its increase over the RSS at entry). CUDA: additionally
    ``torch.cuda.max_memory_allocated`` over the block.

    After the block, ``.result`` is ``{'peak_rss_mib', 'delta_rss_mib'[, 'cuda_peak_alloc_mib']}``.
    """

    def __init__(self, device: str | torch.device = 'cpu', interval: float = 0.005) -> None:
        self.device = torch.device(device)
        self.interval = interval
        self.result: dict[str, float] = {}
        self._stop = threading.Event()
        self._peak = 0
        self._start = 0
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, _rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._start = self._peak = _rss_bytes()
        if self.device.type == 'cuda':
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        sync(self.device)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._peak = max(self._peak, _rss_bytes())
        mib = 2 ** 20
        self.result = dict(peak_rss_mib=round(self._peak / mib, 1),
                           delta_rss_mib=round((self._peak - self._start) / mib, 1))
        if self.device.type == 'cuda':
            self.result['cuda_peak_alloc_mib'] = round(torch.cuda.max_memory_allocated(self.device) / mib, 1)


class StageTimer:
    """Wall time per named stage of a pipeline, by wrapping methods of its objects (benchmarks only).

    ``timer.wrap('rpn', model.rpn_head, 'predict')`` replaces that bound method on the instance with one
    that adds its duration (device-synchronized) to stage ``'rpn'``; :meth:`restore` undoes every wrap.
    Per call of the whole pipeline: ``timer.reset()``, run it, read ``timer.seconds`` (``{stage: s}``).
    Wrapped calls must not nest inside each other (their times would count twice).
    """

    def __init__(self, device: str | torch.device = 'cpu') -> None:
        self.device = torch.device(device)
        self.seconds: dict[str, float] = {}
        self._wrapped: list[tuple[Any, str]] = []

    def wrap(self, stage: str, obj: Any, name: str) -> None:
        inner = getattr(obj, name)
        self.seconds.setdefault(stage, 0.0)

        def timed(*args: Any, **kwargs: Any) -> Any:
            sync(self.device)
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                sync(self.device)
                self.seconds[stage] += time.perf_counter() - t0

        setattr(obj, name, timed)
        self._wrapped.append((obj, name))

    def reset(self) -> None:
        self.seconds = dict.fromkeys(self.seconds, 0.0)

    def restore(self) -> None:
        for obj, name in reversed(self._wrapped):
            delattr(obj, name)  # the instance attribute; the class's method shows through again
        self._wrapped.clear()


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A plain-text (Markdown-compatible) table of ``rows``; floats get 4 significant digits."""
    if not rows:
        return '(no rows)'
    columns = list(columns or rows[0].keys())

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f'{v:.4g}'
        return str(v)

    body = [[cell(r.get(c, '')) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(columns)]
    lines = ['| ' + ' | '.join(c.ljust(w) for c, w in zip(columns, widths)) + ' |',
             '|' + '|'.join('-' * (w + 2) for w in widths) + '|']
    lines += ['| ' + ' | '.join(v.ljust(w) for v, w in zip(b, widths)) + ' |' for b in body]
    return '\n'.join(lines)


def write_results(name: str, payload: dict[str, Any], table: str | None = None,
                  out_dir: str | Path | None = None, argv: Sequence[str] | None = None) -> Path:
    """Write ``<out_dir>/<name>-<UTC timestamp>.json`` (plus a ``.md`` copy of ``table``) and print
    the table and the path.

    Args:
        name: benchmark id (the spec's row id, e.g. ``'dense'``).
        payload: JSON-serializable results; ``benchmark``, ``timestamp`` and ``command`` are added.
        table: human-readable table to print and store next to the JSON.
        out_dir: defaults to ``benchmarks/results``.
        argv: the command line (defaults to ``sys.argv``) recorded for reproduction.

    Returns:
        the JSON path.
    """
    out = Path(out_dir) if out_dir else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    doc = dict(benchmark=name, timestamp=stamp, command=' '.join(['python', *(argv or sys.argv)]), **payload)
    path = out / f'{name}-{stamp}.json'
    path.write_text(json.dumps(doc, indent=2, default=str) + '\n')
    if table is not None:
        path.with_suffix('.md').write_text(table + '\n')
        print(table)
    print(f'results written to {path}')
    return path
