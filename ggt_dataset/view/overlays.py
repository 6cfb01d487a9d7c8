"""What a viewer shows on top of the dataset: a model's outputs and a ``ggt score`` report.

Both are keyed by pair id and joined onto the index once, at start: per-image
metrics become sortable columns (with their protocol's direction), notes stay
per row, and predictions become a third image per pair. Rows the dataset does
not hold are counted and named, not silently dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import GGTError
from ..eval.metric_facts import RANKED
from ..eval.predictions import Predictions, by_stem, open_predictions
from ..eval.report import read_summary
from .index import Column, PairIndex, pair_key


class OverlayError(GGTError):
    """A report or a predictions folder does not fit the dataset being viewed."""


@dataclass
class Report:
    label: str
    path: str
    metrics: list[str]
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


def attach_report(index: PairIndex, path: str) -> Report:
    """Join ``per_image.parquet`` of a ``ggt score`` output (folder or file) onto ``index``."""
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    table_path = os.path.join(path, "per_image.parquet") if os.path.isdir(path) else path
    if not os.path.isfile(table_path):
        raise OverlayError(f"{path}: no per_image.parquet; pass the folder `ggt score --out` wrote")
    try:
        table = pq.read_table(table_path)
    except Exception as e:  # noqa: BLE001 (any unreadable Parquet is reported by name)
        raise OverlayError(f"{table_path}: cannot read it ({type(e).__name__}: {e})") from None
    if "id" not in table.column_names:
        raise OverlayError(f"{table_path}: no 'id' column; is it a ggt score per-image table?")
    summary = _summary(folder)
    # Only a known direction orders the grid: 'unknown' (AFINE-NR) must not sort as lower-is-better.
    better = {k: v.get("better") for k, v in summary.get("metrics", {}).items() if v.get("better") in RANKED}
    split = summary.get("fingerprint", {}).get("test_set", {}).get("split") or "test"
    rows, unmatched = _rows(index, table.column("id").to_pylist(), split, table_path)
    found = np.array([r is not None for r in rows])
    at = rows[found].astype(np.int64)
    label = summary.get("label") or os.path.basename(os.path.normpath(folder))
    report = Report(label, table_path, [], unmatched=unmatched,
                    submission=summary.get("submission", {}).get("source"), split=split)
    for name in table.column_names:
        kind = table.schema.field(name).type
        if name in ("id", "category", "note") or not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            continue
        values = np.full(index.num_rows, np.nan, np.float32)
        values[at] = table.column(name).to_numpy(zero_copy_only=False).astype(np.float32)[found]
        column = Column(name, values, "metric", better=better.get(name))
        index.add_column(column)
        report.metrics.append(column.name)
    if "note" in table.column_names:
        notes = table.column("note").to_pylist()
        report.notes = {int(r): n for r, n, ok in zip(rows, notes, found) if ok and n}
    return report


@dataclass
class Outputs:
    """A model's outputs, readable by dataset row."""

    predictions: Predictions
    rows: dict[int, str]                     # row -> the predictions' own key
    unmatched: list[str]

    def read(self, row: int) -> bytes | None:
        key = self.rows.get(row)
        return None if key is None else self.predictions.read(key)


def _by_basename(index: PairIndex, keys: set[str], split: str) -> dict[str, str]:
    """For a flat folder: file stem -> dataset id, when the stem names one pair of the split only."""
    found = by_stem(index.ids.take(index.rows_of_split(split)).to_pylist())
    return {k: v[0] for k, v in found.items() if k in keys and len(v) == 1}


def attach_predictions(index: PairIndex, path: str, split: str = "test") -> Outputs:
    """A model's outputs for ``split``, matched by id (or by file name, for a flat folder)."""
    preds = open_predictions(path)
    keys = list(preds.names)
    if preds.flat:
        mapping = _by_basename(index, set(keys), split)
        ids = [mapping.get(k) for k in keys]
    else:
        ids = keys
    rows, _ = _rows(index, [i or k for i, k in zip(ids, keys)], split, path)
    unmatched = [k for k, r in zip(keys, rows) if r is None]
    outputs = Outputs(preds, {int(r): k for k, r in zip(keys, rows) if r is not None}, unmatched)
    has = np.zeros(index.num_rows, np.int8)
    has[list(outputs.rows)] = 1
    index.add_column(Column("has_prediction", has, "metric", ["no", "yes"]))
    return outputs
