"""Check the weights in ckpt/: one row per zoo model (clim/models/zoo.py) with its expected path,
present / MISSING / BAD, size and format checks and the configs that use it.

    python tools/check_ckpt.py                       # the whole table (exit 0)
    python tools/check_ckpt.py --config configs/fvit/fvit_metaclip_vitb16_ovcoco.py
                                                     # exit 1 if a model that config needs is missing / bad

Nothing is downloaded; missing rows print their download hint (see ckpt/README.md).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', help='only fail (exit 1) on what this config needs; its rows are marked *')
    p.add_argument('--ckpt-dir', default=os.environ.get('CLIM_CKPT_DIR') or osp.join(REPO_ROOT, 'ckpt'),
                   help='weights folder (default: $CLIM_CKPT_DIR or <repo>/ckpt); config paths "ckpt/..." '
                        'are read relative to it')
    p.add_argument('--configs-dir', default=osp.join(REPO_ROOT, 'configs'),
                   help='where to look for the configs using each model')
    p.add_argument('--quick', action='store_true', help='skip reading the files (presence and size only)')
    p.add_argument('--json', action='store_true', help='print the rows as JSON instead of a table')
    return p.parse_args(argv)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: '  '.join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return '\n'.join([line(header), line(['-' * w for w in widths]), *(line(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ['CLIM_CKPT_DIR'] = args.ckpt_dir
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    from clim.models import hub, zoo, zoo_report

    root = args.ckpt_dir
    needed: list[str] = []
    other_paths: list[str] = []
    if args.config:
        if not osp.isfile(args.config):
            print(f'config {args.config} not found', file=sys.stderr)
            return 2
        entries, other_paths = zoo_report.config_references(args.config)
        needed = [e.name for e in entries]
    usage = zoo_report.configs_using(args.configs_dir)

    results = []
    for entry in zoo.list_entries():
        res = zoo_report.check_entry(entry, root, deep=not args.quick)
        res['used_by'] = usage.get(entry.name, [])
        res['needed'] = entry.name in needed
        res['download'] = entry.download
        # e.g. 'open_clip+transformers': the library that builds it and what else it needs
        res['loader'] = '+'.join(dict.fromkeys([entry.library, *entry.requires])) if entry.build is not None \
            else f'not yet ({", ".join(entry.requires)})'
        results.append(res)
    extra = []
    for value in other_paths:  # ckpt/... paths of the config that no zoo entry describes
        rel = hub.norm_ckpt_path(value)
        path = osp.join(root, rel) if rel is not None else value
        extra.append(dict(name='(unlisted)', path=path, status='present' if osp.exists(path) else 'missing',
                          needed=True))

    if args.json:
        print(json.dumps(dict(ckpt_dir=root, config=args.config, models=results, other=extra), indent=1))
    else:
        rows = []
        for r in results:
            status = r['status'].upper() if r['status'] != 'present' else 'present'
            size = '' if r['size_mb'] is None else f"{r['size_mb']} MB" + ('' if r['size_ok'] in (None, True)
                                                                            else ' (small!)')
            used = [u.removeprefix('configs/') for u in r['used_by']]
            used = ', '.join(used[:4]) + (f' (+{len(used) - 4} more, --json lists all)' if len(used) > 4 else '') \
                if used else '-'
            rows.append([('* ' if r['needed'] else '  ') + r['name'], osp.relpath(r['path']), status, size,
                         r['format'], r['loader'], used])
        for r in extra:
            rows.append(['* ' + r['name'], osp.relpath(r['path']), r['status'].upper()
                         if r['status'] != 'present' else 'present', '', '', '', args.config])
        print(f'weights folder: {root}' + (f'   (* = needed by {args.config})' if args.config else ''))
        print(_table(rows, ['model', 'expected path', 'status', 'size', 'format', 'loader', 'used by']))
        problems = [r for r in results if r['status'] != 'present' and (r['needed'] or not args.config)]
        for r in problems:
            print(f"\n{r['name']}: {r['status'].upper()}: {r['detail']}")
        for r in results:
            if r['status'] == 'present' and r['size_ok'] is False:
                print(f"\n{r['name']}: {r['size_mb']} MB is much smaller than the real file: a partial copy?")

    failed = [r['name'] for r in results if r['needed'] and r['status'] != 'present']
    failed += [r['path'] for r in extra if r['status'] != 'present']
    if failed:
        print(f'\n{args.config} needs missing or unreadable weights: {", ".join(failed)}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
