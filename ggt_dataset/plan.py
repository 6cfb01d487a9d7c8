"""Deciding, before any image is read, which pairs go into which shard and row group.

The plan depends only on the sorted pair list, file sizes and the options, so
the same input always gives the same shards (names, boundaries, bytes), and a
resumed build knows which shards it still owes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

import pyarrow

from .errors import BuildError, LayoutError
from .layout import DATA_DIR, shard_path
from .raw_release import RawPair, RawRelease
from .schema import SCHEMA_VERSION

# Bump when the bytes written for the same rows change (writer options, column order).
WRITER_VERSION = 2  # 2: statistics on nested leaf columns, the CDC footer key
# The Hub refuses more than 10,000 files in one folder.
MAX_FILES_PER_FOLDER = 10_000


@dataclass(frozen=True)
class BuildOptions:
    """Everything that changes the bytes of a build; part of every shard's fingerprint.

    Defaults follow what the Hub's viewer reads well: shards of a few hundred MB,
    row groups well under its 100 MB / 300 MB-scan limits (datasets uses 100 rows
    per row group for image data).
    """

    shard_bytes: int = 300 * 2**20
    row_group_bytes: int = 32 * 2**20
    row_group_rows: int = 100
    max_pixels: int | None = None  # None: images.DEFAULT_MAX_PIXELS
    decode: bool = False  # decode every image, not only those failing the fast check

    def __post_init__(self) -> None:
        if self.shard_bytes < 1 or self.row_group_bytes < 1 or self.row_group_rows < 1:
            raise BuildError("shard and row-group sizes must be positive")

    def fingerprint_fields(self) -> dict:
        return {"shard_bytes": self.shard_bytes, "row_group_bytes": self.row_group_bytes,
                "row_group_rows": self.row_group_rows, "max_pixels": self.max_pixels,
                "decode": self.decode, "schema": SCHEMA_VERSION, "writer": WRITER_VERSION,
                "pyarrow": pyarrow.__version__}


@dataclass(frozen=True)
class PlannedPair:
    pair: RawPair
    lq_size: int
    hq_size: int
    stamp: tuple  # (size, mtime_ns) of both files: a changed file invalidates its shard

    @property
    def size(self) -> int:
        return self.lq_size + self.hq_size


@dataclass
class PlannedShard:
    split: str
    category: str
    index: int
    count: int
    row_groups: list[list[PlannedPair]] = field(default_factory=list)
    fingerprint: str = ""

    @property
    def path(self) -> str:
        return shard_path(self.split, self.category, self.index, self.count)

    @property
    def pairs(self) -> list[PlannedPair]:
        return [p for rg in self.row_groups for p in rg]


def stat_pairs(release: RawRelease) -> list[PlannedPair]:
    planned = []
    for p in release.pairs:
        stats = []
        for rel in (p.lq_path, p.hq_path):
            try:
                stats.append(os.stat(os.path.join(release.root, rel)))
            except OSError as e:
                raise LayoutError(f"{rel}: cannot be read ({e.strerror})") from None
        lq, hq = stats
        planned.append(PlannedPair(p, lq.st_size, hq.st_size,
                                   (lq.st_size, lq.st_mtime_ns, hq.st_size, hq.st_mtime_ns)))
    return planned


def plan_shards(planned: list[PlannedPair], options: BuildOptions) -> list[PlannedShard]:
    """Cut each (category, split) group into shards, and each shard into row groups."""
    groups: dict[tuple[str, str], list[PlannedPair]] = {}
    for pp in planned:  # already in (split, category, id) order
        groups.setdefault((pp.pair.category, pp.pair.split), []).append(pp)
    shards: list[PlannedShard] = []
    for (category, split), members in groups.items():
        chunks = _cut(members, options.shard_bytes, None)
        for i, chunk in enumerate(chunks):
            shard = PlannedShard(split, category, i, len(chunks),
                          _cut(chunk, options.row_group_bytes, options.row_group_rows))
            shard.fingerprint = _fingerprint(shard, options)
            shards.append(shard)
    _check_folder_sizes(shards)
    return shards


def _cut(items: list[PlannedPair], max_bytes: int, max_rows: int | None) -> list[list[PlannedPair]]:
    # A chunk closes before the item that would take it over max_bytes; an item
    # larger than max_bytes gets a chunk of its own.
    chunks: list[list[PlannedPair]] = [[]]
    size = 0
    for item in items:
        full = max_rows is not None and len(chunks[-1]) >= max_rows
        if chunks[-1] and (size + item.size > max_bytes or full):
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += item.size
    return chunks


def _fingerprint(shard: PlannedShard, options: BuildOptions) -> str:
    rows = [[pp.pair.id, pp.pair.lq_path, pp.pair.hq_path, list(pp.stamp), pp.pair.meta]
            for pp in shard.pairs]
    payload = {"path": shard.path, "options": options.fingerprint_fields(),
               "row_groups": [len(rg) for rg in shard.row_groups], "rows": rows}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _check_folder_sizes(shards: list[PlannedShard]) -> None:
    per_folder: dict[str, int] = {}
    for s in shards:
        per_folder[s.category] = per_folder.get(s.category, 0) + 1
    for category, n in per_folder.items():
        if n > MAX_FILES_PER_FOLDER:
            raise BuildError(f"{DATA_DIR}/{category}/ would hold {n} shards; the Hub allows "
                             f"{MAX_FILES_PER_FOLDER} files per folder: raise --shard-size")
