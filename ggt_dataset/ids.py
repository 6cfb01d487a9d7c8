"""Pair ids: the one rule for what an id may be, and the one way an id becomes a path.

An id names a pair in the dataset and a file in a predictions folder
(``OUT/<id>.png``), and it comes from places we do not control: a manifest's
``id`` column, file names in a raw tree, a Hub dataset's ``id`` column. So an id
must be a normalised relative POSIX path: ``/``-separated parts (``rain/0001``,
``rain/a/b``, as folder trees produce), none of them empty, ``.`` or ``..``, no
leading ``/``, no backslash, no control characters (NUL included), valid Unicode.
Then joining it under a folder can never leave that folder.
"""

from __future__ import annotations

import os
import unicodedata

from .errors import BadIdError


def id_problem(pair_id: object) -> str | None:
    """Why ``pair_id`` is not a safe id (a phrase: "is empty"), or None when it is one."""
    if not isinstance(pair_id, str):
        return f"must be text, got {type(pair_id).__name__}"
    if not pair_id:
        return "is empty"
    try:
        pair_id.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text (a lone surrogate)"
    # Cc: C0/C1 controls, DEL and NUL; Zl/Zp: line breaks that would split a message or a listing.
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in pair_id):
        return "contains a control character"
    if "\\" in pair_id:
        return "contains a backslash (use '/' between folders)"
    if pair_id.startswith("/"):
        return "is an absolute path (must be relative, like 'rain/0001')"
    parts = pair_id.split("/")
    if "" in parts:
        return "has an empty part ('//' or a trailing '/')"
    if ".." in parts or "." in parts:
        return "has a '.' or '..' part (ids must not step out of a folder)"
    return None


def unique_names(bases: list[str], sep: str) -> list[str]:
    """``bases`` in order, each repeat suffixed ``{sep}2``, ``{sep}3``, ... until it is new
    (``["out", "out"]`` with "-" -> ``["out", "out-2"]``)."""
    names: list[str] = []
    for base in bases:
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}{sep}{n}"
        names.append(name)
    return names


def validate_id(pair_id: str, where: str) -> str:
    """Return ``pair_id`` if it is a safe relative id, else raise :class:`BadIdError`.

    Args:
        pair_id: the id as read.
        where: the file (and line or row) it came from, for the message.

    >>> validate_id("rain/0001", "metadata.jsonl:2")
    'rain/0001'
    >>> validate_id("../x", "metadata.jsonl:3")
    Traceback (most recent call last):
    ...
    ggt_dataset.errors.BadIdError: metadata.jsonl:3: id '../x' has a '.' or '..' part (ids must not step out of a folder)
    """
    why = id_problem(pair_id)
    if why:
        raise BadIdError(f"{where}: id {pair_id!r} {why}")
    return pair_id


def shown(name: str) -> str:
    """``name`` for a message: as is when printable, else escaped as repr does (a newline or
    an escape sequence in a file name must not forge or garble the lines around it)."""
    return name if name.isprintable() else repr(name)[1:-1]


def id_path(root: str, pair_id: str, ext: str = "", where: str | None = None) -> str:
    """The file for ``pair_id`` under ``root`` (``root/rain/0001.png``); refuses an id that could escape it."""
    validate_id(pair_id, where or root)
    return os.path.join(root, *pair_id.split("/")) + ext
