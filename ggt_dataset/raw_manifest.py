"""Read a raw release described by a manifest (CSV or JSON Lines), one row per pair.

Columns (names as in ``datasets``' imagefolder metadata, so the stock loader can read it too):

==================  =========================================================
``lq_file_name``    LQ path relative to the manifest (also: ``lq``, ``lq_path``)
``hq_file_name``    HQ path relative to the manifest (also: ``hq``, ``gt``, ``hq_path``)
``split``           train or test
``category``        one of the six categories or a common spelling
``id``              optional; default ``<category>/<name>`` as for folder trees
``source``, ``license``, ``generator`` (also ``model``), ``prompt``: optional text
``qc_<name>``       optional numbers, gathered into ``qc_scores``
==================  =========================================================

Any other column is an error: a typo must not silently drop metadata.
"""

from __future__ import annotations

import csv
import json
import math
import os
import posixpath
from typing import Any, Iterator

from .errors import BadPairError, LayoutError
from .release import RawPair, RawRelease, ReleaseInfo
from .schema import CATEGORIES, SPLITS, TEXT_METADATA, normalize_category, normalize_split

_ALIASES = {
    "lq_file_name": "lq_file_name", "lq": "lq_file_name", "lq_path": "lq_file_name",
    "hq_file_name": "hq_file_name", "hq": "hq_file_name", "gt": "hq_file_name",
    "hq_path": "hq_file_name", "gt_file_name": "hq_file_name",
    "split": "split", "category": "category", "id": "id", "model": "generator",
    **{k: k for k in TEXT_METADATA},
}
_REQUIRED = ("lq_file_name", "hq_file_name", "split", "category")


def read(path: str) -> RawRelease:
    root = os.path.dirname(os.path.abspath(path))
    release = RawRelease(root=root, layout="manifest", pairs=[], info=ReleaseInfo.from_root(root))
    for line_no, row in _rows(path):
        where = f"{path}:{line_no}"
        try:
            release.pairs.append(_pair(row, root, where))
        except BadPairError as e:
            release.problems.append(e)
    if not release.pairs and not release.problems:
        raise LayoutError(f"{path}: the manifest lists no pairs")
    return release


def _rows(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        if path.lower().endswith(".jsonl"):
            yield from _jsonl_rows(path)
        elif path.lower().endswith(".csv"):
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                _check_columns(path, reader.fieldnames or [])
                for row in reader:
                    yield reader.line_num, {k: (v if v != "" else None) for k, v in row.items()}
        else:
            raise LayoutError(f"{path}: a manifest must be .csv or .jsonl")
    except UnicodeDecodeError as e:
        raise LayoutError(f"{path}: not UTF-8 text ({e})") from None


def _jsonl_rows(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise LayoutError(f"{path}:{line_no}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise LayoutError(f"{path}:{line_no}: expected a JSON object per line")
            _check_columns(f"{path}:{line_no}", list(row))
            yield line_no, row


def _check_columns(where: str, names: list[str]) -> None:
    canon = [_ALIASES.get(n, n) for n in names]
    unknown = [n for n, c in zip(names, canon) if c not in _ALIASES.values() and not c.startswith("qc_")]
    if unknown:
        raise LayoutError(f"{where}: unknown columns {unknown}; expected {list(_REQUIRED)}, "
                          f"optional id, {list(TEXT_METADATA)}, model and qc_<name>")
    missing = [c for c in _REQUIRED if c not in canon]
    if missing:
        raise LayoutError(f"{where}: missing columns {missing} (have {names})")


def _pair(row: dict[str, Any], root: str, where: str) -> RawPair:
    from .raw_folders import locate

    row = {_ALIASES.get(k, k): v for k, v in row.items()}
    lq = _relative(row["lq_file_name"], root, where, "lq_file_name")
    hq = _relative(row["hq_file_name"], root, where, "hq_file_name")
    split = normalize_split(str(row["split"] or ""))
    if split is None:
        raise BadPairError(lq, f"split {row['split']!r} is not one of {list(SPLITS)} ({where})")
    category = normalize_category(str(row["category"] or ""))
    if category is None:
        raise BadPairError(lq, f"category {row['category']!r} is not one of {list(CATEGORIES)} ({where})")
    pair_id = row.get("id") or f"{category}/{locate(lq).name}"
    meta: dict[str, Any] = {k: _text(row.get(k), where, k) for k in TEXT_METADATA}
    meta["qc_scores"] = _qc_scores(row, where, lq)
    return RawPair(id=str(pair_id), split=split, category=category, lq_path=lq, hq_path=hq, meta=meta)


def _relative(value: Any, root: str, where: str, column: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadPairError(where, f"{column} is empty")
    rel = posixpath.normpath(value.replace("\\", "/"))
    if posixpath.isabs(rel) or rel.startswith("../") or rel == "..":
        raise BadPairError(where, f"{column} {value!r} must be a path inside {root}")
    if not os.path.isfile(os.path.join(root, rel)):
        raise BadPairError(rel, f"listed in {where} ({column}) but no such file")
    return rel


def _text(value: Any, where: str, column: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise BadPairError(where, f"{column} must be text, got {type(value).__name__}")


def _qc_scores(row: dict[str, Any], where: str, lq: str) -> list[dict[str, Any]] | None:
    scores = []
    for key in sorted(k for k in row if k.startswith("qc_")):
        value = row[key]
        if value is None:
            continue
        try:
            score = float(value)
        except (TypeError, ValueError):
            raise BadPairError(lq, f"{key}={value!r} is not a number ({where})") from None
        if not math.isfinite(score):
            raise BadPairError(lq, f"{key}={value!r} is not finite ({where})")
        scores.append({"name": key[3:], "score": score})
    return scores or None
