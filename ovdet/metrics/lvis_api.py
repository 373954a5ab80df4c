"""The official ``lvis`` package (0.5.3, 2020), imported in this one place with its side effects contained.

What ``lvis`` does that this module undoes or works around (no ``lvis`` code is copied):

* ``lvis/__init__.py`` calls ``logging.basicConfig``: the *root* logger gets a stderr handler in lvis'
  format and level WARNING, so every library's records that propagate to the root are printed from
  then on. mmdet's ``mmdet.evaluation`` imports ``lvis`` too; ``ovdet.metrics`` imports this module
  first, so the first import happens here, with the root logger's handlers and level restored after
  it. If something imported ``lvis`` earlier, the handler its ``basicConfig`` added (recognised by
  lvis' format string) is removed when this module or :func:`import_lvis` runs.
* ``lvis`` logs with ``Logger.warn``, which Python 3.13 removed (``LVISResults`` calls it on every
  in-memory result list): its loggers get ``warn`` = their own ``warning``.
* ``lvis.eval`` calls ``np.float``, which numpy 1.24 removed: ``LVISEval.accumulate`` raises
  ``AttributeError: module 'numpy' has no attribute 'float'`` on numpy 2
  (tests/lvis/test_lvis_metric.py shows it). ``lvis.eval``'s ``np`` is pointed at numpy plus the
  old aliases; numpy itself is left untouched.
"""
from __future__ import annotations

import contextlib
import logging
import types
from collections.abc import Iterator

import numpy as np

__all__ = ['import_lvis', 'quiet_lvis_loggers', 'LVIS_LOGGERS']

# The loggers lvis 0.5.3 creates (logging.getLogger(__name__) in each module).
LVIS_LOGGERS: tuple[str, ...] = ('lvis.lvis', 'lvis.results', 'lvis.eval', 'lvis.vis')
# lvis/__init__.py's basicConfig format: how its root handler is recognised.
_LVIS_ROOT_FORMAT = '[%(asctime)s] %(name)s %(levelname)s: %(message)s'
# The scalar aliases numpy 1.24 removed; lvis 0.5.3 uses np.float.
_REMOVED_NUMPY_ALIASES = {'float': float, 'int': int, 'bool': bool, 'object': object}


class _NumpyWithRemovedAliases(types.ModuleType):
    """numpy as seen by ``lvis.eval``: every attribute is numpy's, plus the removed aliases."""

    def __init__(self) -> None:
        super().__init__('numpy')
        for name, value in _REMOVED_NUMPY_ALIASES.items():
            setattr(self, name, value)

    def __getattr__(self, name: str):
        return getattr(np, name)


def _import_contained() -> types.ModuleType:
    """``import lvis`` with the root logger as it was before; raises ImportError if not installed."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import lvis
        import lvis.eval  # noqa: F401
    finally:
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
    for h in root.handlers[:]:  # lvis imported before this module: drop what its basicConfig added
        if isinstance(h, logging.StreamHandler) and getattr(h.formatter, '_fmt', None) == _LVIS_ROOT_FORMAT:
            root.removeHandler(h)
    for name in LVIS_LOGGERS:
        lg = logging.getLogger(name)
        lg.warn = lg.warning  # type: ignore[method-assign]
    return lvis


def import_lvis(patch_numpy: bool = True) -> tuple[type, type, type]:
    """``(LVIS, LVISResults, LVISEval)`` from the installed ``lvis`` package, contained (module doc).

    With ``patch_numpy`` (and a numpy without ``np.float``), ``lvis.eval`` gets a numpy whose removed
    aliases are back. Raises ImportError with the install command if ``lvis`` is missing."""
    try:
        lvis = _import_contained()
    except ImportError as e:
        raise ImportError('OVLVISMetric needs the official LVIS API: pip install lvis==0.5.3 '
                          f'(requirements/runtime.txt); import failed: {e}') from None
    lvis_eval = lvis.eval
    if patch_numpy and not hasattr(np, 'float') and not isinstance(lvis_eval.np, _NumpyWithRemovedAliases):
        lvis_eval.np = _NumpyWithRemovedAliases()
    return lvis.LVIS, lvis.LVISResults, lvis.LVISEval


@contextlib.contextmanager
def quiet_lvis_loggers() -> Iterator[None]:
    """Raise lvis' loggers to ERROR inside the block: ``LVISResults`` warns "Assuming user provided the
    results in correct format." on every in-memory result list, and LVISEval logs progress at INFO."""
    loggers = [logging.getLogger(n) for n in LVIS_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


with contextlib.suppress(ImportError):  # first import here, before mmdet.evaluation's (module doc)
    _import_contained()
