"""Where ggt keeps per-user caches (scores of the test set, the viewer's thumbnails)."""

from __future__ import annotations

import os


def user_cache(*parts: str) -> str:
    """A folder under the user's cache: $XDG_CACHE_HOME/ggt/..., else ~/.cache/ggt/..."""
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ggt", *parts)
