"""Writing files so that a reader (or a resumed build) never sees half of one."""

from __future__ import annotations

import json
import os
import re
import shutil
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


def copy_file(src: str, path: str) -> None:
    """The file ``src`` copied to ``path``, all or nothing; streamed, since it may be large
    (a submission's outputs zip)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = _tmp(path)
    try:
        shutil.copyfile(src, tmp)
        publish_file(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, data: Any) -> None:
    write_text(path, json.dumps(data, indent=1, sort_keys=False) + "\n")


def _exchange(a: str, b: str) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    import ctypes
    import errno

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):          # not Linux, or a libc without it
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):   # this filesystem cannot exchange
        return False
    raise OSError(err, os.strerror(err), b)


def replace_dir(new: str, final: str) -> None:
    """Put the folder ``new`` at ``final`` (same parent), replacing any folder there.

    Readers see the old folder or the new one, whole: on Linux the two are exchanged in one
    step; elsewhere the old one is renamed aside first (a moment with none), and put back if
    the second rename fails. The old folder is then deleted.
    """
    if not os.path.lexists(final):
        os.rename(new, final)
        return
    if _exchange(new, final):
        old = new                               # the exchange left the old folder at ``new``
    else:
        old = f"{new}.old"
        os.rename(final, old)
        try:
            os.rename(new, final)
        except BaseException:
            os.rename(old, final)
            raise
    fsync_dir(os.path.dirname(final) or ".")
    shutil.rmtree(old, ignore_errors=True)
