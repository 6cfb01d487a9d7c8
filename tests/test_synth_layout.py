"""The synthesis package's shape (issue #15): SQL only in the journal, one lock helper.

Read from the source with ast, not by importing. Import cycles, synth's included, are
tests/test_imports.py's (bench/import_cycles.py).
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
