"""The viewer's query: filters and a sort, written in the page's URL so any view can be shared.

    ?category=rain,haze&split=test&where=lpips>0.3,hq_width>=512&q=chelsea&sort=-lpips&page=2

- a label column's name (``category``, ``split``, ``generator``, ``license``,
  ``has_prediction``) keeps rows whose value is one of the labels given, repeated
  (``license=a&license=b``) or comma-separated when no label holds a comma;
- ``where`` holds comparisons on numeric columns (sizes, ``qc_<name>``, report
  metrics): ``<``, ``<=``, ``>``, ``>=``, ``=``, ``!=``, all of which must hold;
- ``q`` keeps ids containing the text (case-insensitive; a scan of the id column);
- ``sort`` is a column, ``-`` in front for descending; missing values go last.
  Without it rows keep dataset order.

Besides the index's own columns, ``where`` and ``sort`` take its derived ones: with two
submissions A and B, ``psnr:A-vs-B`` is how far A beats B (``sort=-psnr:A-vs-B``: the pairs
where A beats B most first; see ``view.submissions``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.compute as pc

from ..errors import GGTError
from .index import LRU, PairIndex

PER_PAGE, MAX_PER_PAGE = 48, 200
_OPS = {"<=": operator.le, ">=": operator.ge, "!=": operator.ne, "=": operator.eq, "<": operator.lt, ">": operator.gt}
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?|[-+]?inf|nan"
_COND = re.compile(rf"^\s*([A-Za-z0-9_:.\-]+)\s*(<=|>=|!=|=|<|>)\s*({_NUMBER})\s*$", re.IGNORECASE)
_SORT = re.compile(r"^-?[A-Za-z0-9_:.][A-Za-z0-9_:.\-]*$")      # a - inside: psnr:a-vs-b
Params = Mapping[str, "str | list[str]"]        # URL parameters; a repeated one is a list


class QueryError(GGTError):
    """A query names a column the index lacks or is not well formed; ``param`` is the URL parameter at fault."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Query:
    labels: tuple[tuple[str, tuple[str, ...]], ...] = ()
    where: tuple[tuple[str, str, float], ...] = ()
    q: str = ""
    sort: str = ""


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def one(params: Params, key: str, default: str = "") -> str:
    """A parameter's value (the last, when repeated)."""
    v = params.get(key, default)
    return v[-1] if isinstance(v, list) else v


def _labels(given: str | list[str], labels: list[str]) -> list[str]:
    values = given if isinstance(given, list) else [given]
    return [w for v in values for w in ([v] if v in labels else _split(v))]


def parse(params: Params, index: PairIndex) -> Query:
    """Read a :class:`Query` from URL parameters, checking every column name against ``index``."""
    labels, where = [], []
    for name, col in index.columns.items():
        if col.labels is None:              # a numeric column: filtered by `where`
            continue
        wanted = _labels(params.get(name, ""), col.labels)
        if wanted:
            bad = [w for w in wanted if w not in col.labels]
            if bad:
                raise QueryError(f"{name}: no value {bad[0]!r} (have: {', '.join(col.labels[:20])})", name)
            labels.append((name, tuple(sorted(set(wanted)))))
    for cond in _split(one(params, "where")):
        m = _COND.match(cond)
        if not m:
            raise QueryError(f"where: cannot read {cond!r}; write e.g. lpips>0.3 or hq_width>=512", "where")
        name, op, value = m.groups()
        target = index.column(name)
        if target is None or not target.numeric:
            raise QueryError(f"where: {name!r} is not a numeric column (have: {', '.join(numeric(index))})",
                             "where")
        where.append((name, op, float(value)))
    sort = one(params, "sort").strip()
    if sort and (not _SORT.match(sort) or index.column(sort.removeprefix("-")) is None):
        raise QueryError(f"sort: no column {sort.removeprefix('-')!r} (have: {', '.join(index.columns)}; "
                         "a leading - sorts descending)", "sort")
    return Query(tuple(sorted(labels)), tuple(where), one(params, "q").strip(), sort)


def numeric(index: PairIndex) -> list[str]:
    return [n for n, c in index.columns.items() if c.numeric]


def page_of(params: Params) -> tuple[int, int]:
    try:
        page = max(1, int(one(params, "page", "1")))
        per = min(MAX_PER_PAGE, max(1, int(one(params, "per", str(PER_PAGE)))))
    except ValueError:
        raise QueryError("page and per must be whole numbers", "page") from None
    return page, per


def _mask(query: Query, index: PairIndex) -> np.ndarray:
    mask = np.ones(index.num_rows, bool)
    for name, wanted in query.labels:
        col = index.columns[name]
        assert col.labels is not None       # parse() puts label columns only in query.labels
        mask &= np.isin(col.values, [col.labels.index(w) for w in wanted])
    for name, op, value in query.where:
        target = index.column(name)
        assert target is not None           # and only columns the index has in query.where
        with np.errstate(invalid="ignore"):
            mask &= _OPS[op](target.values, value)
    if query.q:
        mask &= _id_match(query.q, index)
    return mask


def _id_match(text: str, index: PairIndex) -> np.ndarray:
    return pc.match_substring(index.ids, text, ignore_case=True).to_numpy(zero_copy_only=False)


def _order(rows: np.ndarray, sort: str, index: PairIndex) -> np.ndarray:
    if not sort:
        return rows
    col = index.column(sort.removeprefix("-"))
    assert col is not None                      # parse() checked the sort column
    values = col.values[rows].astype(np.float64)
    if col.labels is not None:                  # labels sort alphabetically, not by code
        rank = np.argsort(np.argsort(np.array(col.labels, dtype=object))).astype(np.float64)
        codes = col.values[rows]
        values = np.where(codes >= 0, rank[np.maximum(codes, 0)], np.nan)
    missing = np.isnan(values)
    keys = -values if sort.startswith("-") else values
    keys[missing] = np.inf                      # missing last, either way
    return rows[np.argsort(keys, kind="stable")]


class Selections:
    """The rows of recent queries, in order, so paging and prev/next do not recompute them.

    A sort is computed once over all rows and kept (up to ``ORDER_BYTES``); a filtered
    query then takes its rows from that order in one pass. A stable sort keeps ties in
    dataset order either way, so the result equals sorting the filtered rows.
    """

    ORDER_BYTES = 8 << 20               # about 20 orders of 100K rows

    def __init__(self, index: PairIndex, keep: int = 8):
        self.index = index
        self._rows = LRU(keep, lambda _: 1)          # bounded by count: the last ``keep`` queries
        self._orders = LRU(self.ORDER_BYTES, lambda a: a.nbytes)

    def order(self, sort: str) -> np.ndarray:
        """Every row, in ``sort`` order (missing values last)."""
        return self._orders.get(sort, lambda: _order(np.arange(self.index.num_rows, dtype=np.int32), sort,
                                                     self.index))

    def _compute(self, query: Query) -> np.ndarray:
        mask = _mask(query, self.index)
        if not query.sort:
            return np.flatnonzero(mask).astype(np.int32)
        full = self.order(query.sort)
        return full[mask[full]]

    def rows(self, query: Query) -> np.ndarray:
        return self._rows.get(query, lambda: self._compute(query))


def describe(query: Query) -> dict[str, Any]:
    return {"labels": {k: list(v) for k, v in query.labels}, "where": [f"{n}{o}{v:g}" for n, o, v in query.where],
            "q": query.q, "sort": query.sort}
