"""The package's shape: no module imports another's private names, and no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hybridrec"


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports(name: str, path: Path, top_level_only: bool):
    """(imported module, imported name or None) of every hybridrec import in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in (tree.body if top_level_only else ast.walk(tree)):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if target.startswith("hybridrec"):
                for alias in node.names:
                    yield target, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("hybridrec"):
                    yield alias.name, None


def test_no_module_imports_a_private_name():
    bad = [(m, target, n) for m, p in _modules().items() for target, n in _imports(m, p, top_level_only=False)
           if n and n.startswith("_") and not n.startswith("__")]
    assert bad == []


def test_no_import_cycles_between_modules():
    mods = _modules()
    graph = {m: set() for m in mods}
    for m, p in mods.items():
        for target, n in _imports(m, p, top_level_only=True):
            dep = f"{target}.{n}" if f"{target}.{n}" in mods else target
            if dep in mods and dep != m and not m.startswith(dep + "."):  # a package's own __init__ is not a cycle
                graph[m].add(dep)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in graph[m]:
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_top_level_holds_only_the_entry_points():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "cli.py", "config.py", "io.py", "run.py"]
