"""What a build folder holds: the dataset's own files, and everything else.

The dataset is an allow-list derived from the manifest: the card, the manifest,
the shards it lists and the local files the card links to. ``ggt publish`` sends
exactly these and ``ggt verify`` names the rest, so a stray ``.env`` or key file
in the folder can never reach the Hub by being "not ignored".
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from .layout import CARD_FILE, MANIFEST_FILE, STATE_DIR

# Names that usually hold credentials (matched on each path part, case-insensitively).
# Any hidden part counts too: editors, shells and tools keep tokens in dot files.
SECRET_NAMES = (".*", "*.pem", "*.key", "*.p12", "*.pfx", "*.keystore", "*.kdbx", "id_rsa*", "id_dsa*",
                "id_ecdsa*", "id_ed25519*", "*secret*", "*token*", "*credential*", "*password*", "*.env")

# Markdown links and images `[x](target)` and HTML `src="target"` / `href="target"`.
_LINK = re.compile(r"""\]\(\s*<?([^)\s>]+)|\b(?:src|href)\s*=\s*["']([^"']+)["']""")


def looks_secret(rel: str) -> bool:
    return any(fnmatch.fnmatchcase(part.lower(), pattern)
               for part in rel.split("/") for pattern in SECRET_NAMES)


def card_references(card_text: str, out: str) -> list[str]:
    """Relative links in the card that name a file inside ``out`` (an image the card shows)."""
    refs = set()
    for m in _LINK.finditer(card_text):
        target = unquote((m.group(1) or m.group(2)).split("#")[0].split("?")[0])
        if not target or urlsplit(target).scheme or target.startswith("/"):
            continue
        rel = posixpath.normpath(target)
        if rel != ".." and not rel.startswith("../") and os.path.isfile(os.path.join(out, rel)):
            refs.add(rel)
    return sorted(refs)


def dataset_files(out: str, data: dict[str, Any], card_text: str) -> list[str]:
    """The files that make up the dataset, as paths relative to ``out`` (sorted, no duplicates).

    Linked files that look like secrets are not part of it, whatever the card says.
    """
    refs = [r for r in card_references(card_text, out) if not looks_secret(r)]
    return sorted({CARD_FILE, MANIFEST_FILE, *(s["path"] for s in data["shards"]), *refs})


def other_files(out: str, keep: set[str]) -> list[str]:
    """Every file or symlink under ``out`` that is not in ``keep``, outside the resume state.

    Symlinks are listed, never followed (a symlinked folder appears once, as ``name/``).
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(out):
        rel_dir = os.path.relpath(dirpath, out).replace(os.sep, "/")
        prefix = "" if rel_dir == "." else rel_dir + "/"
        if not prefix:
            dirnames[:] = [d for d in dirnames if d != STATE_DIR]
        found += [prefix + d + "/" for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        found += [prefix + f for f in filenames if prefix + f not in keep]
    return sorted(found)


def why_left_out(out: str, rel: str) -> str:
    """Why ``rel`` (from :func:`other_files`) is not sent, loudest reason first."""
    if looks_secret(rel.rstrip("/")):
        return "LOOKS LIKE A SECRET, never uploaded; move it out of the build folder"
    if os.path.islink(os.path.join(out, rel.rstrip("/"))):
        return "a symlink, never uploaded"
    return "not part of the dataset (not in the manifest or linked from the card)"


def via_symlink(out: str, rel: str) -> bool:
    """Whether ``out/rel`` is a symlink or sits in a symlinked folder below ``out``."""
    return os.path.realpath(os.path.join(out, rel)) != os.path.join(os.path.realpath(out), *rel.split("/"))
