"""Where a built dataset's files are: the one definition of the layout ``ggt build`` writes.

::

    OUT/README.md                                  dataset card (YAML header + text)
    OUT/ggt_manifest.json                          every shard's sha256, rows and ids
    OUT/data/<category>/<split>-NNNNN-of-MMMMM.parquet
    OUT/.ggt-build/                                resume state; never published

Each category is its own folder, so a config per category and the ``default``
config (all categories) point at the same files: no byte is stored twice. The
build, the manifest, verify, publish, the card, the viewer and the scorer all
take names from here, so the convention is written once.

    >>> shard_path("test", "rain", 0, 2)
    'data/rain/test-00000-of-00002.parquet'
    >>> parse_shard_path("hf://datasets/org/x/data/rain/test-00000-of-00002.parquet")
    ('test', 'rain')
"""

from __future__ import annotations

import os
import re

CARD_FILE = "README.md"
MANIFEST_FILE = "ggt_manifest.json"
DATA_DIR = "data"
STATE_DIR = ".ggt-build"   # resume state of `ggt build`; never published
SHARD_PATTERN = f"{DATA_DIR}/<category>/<split>-NNNNN-of-MMMMM.parquet"  # as messages show it

_SHARD = re.compile(rf"(?:^|/){DATA_DIR}/(?P<category>[^/]+)/(?P<split>[^/-]+)-\d+-of-\d+\.parquet$")


def shard_path(split: str, category: str, index: int, count: int) -> str:
    """The path of shard ``index`` of ``count`` of one split of a category, relative to OUT."""
    return f"{DATA_DIR}/{category}/{split}-{index:05d}-of-{count:05d}.parquet"


def parse_shard_path(path: str) -> tuple[str, str] | None:
    """``(split, category)`` named by a shard path (relative, absolute or ``hf://``), or None
    when the path is not a shard. Names are not checked against the schema's lists."""
    m = _SHARD.search(path.replace(os.sep, "/"))
    return (m["split"], m["category"]) if m else None


def split_glob(folder: str, split: str) -> str:
    """The ``data_files`` pattern of one split in a category folder (``*``: every category)."""
    return f"{DATA_DIR}/{folder}/{split}-*.parquet"
