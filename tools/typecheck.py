"""mypy over the installed package, as its import names see it: ``python tools/typecheck.py``.

eval/, cards/ and loading_script/ install as ggt_dataset.eval, .cards and .loading_script
([tool.setuptools.package-dir]), and the editable install maps them with an import hook,
which mypy cannot follow. So this lays out the package under build/typecheck as links
(ggt_dataset/* plus each mapped folder) and runs ``mypy -p ggt_dataset`` there, with the
settings of [tool.mypy]; error paths are printed as the repository's own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python 3.10: mypy itself depends on tomli there
    import tomli as tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "ggt_dataset"


def link_tree(dest: str) -> None:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        mapped = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(dest, ignore_errors=True)
    pkg = os.path.join(dest, PACKAGE)
    os.makedirs(pkg)
    for name in os.listdir(os.path.join(ROOT, PACKAGE)):
        os.symlink(os.path.join(ROOT, PACKAGE, name), os.path.join(pkg, name))
    for module, folder in mapped.items():
        parent, _, child = module.rpartition(".")
        if parent != PACKAGE:  # only one level is laid out; a deeper mapping needs this extended
            sys.exit(f"pyproject.toml: package-dir {module!r} is not a direct subpackage of {PACKAGE}")
        os.symlink(os.path.join(ROOT, folder), os.path.join(pkg, child))


def repo_paths(report: str, tree: str) -> str:
    """mypy's ``ggt_dataset/eval/scoring.py:12: ...`` as ``eval/scoring.py:12: ...``: the file to open."""
    own = re.compile(rf"^({PACKAGE}/[^:]+\.py)(?=:)", re.MULTILINE)
    return own.sub(lambda m: os.path.relpath(os.path.realpath(os.path.join(tree, m.group(1))), ROOT), report)


def main() -> int:
    tree = os.path.join(ROOT, "build", "typecheck")
    link_tree(tree)
    run = subprocess.run([sys.executable, "-m", "mypy", "--config-file", os.path.join(ROOT, "pyproject.toml"),
                          "--cache-dir", os.path.join(ROOT, "build", "mypy-cache"), "-p", PACKAGE],
                         cwd=tree, capture_output=True, text=True, check=False)
    sys.stdout.write(repo_paths(run.stdout, tree))
    sys.stderr.write(run.stderr)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
