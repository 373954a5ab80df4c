"""The summary table ``make demo`` ends with (from :meth:`ovd_demo.pipeline.DemoPipeline.run`'s summary)."""
from __future__ import annotations

from pathlib import Path


def format_summary(summary: dict) -> str:
    """The summary as one table: region mAcc per dense mode, the share of regions given the one most
    predicted class, AP50s, stage times, where the pictures are, and the inference detections."""
    rows: list[tuple[str, str]] = []
    region = summary['region']
    for key in ('box_top1_all', 'mask_top1_all', 'crop_top1_all'):
        before = _find(region.get('before_clim', {}), key)
        after = _find(region.get('after_clim', {}), key)
        if before is not None and after is not None:
            rows.append((f'region mAcc {key.replace("_all", "")} (before -> after CLIM)',
                         f'{before:6.2f} -> {after:6.2f}'))
    modes = summary.get('region_modes') or {}
    for mode, result in modes.items():
        if mode == 'v2':
            continue  # the rows above
        for key in ('box_top1_all', 'mask_top1_all'):
            before, after = _find(result.get('before_clim', {}), key), _find(result.get('after_clim', {}), key)
            if before is not None and after is not None:
                rows.append((f'region mAcc {key.replace("_all", "")}, dense mode {mode} (before -> after CLIM)',
                             f'{before:6.2f} -> {after:6.2f}'))
    classes = summary.get('classes') or []
    for mode, result in modes.items():
        before = _top_class(result.get('before_clim', {}), classes)
        after = _top_class(result.get('after_clim', {}), classes)
        if before is not None and after is not None:
            rows.append((f'boxes given the most predicted class, {mode} (before -> after CLIM)',
                         f'{before} -> {after}'))
    ov = summary['ov']
    for split in ('novel', 'base', 'all'):
        det = _find(ov, f'ov_coco/{split}_ap50')
        chance = _find(ov, f'chance/{split}_ap50')
        if det is not None:
            rows.append((f'{split} AP50 (F-ViT | chance baseline)', f'{100 * det:6.2f} | {100 * (chance or 0):6.2f}'))
    for split in ('novel', 'base', 'all'):
        det = _find(summary.get('ov_without_clim') or {}, f'ov_coco/{split}_ap50')
        if det is not None:
            rows.append((f'{split} AP50 without CLIM (F-ViT on the pre-trained CLIP)', f'{100 * det:6.2f}'))
    for stage, secs in summary['seconds'].items():
        note = ' (reused)' if summary['reused'].get(stage) else ''
        rows.append((f'time: {stage}', f'{secs:6.1f} s{note}'))
    total = sum(summary['seconds'].values())
    rows.append(('time: total', f'{total:6.1f} s'))
    inference = summary['inference']
    rows.append(('detections drawn to', inference['png']))
    if summary.get('picture'):
        rows.append((f'{summary["picture"]["panels"]} val images (truth, detections) drawn to',
                     summary['picture']['png']))
    width = max(len(r[0]) for r in rows)
    lines = ['=' * (width + 24), 'clim-ovd embedded benchmark: summary', '-' * (width + 24)]
    lines += [f'{name:<{width}}  {value}' for name, value in rows]
    lines.append('=' * (width + 24))
    found = ', '.join(f"{d['label']} {d['score']:.2f}" for d in inference['detections'][:6])
    lines.append(f'vocabulary "{", ".join(inference["vocabulary"])}" on {Path(inference["image"]).name}: {found}')
    return '\n'.join(lines)


def _top_class(metrics: dict, classes: list[str]) -> str | None:
    """``'83% circle'``: the share of boxes whose top-1 is the most predicted class, and that class."""
    share = _find(metrics, 'box_top_class_share')
    index = _find(metrics, 'box_top_class')
    if share is None or index is None:
        return None
    name = classes[int(index)] if 0 <= int(index) < len(classes) else str(int(index))
    return f'{share:3.0f}% {name}'


def _find(metrics: dict, suffix: str) -> float | None:
    for key, value in metrics.items():
        if key == suffix or key.endswith('/' + suffix) or key.endswith(suffix):
            return float(value)
    return None
