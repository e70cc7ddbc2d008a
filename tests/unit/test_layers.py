"""The house's layers as a DAG, enforced (docs/architecture.md):

    core → prg → fss → keys, net → mpc → gates → compiler → graph → models → runtime → cli

A module may import suf modules of its own package and of lower layers only (keys and net sit
side by side and do not import each other), no module imports another module's private name, and
the import graph between suf modules has no cycle.  Imports inside functions count too.
"""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
LAYERS = {"core": 0, "prg": 1, "fss": 2, "keys": 3, "net": 3, "mpc": 4, "gates": 5,
          "compiler": 6, "graph": 7, "models": 8, "runtime": 9, "bench": 10, "eval": 10, "cli": 11}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "suf").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The suf module an import of `name` loads (a package's attribute import falls back to the
    package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path):
    """(imported suf module, imported names, line) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("suf"):
                    yield a.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("suf"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                yield (full if full in MODULES else node.module), [a.name], node.lineno


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_package_has_a_layer():
    packages = {m.split(".")[1] for m in MODULES if m.count(".") >= 1}
    assert packages <= set(LAYERS) | {"__main__"}, packages - set(LAYERS)


def test_no_module_imports_a_higher_layer():
    bad = []
    for mod, path in MODULES.items():
        mine = _layer(mod)
        for target, _, line in _imports(path):
            theirs = _layer(_resolve(target) or target)
            if mine is None or theirs is None or mod.split(".")[1] == target.split(".")[1]:
                continue
            if theirs >= mine:
                bad.append(f"{path.relative_to(SRC)}:{line} ({mod.split('.')[1]}) imports "
                           f"{target} ({target.split('.')[1]})")
    assert not bad, "\n".join(bad)


def test_no_module_imports_a_private_name():
    bad = []
    for mod, path in MODULES.items():
        for target, names, line in _imports(path):
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    bad.append(f"{path.relative_to(SRC)}:{line} imports {target}.{n}")
        tree = ast.parse(path.read_text())
        aliases = {a.asname or a.name.split(".")[-1] for node in ast.walk(tree)
                   if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names
                   if (getattr(node, "module", None) or a.name).startswith("suf")}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                bad.append(f"{path.relative_to(SRC)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = {m: set() for m in MODULES}
    for mod, path in MODULES.items():
        for target, _, _ in _imports(path):
            t = _resolve(target)
            # a package's __init__ re-exporting its own modules is not a cycle with them
            if t and t != mod and not (mod == t.rpartition(".")[0] and path.name == "__init__.py"):
                graph[mod].add(t)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_check_catches_a_violation(tmp_path, monkeypatch):
    """The layer check is not vacuous: a core module importing the runtime is reported."""
    fake = tmp_path / "suf" / "core" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from suf.runtime import plan\n")
    monkeypatch.setitem(MODULES, "suf.core.bad", fake)
    monkeypatch.setattr("test_layers.SRC", tmp_path)
    try:
        test_no_module_imports_a_higher_layer()
    except AssertionError as e:
        assert "suf.runtime" in str(e)
    else:
        raise AssertionError("a core module importing the runtime went unnoticed")
