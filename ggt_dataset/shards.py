"""Writing one planned shard as a Parquet file the Hub's viewer and ``datasets`` read well.

Every shard is written under a temporary name, hashed, flushed to disk and only
then renamed into place, so a file under a final name is always complete.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import BadPairError
from .images import DEFAULT_MAX_PIXELS, ImageRecord, read_image
from .plan import BuildOptions, PlannedPair, PlannedShard
from .schema import FEATURES, IMAGE_COLUMNS, TEXT_METADATA

ARROW_SCHEMA = FEATURES.arrow_schema  # carries the `huggingface` key: Image features survive


def _leaf_paths(name: str, t: pa.DataType) -> list[str]:
    # Parquet applies per-column options to leaf paths ("qc_scores.list.element.score");
    # a top-level name such as "qc_scores" matches nothing and is silently ignored.
    if pa.types.is_struct(t):
        return [p for f in t for p in _leaf_paths(f"{name}.{f.name}", f.type)]
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _leaf_paths(f"{name}.list.element", t.value_type)
    return [name]


_LEAVES = [p for f in ARROW_SCHEMA for p in _leaf_paths(f.name, f.type)]
# Image bytes are already compressed: compressing them again costs time and saves nothing.
_COMPRESSION = {p: "none" if p.split(".")[0] in IMAGE_COLUMNS else "zstd" for p in _LEAVES}
# Min/max (and so a column index) for every leaf the viewer can filter on; the min/max of
# whole images would only bloat the footer.
_STAT_LEAVES = [p for p in _LEAVES if p not in {f"{c}.bytes" for c in IMAGE_COLUMNS}]
_DICT_COLUMNS = ["category", "source", "license", "generator"]
# Content-defined chunking as `datasets` writes Parquet (datasets.config.DEFAULT_CDC_OPTIONS,
# datasets 5.2), stated here so a datasets upgrade cannot change our shard bytes unseen.
# The same dict goes into the footer under the key datasets' ParquetWriter adds, so tools
# that read it see how the file was chunked.
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}
CDC_METADATA_KEY = "content_defined_chunking"


@dataclass
class ShardResult:
    path: str
    split: str  # carried from the plan, so nothing parses them back out of the path
    category: str
    sha256: str
    num_rows: int
    num_bytes: int  # on disk
    arrow_bytes: int  # in memory, what `datasets` reports as a split's num_bytes
    row_groups: int
    ids: list[str]
    skipped: list[dict[str, str]] = field(default_factory=list)
    licenses: dict[str, int] = field(default_factory=dict)  # source licence -> pairs, for the card


@dataclass(frozen=True)
class LoadedPair:
    planned: PlannedPair
    lq: ImageRecord | None = None
    hq: ImageRecord | None = None
    error: BadPairError | None = None


def load_pair(root: str, options: BuildOptions, pp: PlannedPair) -> LoadedPair:
    """Read and check both images of a pair; a bad image becomes ``error``, never an exception."""
    max_pixels = options.max_pixels or DEFAULT_MAX_PIXELS
    try:
        lq, hq = (read_image(os.path.join(root, rel), max_pixels=max_pixels, decode=options.decode,
                             shown_as=rel) for rel in (pp.pair.lq_path, pp.pair.hq_path))
        return LoadedPair(pp, lq, hq)
    except BadPairError as e:
        e.pair_id = pp.pair.id
        return LoadedPair(pp, error=e)


def ordered_map(fn: Callable, items: Iterable, size_of: Callable[[Any], int], *,
                workers: int, budget: int) -> Generator[Any, None, None]:
    """``map(fn, items)`` on a thread pool, in order, holding at most ``budget`` bytes in flight."""
    pending: deque = deque()
    inflight = 0
    ex = ThreadPoolExecutor(max_workers=workers)
    try:
        for item in items:
            size = size_of(item)
            while pending and inflight + size > budget:
                fut, sz = pending.popleft()
                inflight -= sz
                yield fut.result()
            pending.append((ex.submit(fn, item), size))
            inflight += size
        while pending:
            yield pending.popleft()[0].result()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def load_pairs(root: str, pairs: Iterable[PlannedPair], options: BuildOptions,
               workers: int) -> Generator[LoadedPair, None, None]:
    """Every pair loaded and checked, in order, read ahead on a thread pool (128 MB in flight).

    Small pairs travel in batches: one task per pair costs more in thread hand-off
    than reading a 3 KB image.
    """
    batches = _batches(pairs, max_pairs=32, max_bytes=4 * 2**20)
    loaded = ordered_map(lambda batch: [load_pair(root, options, pp) for pp in batch], batches,
                         lambda batch: sum(pp.size for pp in batch), workers=workers, budget=128 * 2**20)
    try:
        for batch in loaded:
            yield from batch
    finally:
        loaded.close()  # stop the pool now, not when the generator is collected


def _batches(items: Iterable[PlannedPair], *, max_pairs: int, max_bytes: int) -> Iterator[list[PlannedPair]]:
    batch: list[PlannedPair] = []
    size = 0
    for pp in items:
        if batch and (len(batch) >= max_pairs or size + pp.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(pp)
        size += pp.size
    if batch:
        yield batch


def table(items: list[LoadedPair]) -> pa.Table:
    """The rows of ``items`` as an Arrow table in the pair schema, built column by column.

    Column-wise construction copies each image's bytes once; ``Table.from_pylist``
    walks a dict per row and was the slowest step of a build.
    """
    pairs = [it.planned.pair for it in items]
    images: dict[str, list[ImageRecord]] = {"lq": [], "hq": []}
    for it in items:
        assert it.lq is not None and it.hq is not None      # only pairs that loaded reach a table
        images["lq"].append(it.lq)
        images["hq"].append(it.hq)
    # File names only, as datasets' own Parquet writer stores them; the id carries the rest.
    paths = {"lq": [posixpath.basename(p.lq_path) for p in pairs],
             "hq": [posixpath.basename(p.hq_path) for p in pairs]}
    columns: dict[str, list] = {
        "id": [p.id for p in pairs], "category": [p.category for p in pairs],
        **{k: [p.meta.get(k) for p in pairs] for k in TEXT_METADATA},
        "qc_scores": [p.meta.get("qc_scores") for p in pairs],
    }
    for side, recs in images.items():
        columns[f"{side}_width"] = [r.width for r in recs]
        columns[f"{side}_height"] = [r.height for r in recs]
        columns[f"{side}_sha256"] = [r.sha256 for r in recs]
    arrays = []
    for f in ARROW_SCHEMA:
        if f.name in images:
            arrays.append(pa.StructArray.from_arrays(
                [_binary([r.data for r in images[f.name]]), pa.array(paths[f.name], pa.string())],
                fields=list(f.type)))
        else:
            arrays.append(pa.array(columns[f.name], f.type))
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


def _binary(values: list[bytes]) -> pa.Array:
    # One join and a zero-copy wrap: 2-3x faster than pa.array() on large byte strings.
    offsets = np.zeros(len(values) + 1, np.int64)
    np.cumsum([len(v) for v in values], out=offsets[1:])
    if offsets[-1] >= 2**31:
        return pa.array(values, pa.binary())  # over int32 offsets; let Arrow chunk it
    return pa.Array.from_buffers(pa.binary(), len(values),
                                 [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(values))])


def row(item: LoadedPair) -> dict[str, Any]:
    """One pair as a ``datasets`` example (the same values ``table`` writes)."""
    return table([item]).to_pylist()[0]


def write_shard(shard: PlannedShard, loaded: Iterator[LoadedPair], tmp_path: str, *, skip_bad: bool,
                on_row: Callable[[], None] = lambda: None) -> ShardResult:
    """Write ``shard``'s rows (taken from ``loaded``, in plan order) to ``tmp_path``."""
    ids: list[str] = []
    skipped: list[dict[str, str]] = []
    licenses: dict[str, int] = {}
    arrow_bytes = 0
    writer = pq.ParquetWriter(
        tmp_path, ARROW_SCHEMA, compression=_COMPRESSION, use_dictionary=_DICT_COLUMNS, write_statistics=_STAT_LEAVES,
        write_page_index=True, use_content_defined_chunking=CDC_OPTIONS, store_schema=True,
    )
    try:
        writer.add_key_value_metadata({CDC_METADATA_KEY: json.dumps(CDC_OPTIONS)})
        for group in shard.row_groups:
            items = []
            for _ in group:
                item = next(loaded)
                on_row()
                if item.error is not None:
                    if not skip_bad:
                        raise item.error
                    skipped.append({"id": item.planned.pair.id, "path": item.error.path,
                                    "reason": item.error.reason})
                    continue
                items.append(item)
                ids.append(item.planned.pair.id)
                lic = item.planned.pair.meta.get("license") or "unspecified"
                licenses[lic] = licenses.get(lic, 0) + 1
            if items:
                t = table(items)
                arrow_bytes += t.nbytes
                writer.write_table(t, row_group_size=len(items))
    finally:
        writer.close()
    meta = pq.read_metadata(tmp_path)
    # sha256 is filled in by the caller, off the writing thread (see build._finish).
    return ShardResult(shard.path, shard.split, shard.category, "", meta.num_rows, os.path.getsize(tmp_path),
                       arrow_bytes, meta.num_row_groups, ids, skipped, dict(sorted(licenses.items())))
