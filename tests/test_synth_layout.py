"""The synthesis package's shape (issue #15): no import cycle, SQL only in the journal, one lock helper.

Read from the source with ast, not by importing, so an import inside a function counts too, and
so does a module named in a registry table ("ggt_dataset.synth.backends.vision"), which
importlib loads by name.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import ggt_dataset

PACKAGE = os.path.dirname(ggt_dataset.__file__)
SYNTH = os.path.join(PACKAGE, "synth")


def _modules(folder: str, prefix: str) -> dict[str, str]:
    found = {}
    for dirpath, _, files in os.walk(folder):
        rel = os.path.relpath(dirpath, folder)
        package = prefix if rel == "." else f"{prefix}.{rel.replace(os.sep, '.')}"
        for fn in files:
            if fn.endswith(".py"):
                found[package if fn == "__init__.py" else f"{package}.{fn[:-3]}"] = os.path.join(dirpath, fn)
    return found


def _imports(name: str, path: str, known: set[str]) -> set[str]:
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            out.add(node.value)         # a registry entry importlib loads by name
    # a module's own parent packages run first anyway: importing them is no edge back
    return {m for m in out if m in known and m != name and not name.startswith(m + ".")}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the path around it, or None."""
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = 2
        path.pop()
        return None

    return next((c for v in sorted(graph) if v not in state and (c := visit(v))), None)


def test_the_synth_package_imports_without_a_cycle():
    mods = _modules(SYNTH, "ggt_dataset.synth")
    graph = {n: _imports(n, p, set(mods)) for n, p in mods.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]     # the checker sees one


def _code_strings_and_calls(path: str):
    for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield "str", node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            yield "call", node.func.attr


def test_only_the_journal_speaks_sql():
    sql = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|BEGIN|COMMIT|ROLLBACK)\b")
    offenders = []
    for name, path in _modules(SYNTH, "ggt_dataset.synth").items():
        if name in ("ggt_dataset.synth.journal", "ggt_dataset.synth.journal_schema"):
            continue
        for kind, value in _code_strings_and_calls(path):
            if (kind == "str" and sql.match(value)) or (kind == "call" and value in ("execute", "executemany")):
                offenders.append(f"{os.path.relpath(path, PACKAGE)}: {value[:40]!r}")
    assert offenders == []


def test_one_flock_in_the_package():
    calls = [os.path.relpath(path, PACKAGE) for path in _modules(PACKAGE, "ggt_dataset").values()
             for kind, value in _code_strings_and_calls(path) if kind == "call" and value == "flock"]
    assert calls == ["locks.py"]
