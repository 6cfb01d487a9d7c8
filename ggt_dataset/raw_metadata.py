"""Read a raw release described by a metadata file (CSV or JSON Lines), one row per pair.

Columns (names as in ``datasets``' imagefolder metadata, so the stock loader can read it too):

==================  =========================================================
``lq_file_name``    LQ path relative to the metadata file (also: ``lq``, ``lq_path``)
``hq_file_name``    HQ path relative to the metadata file (also: ``hq``, ``gt``, ``hq_path``)
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
from collections.abc import Iterator, Sequence
from typing import Any

from .errors import BadIdError, BadPairError, LayoutError
from .ids import validate_id
from .raw_release import RawPair, RawRelease, ReleaseInfo
from .schema import (
    CATEGORIES,
    SPLITS,
    TEXT_METADATA,
    normalize_category,
    normalize_split,
)

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
        raise LayoutError(f"{path}: the metadata file lists no pairs")
    return release


def _rows(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        if path.lower().endswith(".jsonl"):
            yield from _jsonl_rows(path)
        elif path.lower().endswith(".csv"):
            # utf-8-sig: spreadsheets save CSV with a byte-order mark.
            with open(path, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                _check_columns(path, reader.fieldnames or [])
                for row in reader:
                    if None in row:  # DictReader's key for fields beyond the header
                        raise LayoutError(f"{path}:{reader.line_num}: more fields than the header has")
                    yield reader.line_num, {k: (v if v != "" else None) for k, v in row.items()}
        else:
            raise LayoutError(f"{path}: a metadata file must be .csv or .jsonl")
    except UnicodeDecodeError as e:
        raise LayoutError(f"{path}: not UTF-8 text ({e})") from None


def _jsonl_rows(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8-sig") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line, object_pairs_hook=_no_duplicate_keys)
            except ValueError as e:
                raise LayoutError(f"{path}:{line_no}: not valid JSON ({getattr(e, 'msg', e)})") from None
            if not isinstance(row, dict):
                raise LayoutError(f"{path}:{line_no}: expected a JSON object per line")
            _check_columns(f"{path}:{line_no}", list(row))
            yield line_no, row


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"key {dup[0]!r} appears twice")
    return dict(pairs)


def _check_columns(where: str, names: Sequence[str]) -> None:
    canon = [_ALIASES.get(n, n) for n in names]
    twice = sorted({c for c in canon if canon.count(c) > 1})
    if twice:
        same = [n for n, c in zip(names, canon) if c == twice[0]]
        raise LayoutError(f"{where}: columns {same} all mean {twice[0]!r}; keep one")
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
    pair_id = row.get("id")
    if pair_id is None:
        pair_id = f"{category}/{locate(lq).name}"
    elif not isinstance(pair_id, str) or not pair_id.strip():
        raise BadPairError(lq, f"id {pair_id!r} must be non-empty text ({where})")
    try:
        validate_id(pair_id, where)    # it becomes a file name: OUT/<id>.png in `ggt baseline`
    except BadIdError as e:
        raise BadPairError(lq, str(e)) from None
    meta: dict[str, Any] = {k: _text(row.get(k), where, k) for k in TEXT_METADATA}
    for value in (pair_id, lq, hq, *(v for v in meta.values() if v)):
        _check_utf8(value, where)
    meta["qc_scores"] = _qc_scores(row, where, lq)
    return RawPair(id=str(pair_id), split=split, category=category, lq_path=lq, hq_path=hq, meta=meta)


def _relative(value: Any, root: str, where: str, column: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadPairError(where, f"{column} is empty")
    rel = posixpath.normpath(value.replace("\\", "/"))
    if posixpath.isabs(rel) or rel.startswith("../") or rel == "..":
        raise BadPairError(where, f"{column} {value!r} must be a path inside {root}")
    full = os.path.join(root, rel)
    if not os.path.isfile(full):
        what = "not a regular file" if os.path.exists(full) else "no such file"   # a FIFO would block a read
        raise BadPairError(rel, f"listed in {where} ({column}) but {what}")
    return rel


def _text(value: Any, where: str, column: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise BadPairError(where, f"{column} must be text, got {type(value).__name__} {value!r}")


def _check_utf8(value: str, where: str) -> None:
    """Parquet strings are UTF-8; a lone surrogate (from JSON escapes) cannot be written."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadPairError(where, f"{value!r} is not valid Unicode text") from None


def _qc_scores(row: dict[str, Any], where: str, lq: str) -> list[dict[str, Any]] | None:
    scores = []
    for key in sorted(k for k in row if k.startswith("qc_")):
        value = row[key]
        if value is None:
            continue
        try:
            score = float(value)
        except (TypeError, ValueError, OverflowError):
            raise BadPairError(lq, f"{key}={value!r} is not a number ({where})") from None
        if not math.isfinite(score):
            raise BadPairError(lq, f"{key}={value!r} is not finite ({where})")
        scores.append({"name": key[3:], "score": score})
    return scores or None
