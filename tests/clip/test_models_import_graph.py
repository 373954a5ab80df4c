"""``clim/models`` imports one way: no import circle between its modules (top-level and function-local
imports alike), and the zoo table imports nothing of clim-ovd.

Read from the source with ``ast`` (nothing is imported), so a circle hidden in a function body, which Python
only trips over at call time, fails here too.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _module_name(path: Path, top: Path) -> str:
    """``<top>/clim/models/towers/eva.py`` -> ``'clim.models.towers.eva'`` (``__init__`` names its package)."""
    parts = path.relative_to(top).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _imports(path: Path, top: Path, modules: set[str]) -> set[str]:
    """The ``modules`` that ``path`` imports anywhere in its body, function bodies included.

    ``from X import y`` counts as ``X.y`` when that is a module, else ``X`` (so ``from clim.models import
    CLIPModel`` in a submodule is an edge to the package); importing ``a.b.c`` also runs the packages ``a.b``
    above it, which count unless the importer is inside them (then they are already being imported).
    """
    name = _module_name(path, top)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:  # relative: against this module's package, one level up per extra dot
                parts = package.split('.')
                base = '.'.join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            targets |= {f'{base}.{a.name}' if f'{base}.{a.name}' in modules else base for a in node.names}
    out = {t for t in targets if t in modules and t != name}
    for t in targets:
        parts = t.split('.')
        parents = ('.'.join(parts[:i]) for i in range(1, len(parts)))
        out |= {m for m in parents if m in modules and m != name and not name.startswith(m + '.')}
    return out


def _graph(top: Path, package: str = 'clim/models') -> dict[str, set[str]]:
    """Module -> the modules of ``<top>/<package>`` (sub-packages included) it imports."""
    files = sorted((top / package).rglob('*.py'))
    modules = {_module_name(p, top) for p in files}
    return {_module_name(p, top): _imports(p, top, modules) for p in files}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or None (depth-first search)."""
    done: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if dep in stack:
                return stack[stack.index(dep):] + [dep]
            if dep not in done and (found := visit(dep)) is not None:
                return found
        stack.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if node not in done and (found := visit(node)) is not None:
            return found
    return None


def test_the_graph_sees_function_local_and_relative_imports(tmp_path: Path) -> None:
    """The checker itself, on a planted package: a circle closed by a function-local import is found, and the
    same package without it has none."""
    pkg = tmp_path / 'clim' / 'models'
    (pkg / 'towers').mkdir(parents=True)
    for f in ('__init__.py', 'towers/__init__.py', 'dense.py'):
        (pkg / f).write_text('')
    (pkg / 'towers' / 'eva.py').write_text('from ..dense import x\n')
    (pkg / 'zoo.py').write_text('TABLE = {}\n\n\ndef later():\n    from .hub import find  # planted\n')
    (pkg / 'hub.py').write_text('from . import zoo\nfrom clim.models.towers import eva\n')
    graph = _graph(tmp_path)
    assert graph['clim.models.hub'] == {'clim.models.zoo', 'clim.models.towers', 'clim.models.towers.eva'}
    assert graph['clim.models.towers.eva'] == {'clim.models.dense'}
    assert _cycle(graph) == ['clim.models.hub', 'clim.models.zoo', 'clim.models.hub']
    (pkg / 'zoo.py').write_text('TABLE = {}\n')
    assert _cycle(_graph(tmp_path)) is None
    (pkg / '__init__.py').write_text('from .hub import find\n')
    (pkg / 'dense.py').write_text('def f():\n    from clim.models import find\n')
    assert _cycle(_graph(tmp_path)) == ['clim.models', 'clim.models.hub', 'clim.models.towers.eva',
                                        'clim.models.dense', 'clim.models']


def test_clim_models_has_no_import_circle() -> None:
    graph = _graph(REPO)
    assert {'clim.models.zoo', 'clim.models.hub', 'clim.models.factory', 'clim.models.towers.eva'} <= set(graph)
    assert 'clim.models.zoo' in graph['clim.models.hub']  # hub reads the table, at top level
    cycle = _cycle(graph)
    assert cycle is None, 'import circle in clim/models: ' + ' -> '.join(cycle)


def test_zoo_table_imports_nothing_of_ours() -> None:
    """The table is data that every other module may read, so it imports none of them (nor anything else of
    clim-ovd)."""
    path = REPO / 'clim' / 'models' / 'zoo.py'
    ours = [ast.unparse(n) for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.ImportFrom) and (n.level or (n.module or '').split('.')[0] in ('clim', 'ovdet'))
            or isinstance(n, ast.Import) and any(a.name.split('.')[0] in ('clim', 'ovdet') for a in n.names)]
    assert not ours, f'clim/models/zoo.py imports {ours}'
