"""What a viewer shows on top of the dataset: models' outputs and their per-image scores.

Scores come from a ``ggt score`` report (its ``per_image.parquet`` and ``summary.json``)
or a submission record (its ``.parquet`` table beside the record JSON); outputs from a
folder, zip or Parquet. Both are keyed by pair id and joined onto the index once, at
start, as arrays by dataset row; ``view.submissions`` names them and adds the columns.
Rows the dataset does not hold are counted and named, not silently dropped.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import GGTError
from ..eval.metric_facts import RANKED
from ..eval.predictions import Predictions, by_stem, open_predictions
from ..eval.report import read_summary
from .index import PairIndex, pair_key


class OverlayError(GGTError):
    """A report or a predictions folder does not fit the dataset being viewed."""


@dataclass
class Report:
    """Per-image scores joined by dataset row: ``scores[metric]`` is NaN where a row has none."""

    label: str
    path: str
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    better: dict[str, str] = field(default_factory=dict)     # metric -> higher/lower (known directions only)
    notes: dict[int, str] = field(default_factory=dict)     # row -> conversion note
    unmatched: list[str] = field(default_factory=list)
    submission: str | None = None                            # where the scored predictions were
    split: str = "test"


def _summary(folder: str) -> dict:
    """The report's summary.json (directions, label, split) if it sits next to the table."""
    path = os.path.join(folder, "summary.json")
    return read_summary(path) if os.path.isfile(path) else {}


def _rows(index: PairIndex, ids: list[str], split: str, what: str) -> tuple[np.ndarray, list[str]]:
    rows = np.array(index.find_many([pair_key(split, str(i)) for i in ids]), dtype=object)
    unmatched = [i for i, r in zip(ids, rows) if r is None]
    if ids and len(unmatched) == len(ids):
        raise OverlayError(f"{what}: none of its {len(ids)} ids is in the {split} split of {index.source.name} "
                           f"(first: {ids[0]!r}); was it made for another dataset or split?")
    return rows, unmatched


def _scores(index: PairIndex, table_path: str, report: Report) -> Report:
    """Join the per-image table at ``table_path`` onto ``report``: numeric columns become scores."""
    try:
        table = pq.read_table(table_path)
    except Exception as e:  # noqa: BLE001 (any unreadable Parquet is reported by name)
        raise OverlayError(f"{table_path}: cannot read it ({type(e).__name__}: {e})") from None
    if "id" not in table.column_names:
        raise OverlayError(f"{table_path}: no 'id' column; is it a ggt score per-image table?")
    rows, report.unmatched = _rows(index, table.column("id").to_pylist(), report.split, table_path)
    found = np.array([r is not None for r in rows])
    at = rows[found].astype(np.int64)
    for name in table.column_names:
        kind = table.schema.field(name).type
        if name in ("id", "category", "note") or not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            continue
        values = np.full(index.num_rows, np.nan, np.float32)
        values[at] = table.column(name).to_numpy(zero_copy_only=False).astype(np.float32)[found]
        report.scores[name] = values
    if "note" in table.column_names:
        notes = table.column("note").to_pylist()
        report.notes = {int(r): n for r, n, ok in zip(rows, notes, found) if ok and n}
    return report


def _ranked(metrics: dict) -> dict[str, str]:
    # Only a known direction orders the grid: 'unknown' (AFINE-NR) must not sort as lower-is-better.
    return {k: v["better"] for k, v in metrics.items() if isinstance(v, dict) and v.get("better") in RANKED}


def attach_report(index: PairIndex, path: str) -> Report:
    """Join ``per_image.parquet`` of a ``ggt score`` output (folder or file) onto ``index``."""
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    table_path = os.path.join(path, "per_image.parquet") if os.path.isdir(path) else path
    if not os.path.isfile(table_path):
        raise OverlayError(f"{path}: no per_image.parquet; pass the folder `ggt score --out` wrote")
    summary = _summary(folder)
    split = summary.get("fingerprint", {}).get("test_set", {}).get("split") or "test"
    report = Report(summary.get("label") or os.path.basename(os.path.normpath(folder)), table_path,
                    better=_ranked(summary.get("metrics", {})),
                    submission=summary.get("submission", {}).get("source"), split=split)
    return _scores(index, table_path, report)


def attach_record(index: PairIndex, results, rel: str) -> tuple[Report | None, str | None]:
    """A submission record's scores (its per-image table) and the local path of its outputs.

    ``results`` is a ``benchmark.results.Results``; ``rel`` the record's path in it. Either
    part is None when the record has none: a pending record has no scores, and outputs kept
    in another Hub repo are not fetched here.
    """
    from ..benchmark.record import read_record

    record = read_record(results.local_path(rel))
    label = record.model["id"]
    report = None
    if record.per_image:
        table = results.local_path(posixpath.join(posixpath.dirname(rel), record.per_image["file"]))
        report = Report(label, table, better=_ranked(record.metrics),
                        split=(record.test_set or {}).get("split") or "test")
        report = _scores(index, table, report)
    out = record.outputs
    outputs = results.local_path(out["path"]) if out and out["repo"] is None and out["path"] else None
    return report, outputs


@dataclass
class Outputs:
    """A model's outputs, readable by dataset row."""

    predictions: Predictions
    rows: dict[int, str]                     # row -> the predictions' own key
    unmatched: list[str]

    def read(self, row: int) -> bytes | None:
        key = self.rows.get(row)
        return None if key is None else self.predictions.read(key)

    def has(self, num_rows: int) -> np.ndarray:
        """1 where a row has an output, else 0 (a filterable column)."""
        has = np.zeros(num_rows, np.int8)
        has[list(self.rows)] = 1
        return has


def _by_basename(index: PairIndex, keys: set[str], split: str) -> dict[str, str]:
    """For a flat folder: file stem -> dataset id, when the stem names one pair of the split only."""
    found = by_stem(index.ids.take(index.rows_of_split(split)).to_pylist())
    return {k: v[0] for k, v in found.items() if k in keys and len(v) == 1}


def attach_predictions(index: PairIndex, path: str, split: str = "test") -> Outputs:
    """A model's outputs for ``split``, matched by id (or by file name, for a flat folder)."""
    preds = open_predictions(path)
    keys = list(preds.names)
    ids: list[str | None]
    if preds.flat:
        mapping = _by_basename(index, set(keys), split)
        ids = [mapping.get(k) for k in keys]
    else:
        ids = list(keys)
    rows, _ = _rows(index, [i or k for i, k in zip(ids, keys)], split, path)
    unmatched = [k for k, r in zip(keys, rows) if r is None]
    return Outputs(preds, {int(r): k for k, r in zip(keys, rows) if r is not None}, unmatched)
