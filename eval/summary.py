"""``summary.json``: its format version and the one reader, which checks what readers use.

``--compare`` and the viewer read summaries through :func:`read_summary`. A hand-edited,
foreign or newer file fails there with the file and the field named
("r/summary.json: overall.psnr.mean must be a finite number or null, found 'abc'"),
never later as a TypeError inside a table.
"""

from __future__ import annotations

import json
import math
import os
import stat

from ..errors import GGTError
from ..schema import CATEGORIES
from .metric_facts import DIRECTIONS

REPORT_FORMAT = 1
MAX_SUMMARY_BYTES = 64 * 2**20      # a 500-pair summary is ~100 KB; the cap only stops a runaway file
# What --compare reads; the viewer needs only the format and whatever else is there.
COMPARE_FIELDS = ("format_version", "label", "partial", "counts", "fingerprint", "metrics", "overall",
                  "per_category", "derived")


def absdiff_name(metric: str) -> str:
    """The per-image column of |prediction's score - ground truth's own score| of an NR metric."""
    return f"{metric}_absdiff"


def category_order(rows: list[dict]) -> list[str]:
    """The categories present in ``rows``: the dataset's six in their order, then any other sorted."""
    present = {r["category"] for r in rows}
    return [c for c in CATEGORIES if c in present] + sorted(present - set(CATEGORIES))


def mean_entry(values: list[float]) -> dict:
    """A mean as summary.json stores it: over the finite values, with the others counted by kind."""
    finite = [v for v in values if math.isfinite(v)]
    # the kinds of the others: +inf PSNR is an exact prediction, NaN is a failed score (compare.py)
    return {"mean": (math.fsum(finite) / len(finite)) if finite else None,
            "n": len(finite), "nonfinite": len(values) - len(finite),
            "posinf": sum(1 for v in values if v == math.inf),
            "neginf": sum(1 for v in values if v == -math.inf),
            "nan": sum(1 for v in values if math.isnan(v))}


class ReportError(GGTError):
    """A report cannot be written, read or compared."""


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _count(v) -> bool:
    return _is_int(v) and v >= 0


def _score(v) -> bool:
    """A mean as stored: a finite number, or null when there was nothing finite to average."""
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))


def _text(v) -> bool:
    return isinstance(v, str)


def _table(v) -> bool:
    return isinstance(v, dict)


_MISSING = object()


class _Checker:
    """Walks a parsed summary; the first field that is wrong raises, naming file and field."""

    def __init__(self, path: str, data: dict):
        self.path, self.data = path, data

    def get(self, keys: tuple, test, want: str, required: bool = True):
        v = self.data
        for k in keys:
            v = v.get(k, _MISSING) if isinstance(v, dict) else _MISSING
        if v is _MISSING and not required:
            return None
        if v is _MISSING or not test(v):
            found = "nothing" if v is _MISSING else repr(v)[:60]
            raise ReportError(f"{self.path}: {'.'.join(map(str, keys))} must be {want}, found {found}; "
                              "is it a summary.json written by `ggt score`, unedited?")
        return v

    def means(self, keys: tuple) -> None:
        """One mean as :func:`mean_entry` writes it."""
        self.get(keys, _table, "an object")
        self.get(keys + ("mean",), _score, "a finite number or null")
        n = self.get(keys + ("n",), _count, "a count", required=False)
        bad = self.get(keys + ("nonfinite",), _count, "a count", required=False) or 0
        kinds = [self.get(keys + (k,), _count, "a count", required=False) for k in ("posinf", "neginf", "nan")]
        if any(k is not None for k in kinds) and sum(k or 0 for k in kinds) != bad:
            raise ReportError(f"{self.path}: {'.'.join(keys)}: posinf + neginf + nan must equal nonfinite "
                              f"({bad})")
        if n == 0 and bad == 0 and self.get(keys + ("mean",), _score, "") is not None:
            raise ReportError(f"{self.path}: {'.'.join(keys)}: a mean over no values")

    def scores(self, keys: tuple) -> None:
        for name in self.get(keys, _table, "an object"):
            self.get(keys + (name,), _score, "a finite number or null")


def _check(path: str, data: dict, need: tuple[str, ...]) -> None:
    c = _Checker(path, data)
    for field in need:
        c.get((field,), lambda v: True, "present")
    version = c.get(("format_version",), _is_int, "an integer", required=False)
    if version is not None and version > REPORT_FORMAT:
        raise ReportError(f"{path}: format_version {version} is newer than this ggt-100k reads "
                          f"({REPORT_FORMAT}); upgrade ggt-100k to read it")
    if version is not None and version < 1:
        raise ReportError(f"{path}: format_version must be 1 or more, found {version}")
    c.get(("label",), _text, "a string", required=False)
    c.get(("partial",), lambda v: isinstance(v, bool), "true or false", required=False)
    if "counts" in data:
        c.get(("counts", "scored"), _count, "a count")
    if "fingerprint" in data:
        c.get(("fingerprint",), _table, "an object")
        for key in ("protocol", "protocol_sha256"):
            c.get(("fingerprint", key), _text, "a string", required="fingerprint" in need)
        c.get(("fingerprint", "protocol_version"), lambda v: _is_int(v) or _text(v), "a version",
              required="fingerprint" in need)
        c.get(("fingerprint", "test_set"), _table, "an object", required="fingerprint" in need)
        c.get(("fingerprint", "test_set", "sha256"), _text, "a string", required="fingerprint" in need)
        c.get(("fingerprint", "test_set", "split"), _text, "a string", required=False)
    metrics = c.get(("metrics",), _table, "an object", required=False) or {}
    for name in metrics:
        c.get(("metrics", name), _table, "an object")
        c.get(("metrics", name, "better"), lambda v: v in DIRECTIONS, "'higher', 'lower' or 'unknown'")
    if "overall" in data:
        c.get(("overall",), _table, "an object")
        for name in metrics:
            c.means(("overall", name))
    for cat in c.get(("per_category",), _table, "an object", required=False) or {}:
        for name in c.get(("per_category", cat), _table, "an object"):
            if name not in metrics:
                raise ReportError(f"{path}: per_category.{cat}.{name} is not among its metrics")
            c.means(("per_category", cat, name))
    if "derived" in data:
        c.scores(("derived", "overall"))
        for cat in c.get(("derived", "per_category"), _table, "an object"):
            c.scores(("derived", "per_category", cat))
    for name in c.get(("sets",), _table, "an object", required=False) or {}:
        c.get(("sets", name, "value"), _score, "a finite number or null")
        c.get(("sets", name, "better"), lambda v: v in DIRECTIONS, "'higher', 'lower' or 'unknown'")


def read_summary(path: str, need: tuple[str, ...] = ()) -> dict:
    """The summary at ``path`` (a report folder or its summary.json), checked; ``need`` names
    fields that must be there (``COMPARE_FIELDS`` for ``--compare``)."""
    if os.path.isdir(path):
        path = os.path.join(path, "summary.json")
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):      # a FIFO would block the read forever
            raise ReportError(f"{path}: not a regular file, so not a ggt score summary")
        with open(path, "rb") as f:
            raw = f.read(MAX_SUMMARY_BYTES + 1)
        if len(raw) > MAX_SUMMARY_BYTES:
            raise ReportError(f"{path}: larger than {MAX_SUMMARY_BYTES >> 20} MiB; not a ggt score summary")
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ReportError(f"{path}: nested too deeply to be a ggt score summary") from None
    except (OSError, ValueError) as e:
        raise ReportError(f"{path}: cannot read a ggt score summary ({e})") from None
    if not isinstance(data, dict) or data.get("format") != "ggt-score":
        raise ReportError(f"{path}: not a ggt score summary.json (no \"format\": \"ggt-score\")")
    _check(path, data, need)
    data["_path"] = path
    return data
