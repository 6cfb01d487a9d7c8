"""One exclusive lock per output folder: ``ggt build`` OUT and ``ggt synth`` OUT_RAW each allow one writer.

An ``flock`` on a file, not a file's existence: the kernel drops it when the holder dies
(``kill -9`` included), so a crash never leaves a folder locked.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

from .errors import GGTError


@contextlib.contextmanager
def exclusive(path: str, busy: Callable[[str], GGTError]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created, with our pid inside) until the block ends.

    Args:
        path: the lock file; its folder is created if missing.
        busy: makes the error raised when another process holds the lock, from that
            process's pid as it wrote it ("?" if unknown).
    """
    import fcntl

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise busy(holder) from None
        os.ftruncate(fd, 0)         # only now: the holder's pid stays readable to the refused
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)                # releases the lock
