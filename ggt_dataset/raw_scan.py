"""Reading a raw release: which reader (a folder tree, a metadata file) and what every reader's
result then gets (duplicate ids dropped, one order).

It sits above the model (:mod:`ggt_dataset.raw_release`) and its readers
(:mod:`ggt_dataset.raw_folders`, :mod:`ggt_dataset.raw_metadata`), so none of them
imports another in a circle.
"""

from __future__ import annotations

import os

from . import raw_folders, raw_metadata
from .errors import BadPairError, LayoutError
from .raw_release import RawPair, RawRelease

METADATA_NAMES = ("metadata.jsonl", "metadata.csv", "manifest.jsonl", "manifest.csv")
LAYOUTS = ("auto", "folders", "manifest")  # how scan() reads a raw release ("manifest": its metadata file; the CLI name kept)


def drop_duplicate_ids(release: RawRelease) -> None:
    """Ids must be unique within a split: submissions are matched by them.

    Every pair sharing an id is dropped and reported; keeping one would be an
    arbitrary choice the user never made.
    """
    by_key: dict[tuple[str, str], list[RawPair]] = {}
    for p in release.pairs:
        by_key.setdefault((p.split, p.id), []).append(p)
    for (split, pair_id), group in by_key.items():
        if len(group) > 1:
            paths = ", ".join(p.lq_path for p in group)
            release.problems.extend(
                BadPairError(p.lq_path, f"duplicate id {pair_id!r} in split {split!r} (given by {paths})",
                             pair_id) for p in group)
    release.pairs = [p for p in release.pairs if len(by_key[(p.split, p.id)]) == 1]


def scan(raw: str, *, layout: str = "auto", split: str | None = None,
         category: str | None = None) -> RawRelease:
    """Read a raw release: a folder tree, a folder with a metadata file, or a metadata file.

    Args:
        raw: a directory, or a ``.csv``/``.jsonl`` metadata file whose paths are relative to it.
        layout: ``auto``, ``folders`` or ``manifest``.
        split: split for files whose path names none (folder trees only).
        category: category for files whose path names none (folder trees only).
    """
    if layout not in LAYOUTS:
        raise LayoutError(f"layout must be one of {list(LAYOUTS)}, got {layout!r}")
    if not os.path.exists(raw):
        raise LayoutError(f"{raw}: no such file or directory")
    metadata = raw if os.path.isfile(raw) else None
    if metadata is None and layout in ("auto", "manifest"):
        metadata = next((os.path.join(raw, n) for n in METADATA_NAMES
                         if os.path.isfile(os.path.join(raw, n))), None)
        if metadata is None and layout == "manifest":
            raise LayoutError(f"{raw}: --layout manifest, but none of {list(METADATA_NAMES)} is there")
    if metadata is not None and layout != "folders":
        release = raw_metadata.read(metadata)
    else:
        release = raw_folders.read(raw, split=split, category=category)
    drop_duplicate_ids(release)
    release.sort()
    return release
