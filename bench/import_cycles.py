"""List import cycles among the project's modules, read from the source (ast), not by importing.

Every import counts, also those inside functions and under ``if TYPE_CHECKING``: a cycle
hidden in a function still ties two modules together; so does a module named in a registry
table, which importlib loads by name. ``ggt_dataset.eval`` is ``eval/``
and ``ggt_dataset.loading_script`` is ``loading_script/`` (pyproject's package-dir).

    python bench/import_cycles.py                # every cycle; exit 1 if there is one
    python bench/import_cycles.py --skip synth   # leave out ggt_dataset.synth
"""

from __future__ import annotations

import argparse
import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = {"ggt_dataset": "ggt_dataset", "ggt_dataset.eval": "eval",
            "ggt_dataset.loading_script": "loading_script"}


def modules() -> dict[str, str]:
    """Module name -> file, for every .py file of the packages."""
    found = {}
    for package, folder in PACKAGES.items():
        for dirpath, _dirs, files in os.walk(os.path.join(ROOT, folder)):
            rel = os.path.relpath(dirpath, os.path.join(ROOT, folder))
            prefix = package if rel == "." else f"{package}.{rel.replace(os.sep, '.')}"
            for fn in files:
                if fn.endswith(".py"):
                    found[prefix if fn == "__init__.py" else f"{prefix}.{fn[:-3]}"] = os.path.join(dirpath, fn)
    return found


def imports(name: str, path: str, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (``from . import x`` counts x if it is a module)."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            subs = {f"{base}.{a.name}" for a in node.names}
            out |= subs
            if not subs <= known:  # a name defined in the module itself, not only its submodules
                out.add(base)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            out.add(node.value)    # a registry entry ("ggt_dataset.synth.backends.vision") importlib loads
    return {m for m in out if m in known and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip", action="append", default=[], help="subpackage of ggt_dataset to leave out")
    args = ap.parse_args()
    mods = {n: p for n, p in modules().items()
            if not any(n == f"ggt_dataset.{s}" or n.startswith(f"ggt_dataset.{s}.") for s in args.skip)}
    graph = {n: imports(n, p, set(mods)) for n, p in mods.items()}
    found = cycles(graph)
    for comp in found:
        edges = [f"{a} -> {b}" for a in comp for b in sorted(graph[a]) if b in comp]
        print(f"cycle of {len(comp)}: " + ", ".join(comp))
        for e in edges:
            print(f"    {e}")
    print(f"{len(mods)} modules, {len(found)} cycle(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
