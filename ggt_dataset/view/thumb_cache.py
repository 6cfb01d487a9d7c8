"""Thumbnails kept on disk between runs of ``ggt view``, by the content of their image.

A thumbnail of a photo-sized PNG costs about 35 ms of decoding, and a worst-first
page of a real test set shows 96 of them scattered over the row groups: about 2.6 s
cold (bench/view_photos.py). The memory cache serves a page again within one run;
this cache serves it again after a restart (the image is read and hashed, not
decoded), for every dataset, build and Hub copy that holds the same image.

Key: the sha256 of the image bytes the server read (never the dataset's own
``lq_sha256``/``hq_sha256``: a Hub repo or an edited shard may claim another
image's hash, and two datasets sharing this cache would then serve each other's
thumbnails), under a folder named for the thumbnail's format,
so a change to how thumbnails are made starts a new folder instead of serving old
ones. Files are written atomically; one that is not a whole JPEG is made again.
The cache is bounded: when it grows past ``max_bytes`` the least recently served
files are removed down to 80% of it (a hit refreshes a file's mtime).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable

from ..atomic import write_bytes
from ..cache_dir import user_cache
from .thumbs import THUMB_FORMAT

DEFAULT_MAX_BYTES = 1 << 30          # about 40,000 thumbnails of photos
_SHA256 = re.compile(r"[0-9a-f]{64}")


def default_dir() -> str:
    """Where ``ggt view`` keeps thumbnails unless told otherwise: the user's cache folder."""
    return user_cache("view-thumbs")


class ThumbCache:
    def __init__(self, root: str, max_bytes: int = DEFAULT_MAX_BYTES):
        self.root = os.path.join(root, THUMB_FORMAT)
        self.max_bytes = max_bytes
        os.makedirs(self.root, exist_ok=True)
        self._lock = threading.Lock()
        self._pruning = threading.Lock()
        self.bytes = self._prune()

    def _path(self, sha256: str) -> str | None:
        # The hash comes from the dataset's own metadata (a Hub repo's, maybe): anything but
        # a sha256 in hex is not a file name here, so "../x" cannot write outside the cache.
        if not _SHA256.fullmatch(sha256):
            return None
        return os.path.join(self.root, sha256[:2], sha256 + ".jpg")

    def get(self, sha256: str) -> bytes | None:
        path = self._path(sha256)
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                data = f.read()
            os.utime(path)                 # recently served: pruned last
        except OSError:                    # absent, or pruned by another server meanwhile
            return None
        # Written atomically, so a bad file was damaged outside ggt: make it again.
        return data if data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9") else None

    def get_or_make(self, sha256: str, make: Callable[[], bytes]) -> bytes:
        """The cached thumbnail of the image with this hash, else ``make()``'s, kept for next time."""
        hit = self.get(sha256)
        if hit is None:
            hit = make()
            self.put(sha256, hit)
        return hit

    def put(self, sha256: str, data: bytes) -> None:
        path = self._path(sha256)
        if path is None:
            return
        try:
            write_bytes(path, data, durable=False)
        except OSError:                    # a full or read-only disk costs speed, never an answer
            return
        with self._lock:
            self.bytes += len(data)
            over = self.bytes > self.max_bytes
        if over and self._pruning.acquire(blocking=False):     # one pruner; the others go on serving
            try:
                total = self._prune()
                with self._lock:
                    self.bytes = total
            finally:
                self._pruning.release()

    def _prune(self) -> int:
        """Remove the least recently served files until the cache is under 80% of its bound; its size."""
        files = []
        for sub in os.scandir(self.root):
            if sub.is_dir():
                for entry in os.scandir(sub.path):
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    files.append((st.st_mtime_ns, st.st_size, entry.path))
        total = sum(size for _, size, _ in files)
        if total <= self.max_bytes:
            return total
        files.sort()
        for _, size, path in files:
            if total <= self.max_bytes * 0.8:
                break
            try:
                os.remove(path)
                total -= size
            except OSError:
                pass
        return total

