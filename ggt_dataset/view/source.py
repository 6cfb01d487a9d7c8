"""Where a built dataset's shards are: a ``ggt build`` folder, or a Hub dataset repo.

Both are the same layout, ``data/<category>/<split>-NNNNN-of-MMMMM.parquet``,
so split and category come from each shard's path and nothing else is read up
front (the build manifest lists every id; reading it would make the server's
memory grow with the dataset). A Hub repo is read through ``HfFileSystem``:
Parquet footers and the requested row groups travel as HTTP range requests,
never the whole 383 GB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .. import hub
from ..errors import GGTError
from ..layout import DATA_DIR, SHARD_PATTERN, parse_shard_path
from ..schema import CATEGORIES, SPLITS


class SourceError(GGTError):
    """The target is not a built GGT dataset the viewer can read."""


@dataclass(frozen=True)
class Shard:
    path: str          # local path, or an hf:// path inside the repo
    split: str
    category: str


@dataclass(frozen=True)
class Source:
    """A dataset's shards in a stable order (split, category, shard index) and how to open them."""

    name: str
    shards: tuple[Shard, ...]
    fs: Any = None     # an fsspec filesystem for remote shards; None for local files

    def parquet(self, shard: Shard) -> pq.ParquetFile:
        """The shard, opened. Local files go by path: pyarrow's own reader, not Python file calls
        (measured: a 173-row-group footer parses in 1 ms by path, 4 ms through a file object)."""
        # pre_buffer off: the server's threads share one reader per shard, and pyarrow's
        # read-ahead cache is not safe for that (seen: heap corruption under 4+ threads).
        # A local file through an OSFile made here: it allocates its reads from pyarrow's current pool
        # (the system's, in `ggt view`); opened by path, they came from mimalloc, which keeps
        # what it freed (~110 MB more RSS over a sweep of 2,000 images, bench/view_memory.py).
        if self.fs is None:
            return pq.ParquetFile(pa.OSFile(shard.path), pre_buffer=False)
        return pq.ParquetFile(self.fs.open(shard.path, "rb", block_size=1 << 20), pre_buffer=False)


def _shards(paths: list[str], where: str) -> tuple[Shard, ...]:
    found = []
    for path in paths:
        named = parse_shard_path(path)
        if named and named[0] in SPLITS and named[1] in CATEGORIES:
            found.append(Shard(path, *named))
    if not found:
        raise SourceError(f"{where}: no shards named {SHARD_PATTERN}; "
                          "point `ggt view` at a folder written by `ggt build` (or its Hub repo)")
    order = {(s, c): i for i, (s, c) in enumerate((s, c) for s in SPLITS for c in CATEGORIES)}
    return tuple(sorted(found, key=lambda s: (order[s.split, s.category], s.path)))


def _local(folder: str) -> Source:
    data = os.path.join(folder, DATA_DIR)
    if not os.path.isdir(data):
        raise SourceError(f"{folder}: no {DATA_DIR}/ folder; point `ggt view` at a folder written by `ggt build`")
    paths = [os.path.join(root, f) for root, _, files in os.walk(data) for f in files if f.endswith(".parquet")]
    return Source(os.path.basename(os.path.normpath(folder)), _shards(paths, folder))


def _hub(repo_id: str, revision: str | None) -> Source:
    from huggingface_hub import HfFileSystem

    fs = HfFileSystem()
    root = f"datasets/{repo_id}" + (f"@{revision}" if revision else "")
    try:
        paths = fs.glob(f"{root}/{DATA_DIR}/*/*.parquet")
    except Exception as e:  # noqa: BLE001 (offline, auth, 404: all told to the user with the repo id)
        if hub.unreachable(e):
            raise SourceError(hub.unreachable_message(f"cannot list {repo_id}", e)) from None
        raise SourceError(f"{repo_id}: cannot list the Hub repo ({type(e).__name__}: {e})") from None
    return Source(repo_id, _shards(paths, repo_id), fs)


def open_source(target: str, revision: str | None = None) -> Source:
    """A ``ggt build`` folder, or a Hub dataset repo id (``owner/name``)."""
    if os.path.isdir(target):
        return _local(target)
    if os.path.exists(target) or target.count("/") != 1 or target.startswith((".", "/")):
        raise SourceError(f"{target}: not a folder written by `ggt build`, nor a Hub repo id (owner/name)")
    return _hub(target, revision)
