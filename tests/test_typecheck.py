"""tools/typecheck.py shows mypy the package as it installs: eval/ as ggt_dataset.eval, and so on."""

import importlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
typecheck = importlib.import_module("typecheck")


def test_the_laid_out_package_is_the_installed_one(tmp_path):
    typecheck.link_tree(str(tmp_path))
    # Each folder that installs under another name (package-dir), and a plain module.
    for module in ("ggt_dataset.eval.scoring", "ggt_dataset.loading_script.builder", "ggt_dataset.cards",
                   "ggt_dataset.build"):
        installed = importlib.import_module(module).__file__
        laid_out = tmp_path.joinpath(*module.split("."))
        laid_out = laid_out / "__init__.py" if laid_out.is_dir() else laid_out.with_suffix(".py")
        assert os.path.realpath(laid_out) == os.path.realpath(installed), module


def test_errors_name_the_file_in_the_repository(tmp_path):
    typecheck.link_tree(str(tmp_path))
    report = ("ggt_dataset/eval/scoring.py:12: error: Incompatible types  [assignment]\n"
              "ggt_dataset/build.py:3: note: See ggt_dataset/eval/x.py\n"
              "Found 1 error in 1 file (checked 2 source files)\n")
    assert typecheck.repo_paths(report, str(tmp_path)) == (
        "eval/scoring.py:12: error: Incompatible types  [assignment]\n"
        "ggt_dataset/build.py:3: note: See ggt_dataset/eval/x.py\n"
        "Found 1 error in 1 file (checked 2 source files)\n")
