"""The package's layers, read from its source: no upward import, no import circle, no private name
imported from another module.

errors <- utils <- data <- space <- models <- search <- det <- engine (<- tools): a module may import
its own layer and the ones to its left. Every import counts, a function-level one too (it is the
same dependency, only later); for the layers, imports under ``if TYPE_CHECKING:`` do not (they never
run), for circles they do: two files that name each other are one knot whichever import closes it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'cream_det'
LAYERS = ('errors', 'utils', 'data', 'space', 'models', 'search', 'det', 'engine')
#: private names imported across modules that stay for now, with the reason (keep this list short)
KNOWN_PRIVATE: set[tuple[str, str, str]] = set()     # (importer, module, name) allowed to cross; none


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix('')
    parts = rel.parts[:-1] if rel.name == '__init__' else rel.parts
    return '.'.join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == 'TYPE_CHECKING') or \
        (isinstance(t, ast.Attribute) and t.attr == 'TYPE_CHECKING')


def _imports(path: Path, modules: set[str], type_checking: bool = False) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every cream_det import in ``path`` (those under
    ``if TYPE_CHECKING:`` only with ``type_checking``)."""
    name = _module_name(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    out: list[tuple[str, str | None, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child) and not type_checking:
                for c in child.orelse:
                    visit(c)
                continue
            if isinstance(child, ast.Import):
                out.extend((a.name, None, child.lineno) for a in child.names if a.name.startswith('cream_det'))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split('.')
                    base = base[:len(base) - (child.level - 1)]
                    target = '.'.join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ''
                if target.startswith('cream_det'):
                    for a in child.names:
                        sub = f'{target}.{a.name}'
                        # `from . import dist` names a module; `from .arch import Arch` a name in one
                        out.append((sub, None, child.lineno) if sub in modules else (target, a.name, child.lineno))
            visit(child)
    visit(ast.parse(path.read_text(encoding='utf-8')))
    return out


def _graph(type_checking: bool = False) -> dict[str, list[tuple[str, str | None, int]]]:
    files = sorted(PKG.rglob('*.py'))
    modules = {_module_name(f) for f in files}
    return {_module_name(f): _imports(f, modules, type_checking) for f in files}


def _layer(module: str) -> int | None:
    parts = module.split('.')
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_the_reader_sees_imports_of_every_kind():
    """The checks below are only as good as this reader: it must see relative, absolute,
    function-level and module imports, and skip TYPE_CHECKING ones."""
    g = _graph()
    assert ('cream_det.space.zoo', 'get_arch', 10) in g['cream_det.models.zoo']          # relative, top level
    assert any(t == 'cream_det.utils.distributed' for t, _, _ in g['cream_det.search.cream'])   # `from .. import m`
    assert any(t == 'cream_det.models.checkpoint' for t, _, _ in g['cream_det.engine.run'])     # inside a function
    assert not any(t == 'cream_det.space.arch' for t, _, _ in g['cream_det.space.flops'])
    assert not any(t == 'cream_det.models.supernet' for t, _, _ in g['cream_det.search.matching'])  # TYPE_CHECKING only
    typed = _graph(type_checking=True)
    assert any(t == 'cream_det.models.supernet' for t, _, _ in typed['cream_det.search.matching'])   # ... seen there


def test_no_upward_import():
    bad = []
    for mod, imports in _graph().items():
        own = _layer(mod)
        if own is None:                      # the package root and version: above every layer
            continue
        for target, _, line in imports:
            lt = len(LAYERS) if target == 'cream_det' else _layer(target)      # the root imports every layer
            if lt is not None and lt > own:
                above = LAYERS[lt] if lt < len(LAYERS) else 'the package root'
                bad.append(f'{mod}:{line} imports {target} ({above} is above {LAYERS[own]})')
    assert not bad, '\n'.join(bad)


def _packages_above(module: str) -> list[str]:
    """``a.b.c`` -> ``['a', 'a.b']``: the packages whose ``__init__`` runs before the module."""
    parts = module.split('.')
    return ['.'.join(parts[:k]) for k in range(1, len(parts))]


def _import_edges(g: dict[str, list[tuple[str, str | None, int]]]) -> dict[str, set[str]]:
    """Module -> the modules importing it runs first: what it names, and the packages above a named module that
    are not already running around the importer (importing ``p.q.m`` from outside ``p.q`` runs ``p/q/__init__``
    first; from inside it, that ``__init__`` is already running, so only an import naming ``p.q`` depends on it)."""
    edges: dict[str, set[str]] = {m: set() for m in g}
    for mod, imports in g.items():
        running = set(_packages_above(mod))
        for target, _, _ in imports:
            edges[mod].update(t for t in (target, *(p for p in _packages_above(target) if p not in running))
                              if t in edges and t != mod)
    return edges


def _circle(edges: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``edges`` (its modules, the first repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = dfs(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state:
            found = dfs(m)
            if found:
                return found
    return None


def test_the_circle_check_sees_circles_of_every_kind():
    """Through a function-level or a type-only import, through a package's ``__init__`` that a submodule names
    (``from . import x`` of a name the ``__init__`` defines), or through the ``__init__`` that importing another
    package's module runs first; and not in a package's ``__init__`` importing its own submodules."""
    pkg = {'p': [('p.a', None, 1)], 'p.a': [('p.b', 'f', 1)], 'p.b': [], 'q': [], 'q.c': []}
    assert _circle(_import_edges(pkg)) is None                 # an __init__, its submodule and a sibling it imports
    assert _circle(_import_edges({**pkg, 'p.b': [('p.a', 'g', 9)]})) == ['p.a', 'p.b', 'p.a']
    assert _circle(_import_edges({**pkg, 'p.b': [('p', 'name', 3)]})) == ['p', 'p.a', 'p.b', 'p']   # names its __init__
    # q's __init__ imports p.b, which imports q.c: importing q.c runs q's __init__ first
    assert _circle(_import_edges({**pkg, 'q': [('p.b', 'x', 1)], 'p.b': [('q.c', 'h', 1)]})) \
        == ['p', 'p.a', 'p.b', 'q', 'p']
    typed = _import_edges(_graph(type_checking=True))
    assert 'cream_det.models.supernet' in typed['cream_det.search.matching']       # a type-only import counts
    assert 'cream_det.models.checkpoint' in typed['cream_det.engine.run']          # a function-level one too


def test_no_import_circle():
    """No circle of files in the package, counting every import: function-level and type-only ones too."""
    cycle = _circle(_import_edges(_graph(type_checking=True)))
    assert cycle is None, 'import circle: ' + ' -> '.join(cycle)


def test_no_private_name_crosses_modules():
    bad = []
    files = {**{_module_name(f): f for f in PKG.rglob('*.py')}}
    modules = set(files)
    tools = sorted((ROOT / 'tools').glob('*.py'))
    for path in [*files.values(), *tools]:
        mod = _module_name(path)
        for target, name, line in _imports(path, modules):
            private = (name or target.rpartition('.')[2]).startswith('_') and not \
                (name or target.rpartition('.')[2]).startswith('__')
            if private and target != mod and (mod, target, name) not in KNOWN_PRIVATE:
                bad.append(f'{mod}:{line} imports {name or target} from {target}')
    assert not bad, '\n'.join(bad)


@pytest.mark.parametrize('layer', LAYERS)
def test_every_layer_is_known(layer):
    assert (PKG / layer).is_dir() or (PKG / f'{layer}.py').is_file()
