"""Where ``ggt score --out`` may write, checked before any work, and the folder's replacement.

A report folder is written whole into a fresh temporary folder beside it
(``tempfile.mkdtemp``, so no name anyone else uses), then swapped in: readers see the
old report or the new one. ``--out`` may name a new folder, an empty one, or an earlier
report; anything else (a file, someone's folder, the dataset or predictions being scored)
is refused by name unless ``overwrite`` says to replace it, and inputs never are.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable

from ..atomic import replace_dir
from .summary import ReportError, read_summary

REPORT_FILES = {"per_image.parquet", "per_image.csv", "summary.json", "report.md", "plots"}


def _is_report(folder: str) -> bool:
    """Only `ggt score`'s files, and a summary.json of its own format: safe to replace."""
    names = set(os.listdir(folder))
    plots = os.path.join(folder, "plots")
    if not names <= REPORT_FILES or "summary.json" not in names:
        return False
    if "plots" in names and not (os.path.isdir(plots) and all(n.endswith(".png") for n in os.listdir(plots))):
        return False
    try:
        read_summary(folder)
    except ReportError:
        return False
    return True


def _within(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def check_out(out: str, *, overwrite: bool = False, inputs: dict[str, str] | None = None) -> None:
    """Refuse an ``out`` the report must not replace; ``inputs`` maps a description to a path
    that replacing ``out`` must never delete (the reference dataset, the predictions)."""
    real = os.path.realpath(out)
    for what, path in (inputs or {}).items():
        if path and os.path.exists(path) and _within(os.path.realpath(path), real):
            raise ReportError(f"{out}: holds the {what} ({path}); the report would replace it. "
                              "Choose another --out")
    if os.path.lexists(out) and not os.path.isdir(out):
        raise ReportError(f"{out}: exists and is not a folder; choose another --out")
    if os.path.isdir(out) and os.listdir(out) and not overwrite and not _is_report(out):
        names = sorted(os.listdir(out))
        raise ReportError(f"{out}: a folder that is not a `ggt score` report ({len(names)} entries: "
                          f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}); choose another "
                          "--out, or pass --overwrite to replace it and everything in it")
    parent = os.path.dirname(real)
    while not os.path.isdir(parent):        # the nearest folder that exists must take the new one
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ReportError(f"{out}: cannot write in {parent} (permission denied); choose another --out")


def write_folder(out: str, fill: Callable[[str], None]) -> None:
    """Make the report with ``fill(folder)`` in a temporary folder, then swap it in at ``out``."""
    real = os.path.realpath(out)            # a link to a folder: the report goes where it points
    parent = os.path.dirname(real)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(real)}.ggt-", dir=parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)       # mkdtemp's 0700 would hide the report from others
        fill(tmp)
        replace_dir(tmp, real)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
