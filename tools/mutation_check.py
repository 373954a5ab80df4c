"""Plant each known bug in a temporary copy of the tree and check that its tests catch it.

    .venv/bin/python tools/mutation_check.py                 # every planted bug
    .venv/bin/python tools/mutation_check.py webdataset/     # those whose name starts with a prefix
    .venv/bin/python tools/mutation_check.py --list
    .venv/bin/python tools/mutation_check.py --baseline fvit/ # also run the tests on the unplanted copy
    .venv/bin/python tools/mutation_check.py fvit/ --tests tests/fvit/test_fvit_head.py  # other tests

The bugs and the tests that guard them are listed in tests/mutations/planted_bugs.py. The working
tree is never modified: every bug gets its own copy under a temporary folder (the virtual
environment and git metadata stay out), and its tests run there with one thread. Prints a table:
caught (a test failed), survived (all passed: a test is missing) or error (the tests could not
run, e.g. the snippet no longer exists). Exit status 1 if anything survived or errored.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PLANTED_BUGS_FILE = REPO_ROOT / 'tests' / 'mutations' / 'planted_bugs.py'


def load_planted_bugs() -> list[dict]:
    """The table of ``tests/mutations/planted_bugs.py`` (data in a test folder, read by path)."""
    spec = importlib.util.spec_from_file_location('planted_bugs', PLANTED_BUGS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PLANTED_BUGS

IGNORE = shutil.ignore_patterns('.git', '.venv', 'work_dirs', '__pycache__', '*.pyc', '.pytest_cache',
                                '.ruff_cache')


def plant(tree: Path, bug: dict) -> None:
    """Apply ``bug`` to the copy at ``tree``; raises ValueError when its snippet is not there once."""
    path = tree / bug['file']
    text = path.read_text()
    count = text.count(bug['original'])
    if count != 1:
        raise ValueError(f"{bug['file']}: the original snippet occurs {count} times (expected once); "
                         f"update tests/mutations/planted_bugs.py")
    path.write_text(text.replace(bug['original'], bug['mutated']))


def run_tests(tree: Path, tests: list[str], timeout: int) -> tuple[int, str]:
    """(exit status, output) of pytest on ``tests`` in ``tree``, stopping at the first failure."""
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHONDONTWRITEBYTECODE='1')
    cmd = [sys.executable, '-m', 'pytest', *tests, '-x', '-q', '-p', 'no:cacheprovider', '-o', 'addopts=']
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return -1, f'timed out after {timeout} s\n{e.stdout or ""}'
    return proc.returncode, proc.stdout + proc.stderr


def first_failure(output: str) -> str:
    """The first failing test and the first line of its error."""
    m = re.search(r'^(FAILED|ERROR) (\S+)', output, re.M)
    e = re.search(r'^E +(.+)$', output, re.M)
    return (m.group(2) if m else '') + (f' ({e.group(1).strip()[:120]})' if e else '')


def check(bug: dict, workdir: Path, timeout: int, baseline: bool) -> dict:
    tree = workdir / re.sub(r'\W+', '_', bug['name'])
    shutil.copytree(REPO_ROOT, tree, ignore=IGNORE)
    start = time.monotonic()
    try:
        if baseline:
            rc, out = run_tests(tree, bug['tests'], timeout)
            if rc != 0:
                return dict(bug, status='error', detail=f'tests fail without the bug: {first_failure(out)}',
                            seconds=time.monotonic() - start, output=out)
        try:
            plant(tree, bug)
        except ValueError as e:
            return dict(bug, status='error', detail=str(e), seconds=0.0, output='')
        rc, out = run_tests(tree, bug['tests'], timeout)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    # pytest: 0 all passed, 1 some failed; 2-5 interrupted / internal error / usage / nothing collected.
    status = {0: 'survived', 1: 'caught'}.get(rc, 'error')
    detail = first_failure(out) if rc == 1 else ('' if rc == 0 else f'pytest exit {rc}: {out[-300:]!r}')
    return dict(bug, status=status, detail=detail, seconds=time.monotonic() - start, output=out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('names', nargs='*', help='run only the bugs whose name starts with one of these')
    parser.add_argument('--list', action='store_true', help='list the planted bugs and exit')
    parser.add_argument('--baseline', action='store_true',
                        help='first run each bug\'s tests on the unplanted copy (they must pass)')
    parser.add_argument('--timeout', type=int, default=900, help='seconds per bug (default 900)')
    parser.add_argument('--show-output', action='store_true', help='print pytest\'s output of survivors/errors')
    parser.add_argument('--tests', nargs='+', metavar='NODE',
                        help='run these tests instead of each bug\'s own (e.g. the suite before a new test)')
    args = parser.parse_args()

    planted = load_planted_bugs()
    bugs = [b for b in planted if not args.names or any(b['name'].startswith(n) for n in args.names)]
    if args.tests:
        bugs = [dict(b, tests=args.tests) for b in bugs]
    if args.list or not bugs:
        for b in planted:
            print(f"{b['name']:<44} {b['file']}\n    {b['why']}\n    tests: {' '.join(b['tests'])}")
        return 0 if args.list else 2
    results = []
    with tempfile.TemporaryDirectory(prefix='clim-ovd-mutants-') as tmp:
        for bug in bugs:
            r = check(bug, Path(tmp), args.timeout, args.baseline)
            print(f"{r['status']:<9} {r['name']:<44} {r['seconds']:6.0f} s  {r['detail']}", flush=True)
            if args.show_output and r['status'] != 'caught':
                print(r['output'][-4000:])
            results.append(r)
    width = max(len(r['name']) for r in results)
    print(f"\n{'planted bug':<{width}}  result    seconds  caught by")
    for r in results:
        print(f"{r['name']:<{width}}  {r['status']:<8}  {r['seconds']:7.0f}  {r['detail'][:200]}")
    bad = [r for r in results if r['status'] != 'caught']
    print(f"\n{len(results) - len(bad)} of {len(results)} caught"
          + (f"; not caught: {', '.join(r['name'] for r in bad)}" if bad else ''))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
