"""A compact in-memory index over a built dataset, for filtering, sorting and lookup by id.

What stays in memory is about 70 bytes per row: the ids (an Arrow string
array), category and split codes, sizes, QC scores, a 64-bit hash of each
``split:id`` key for lookup, and the Parquet row-group boundaries. So a page of
the grid, a filter, a sort and an id search touch no shard at all (over the Hub
that is no request). Prompts, the rest of the metadata and the images stay in the
shards and are read row group by row group when a pair or an image asks for
them, through LRU caches bounded in bytes.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..schema import CATEGORIES, COLUMNS, IMAGE_COLUMNS, QC_SCORES, SPLITS
from ..shards import ordered_map
from .source import Shard, Source

SIZE_COLUMNS = ("lq_width", "lq_height", "hq_width", "hq_height")
LABEL_COLUMNS = ("generator", "license")       # low-cardinality text worth a filter
MAX_LABELS = 1000                               # above this a text column is not indexed
META_COLUMNS = tuple(c for c in COLUMNS if c not in IMAGE_COLUMNS)
ROW_CACHE_BYTES = 16 << 20
IMAGE_CACHE_BYTES = 96 << 20                    # three row groups of images at the build's 32 MiB cap
OPEN_FILES = 16                                 # open shards (each holds its parsed footer)
READ_AHEAD = 8
DERIVED_BYTES = 8 << 20                         # computed columns kept: about 20 of 100K rows


@dataclass
class Column:
    """One filterable, sortable column: numbers (NaN = missing) or label codes (-1 = missing)."""

    name: str
    values: np.ndarray
    group: str                        # data, qc, metric
    labels: list[str] | None = None   # for label columns: code -> text
    better: str | None = None         # higher/lower, for metrics

    @property
    def numeric(self) -> bool:
        return self.labels is None

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "group": self.group, "type": "number" if self.numeric else "label"}
        if self.labels is not None:
            d["labels"] = self.labels
        else:
            finite = self.values[np.isfinite(self.values)]
            d.update(min=float(finite.min()) if finite.size else None, max=float(finite.max()) if finite.size else None,
                     missing=int(self.values.size - finite.size))
        if self.better:
            d["better"] = self.better
        return d


def pair_key(split: str, pair_id: str) -> str:
    """Ids are unique within a split only (train and test may both hold ``rain/0001``): a pair is split:id."""
    return f"{split}:{pair_id}"


def key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


class LRU:
    """A thread-safe LRU cache bounded by the total size of its values in bytes."""

    def __init__(self, max_bytes: int, size: Callable[[Any], int]):
        self.max_bytes, self._size = max_bytes, size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._pending: dict[Any, Future] = {}

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        """The cached value, or ``make()``'s; concurrent misses on one key make it once."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            pending = self._pending.get(key)
            owner = pending is None
            if pending is None:
                pending = self._pending[key] = Future()
        if not owner:
            return pending.result()
        try:
            value = make()
        except BaseException as e:
            with self._lock:
                del self._pending[key]
            pending.set_exception(e)
            raise
        with self._lock:
            del self._pending[key]
            self._items[key] = value
            self._bytes += self._size(value)
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= self._size(old)
        pending.set_result(value)
        return value


@dataclass
class PairIndex:
    source: Source
    num_rows: int
    shard_start: np.ndarray                   # first global row of each shard (+ total at the end)
    group_start: list[np.ndarray]             # per shard: first row of each row group (+ shard rows)
    columns: dict[str, Column]
    ids: pa.Array                             # every pair's id, in row order
    hashes: np.ndarray                        # sorted hashes of each pair's split:id key
    hash_rows: np.ndarray                     # global row of each sorted hash
    _files: LRU = field(init=False, repr=False)
    _rows: LRU = field(init=False, repr=False)
    _images: LRU = field(init=False, repr=False)
    _reads: threading.BoundedSemaphore = field(init=False, repr=False)
    _locks: list[threading.Lock] = field(init=False, repr=False)
    derived: dict[str, Callable[[], Column]] = field(init=False, repr=False)   # name -> how to compute it
    _derived: LRU = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Comparisons between submissions: many possible, few looked at, so made on first use.
        self.derived = {}
        self._derived = LRU(DERIVED_BYTES, lambda c: c.values.nbytes)
        self._files = LRU(OPEN_FILES, lambda _: 1)
        self._rows = LRU(ROW_CACHE_BYTES, lambda t: t.nbytes)
        self._images = LRU(IMAGE_CACHE_BYTES, lambda t: t.nbytes)
        # Image row groups are up to 32 MiB each: at most this many read at once.
        self._reads = threading.BoundedSemaphore(4)
        self._locks = [threading.Lock() for _ in self.source.shards]

    # -- where a row lives -------------------------------------------------
    def locate(self, row: int) -> tuple[int, int, int]:
        """Global row -> (shard, row group, row inside the group)."""
        s = int(np.searchsorted(self.shard_start, row, side="right")) - 1
        within = row - int(self.shard_start[s])
        g = int(np.searchsorted(self.group_start[s], within, side="right")) - 1
        return s, g, within - int(self.group_start[s][g])

    def _file(self, s: int) -> pq.ParquetFile:
        shard = self.source.shards[s]
        return self._files.get(s, lambda: self.source.parquet(shard))

    def _read(self, s: int, g: int, columns: list[str]) -> pa.Table:
        # One read at a time per shard: a ParquetFile is not documented as thread-safe.
        with self._locks[s]:
            return self._file(s).read_row_group(g, columns=columns)

    def _group(self, s: int, g: int) -> pa.Table:
        return self._rows.get((s, g), lambda: self._read(s, g, list(META_COLUMNS)))

    # -- lookups -----------------------------------------------------------
    def find(self, key: str) -> int | None:
        """Global row of the pair ``split:id``, or None."""
        return self.find_many([key])[0]

    def find_many(self, keys: list[str]) -> list[int | None]:
        """Global rows of ``split:id`` keys (None where absent). The hash narrows each down; the key confirms it."""
        hashes = np.array([key_hash(k) for k in keys], np.uint64)
        lo, hi = np.searchsorted(self.hashes, hashes, "left"), np.searchsorted(self.hashes, hashes, "right")
        return [next((int(r) for r in self.hash_rows[a:b] if self.key_of(int(r)) == key), None)
                for key, a, b in zip(keys, lo, hi)]

    def key_of(self, row: int) -> str:
        return pair_key(SPLITS[self.columns["split"].values[row]], self.ids[row].as_py())

    def keys(self, rows: Iterable[int]) -> list[str]:
        return [self.key_of(r) for r in rows]

    def records(self, rows: Iterable[int]) -> list[dict[str, Any]]:
        """The stored metadata of each row (no images), read from its row group."""
        out = []
        for row in rows:
            s, g, i = self.locate(row)
            rec = self._group(s, g).slice(i, 1).to_pylist()[0]
            rec["split"] = self.source.shards[s].split
            out.append(rec)
        return out

    def image(self, row: int, role: str) -> bytes:
        s, g, i = self.locate(row)

        def read() -> pa.Table:
            with self._reads:
                return self._read(s, g, [role])

        table = self._images.get((s, g, role), read)
        return table.column(0)[i]["bytes"].as_py()

    def rows_of_split(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.columns["split"].values == SPLITS.index(split))

    def column(self, name: str) -> Column | None:
        """A column by name: stored, or derived (computed on first use, kept while the budget allows)."""
        if name in self.columns:
            return self.columns[name]
        make = self.derived.get(name)
        return None if make is None else self._derived.get(name, make)

    def add_column(self, column: Column) -> None:
        if column.name in self.columns:
            column.name = f"{column.group}:{column.name}"
        self.columns[column.name] = column


# -- building the index ----------------------------------------------------
_INDEXED = ("id", "category", *SIZE_COLUMNS, *LABEL_COLUMNS, QC_SCORES)


_CATEGORY_CODES = {c: i for i, c in enumerate(CATEGORIES)}


def _compact(batch: pa.RecordBatch, shard: Shard) -> dict[str, Any]:
    """One batch's small columns as compact arrays (run on the reader threads, so the Arrow data dies there)."""
    part: dict[str, Any] = {
        "n": batch.num_rows,
        "category": np.array([_CATEGORY_CODES.get(c, -1) for c in batch.column("category").to_pylist()], np.int8),
        "hash": np.array([key_hash(pair_key(shard.split, i)) for i in batch.column("id").to_pylist()], np.uint64),
        "id": batch.column("id"),
    }
    for c in SIZE_COLUMNS:
        part[c] = batch.column(c).to_numpy(zero_copy_only=False).astype(np.float32)
    for c in LABEL_COLUMNS:
        enc = pc.dictionary_encode(batch.column(c))
        part[c] = (enc.indices.fill_null(-1).to_numpy().astype(np.int32), enc.dictionary.to_pylist())
    col = batch.column(QC_SCORES)
    flat = pc.list_flatten(col)
    names = pc.dictionary_encode(flat.field("name"))
    part["qc"] = (pc.list_parent_indices(col).to_numpy(), names.indices.to_numpy(zero_copy_only=False),
                  names.dictionary.to_pylist(), flat.field("score").to_numpy(zero_copy_only=False).astype(np.float32))
    return part


class _Builder:
    """Joins the compact parts of every batch, in dataset order, into the index's columns."""

    def __init__(self) -> None:
        self.rows = 0
        self.parts: dict[str, list[np.ndarray]] = {c: [] for c in ("category", "split", *SIZE_COLUMNS, "hash")}
        self.labels: dict[str, dict[str, int] | None] = {c: {} for c in LABEL_COLUMNS}
        self.label_parts: dict[str, list[np.ndarray]] = {c: [] for c in LABEL_COLUMNS}
        self.qc: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}    # name -> (rows, scores) parts
        self.id_parts: list[pa.Array] = []

    def add(self, part: dict[str, Any], shard: Shard) -> None:
        for c in ("category", "hash", *SIZE_COLUMNS):
            self.parts[c].append(part[c])
        self.id_parts.append(part["id"])
        self.parts["split"].append(np.full(part["n"], SPLITS.index(shard.split), np.int8))
        for c in LABEL_COLUMNS:
            self._labels(c, *part[c])
        parents, name_codes, names, scores = part["qc"]
        for code, name in enumerate(names):
            mask = name_codes == code
            self.qc.setdefault(name, []).append((parents[mask] + self.rows, scores[mask]))
        self.rows += part["n"]

    def _labels(self, name: str, local: np.ndarray, values: list[str]) -> None:
        table = self.labels[name]
        if table is None:
            return
        remap = np.array([table.setdefault(v, len(table)) for v in values] + [-1], np.int16)
        if len(table) > MAX_LABELS:         # per-image text (URLs, ...): not a useful filter
            self.labels[name], self.label_parts[name] = None, []
            return
        self.label_parts[name].append(remap[local])       # local -1 picks the appended -1

    def columns(self) -> dict[str, Column]:
        joined = {k: np.concatenate(v) if v else np.zeros(0, np.float32) for k, v in self.parts.items()
                  if k != "hash"}       # hashes() joins those
        cols = {"category": Column("category", joined["category"], "data", list(CATEGORIES)),
                "split": Column("split", joined["split"], "data", list(SPLITS))}
        cols.update({c: Column(c, joined[c], "data") for c in SIZE_COLUMNS})
        for c, table in self.labels.items():
            if table:
                cols[c] = Column(c, np.concatenate(self.label_parts[c]), "data", list(table))
        for name in sorted(self.qc):
            values = np.full(self.rows, np.nan, np.float32)
            for rows, scores in self.qc[name]:
                values[rows] = scores
            cols[f"qc_{name}"] = Column(f"qc_{name}", values, "qc")
        return cols

    def hashes(self) -> np.ndarray:
        return np.concatenate(self.parts["hash"]) if self.rows else np.zeros(0, np.uint64)

    def ids(self) -> pa.Array:
        """One compact array (a copy: the batches' buffers are freed with them)."""
        return pa.concat_arrays([a.cast(pa.string()) for a in self.id_parts]) if self.id_parts else pa.array([], pa.string())


def _read_shard(source: Source, shard: Shard) -> tuple[pq.FileMetaData, list[dict[str, Any]]]:
    pf = source.parquet(shard)
    try:
        parts = [_compact(b, shard) for b in pf.iter_batches(batch_size=4096, columns=list(_INDEXED))]
        return pf.metadata, parts
    finally:
        pf.close()


def _ordered(fn: Callable[[Shard], Any], shards: tuple[Shard, ...], window: int) -> Iterable[Any]:
    """``map(fn, shards)`` on threads, in order, at most ``window`` shards read ahead (bounded memory)."""
    if window <= 1:
        yield from map(fn, shards)
        return
    yield from ordered_map(fn, shards, lambda _: 1, workers=window, budget=window)


def build_index(source: Source, progress: Callable[[int, int], None] | None = None) -> PairIndex:
    """Read the small columns of every shard once into a :class:`PairIndex`.

    Hub shards are read on a few threads: each is a footer request and a
    column-chunk request, so latency, not bandwidth, bounds a sequential read.
    Local shards are read on this thread: the disk is fast, and every reader
    thread would keep a malloc arena of its own (measured: +25 MB at 100K pairs).
    """
    builder, metas = _Builder(), []
    reads = _ordered(lambda sh: _read_shard(source, sh), source.shards, READ_AHEAD if source.fs else 1)
    for shard, (md, parts) in zip(source.shards, reads):
        for part in parts:
            builder.add(part, shard)
        # Only the row-group sizes are kept: a parsed footer grows with the shard's row groups.
        metas.append([md.row_group(g).num_rows for g in range(md.num_row_groups)])
        if progress:
            progress(len(metas), len(source.shards))
    shard_start = np.concatenate([[0], np.cumsum([sum(m) for m in metas])]).astype(np.int64)
    group_start = [np.concatenate([[0], np.cumsum(m)]).astype(np.int64) for m in metas]
    columns = builder.columns()
    hashes = builder.hashes()
    order = np.argsort(hashes, kind="stable")
    return PairIndex(source, builder.rows, shard_start, group_start, columns, builder.ids(), hashes[order],
                     order.astype(np.int64))
