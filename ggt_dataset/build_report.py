"""What one ``ggt build`` run did: the type the build returns and the manifest is made from.

Its own module so that the manifest (below the build) can take it without importing
the build, which imports the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass

from .raw_release import RawRelease
from .shards import ShardResult


@dataclass
class BuildReport:
    out: str
    results: list[ShardResult]
    reused: int
    release: RawRelease
    skipped: list[dict[str, str]]
