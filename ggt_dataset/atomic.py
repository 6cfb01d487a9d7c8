"""Writing files so that a reader (or a resumed build) never sees half of one."""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_file(tmp: str, final: str) -> None:
    """Flush ``tmp`` to disk, then rename it to ``final`` (atomic on POSIX)."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.makedirs(os.path.dirname(final) or ".", exist_ok=True)
    os.replace(tmp, final)
    fsync_dir(os.path.dirname(final) or ".")


def _tmp(path: str) -> str:
    # pid and thread: two writers of one path, in one process or two, never share a temporary file
    return f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"


# The names _tmp makes: what a writer killed mid-write leaves behind.
TMP_NAME = re.compile(r"\.tmp-\d+-\d+$")


def write_bytes(path: str, data: bytes, durable: bool = True) -> None:
    """``data`` at ``path``, all or nothing (the folder is made if needed). ``durable=False``
    skips the fsyncs: still atomic for readers, but a power cut may leave an empty file
    (for caches, which check what they read)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = _tmp(path)
    with open(tmp, "wb") as f:
        f.write(data)
    if durable:
        publish_file(tmp, path)
    else:
        os.replace(tmp, path)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, data: Any) -> None:
    write_text(path, json.dumps(data, indent=1, sort_keys=False) + "\n")
