"""The ground truth: one split of a built GGT dataset (a folder from ``ggt build`` or a Hub id).

A built folder is read straight from its Parquet shards, row group by row group,
so nothing is copied into the ``datasets`` cache. Anything else goes through
``ggt_dataset.load`` (a Hub id, or a folder ``datasets`` can read).

The test set's identity is its content: ``fingerprint`` hashes every (id, category,
hq_sha256) in id order, so it does not depend on how the shards were cut, and it
keys the reference-side cache.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..errors import GGTError
from ..ids import validate_id
from ..layout import MANIFEST_FILE


class ReferenceDataError(GGTError):
    """The reference dataset cannot be read or lacks the split."""


@dataclass
class References:
    source: str
    split: str
    ids: list[str]                       # in dataset order: the order pairs are scored in
    categories: dict[str, str]
    fingerprint: str
    _iter: Callable[[set[str], str], Iterator[tuple[str, bytes]]]
    # id -> the ground truth's (width, height) as decoded, from the dataset's hq_width/hq_height
    # columns: the pre-check compares prediction sizes with them before any image is read.
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    revision: str | None = None          # a Hub dataset's commit, resolved before loading it

    def iter_hq(self, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
        """(id, HQ image bytes) for the ``wanted`` ids, in dataset order, streaming."""
        return self._iter(wanted, "hq")

    def iter_lq(self, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
        """(id, LQ image bytes): what baselines restore."""
        return self._iter(wanted, "lq")


def fingerprint(rows: list[tuple[str, str, str]]) -> str:
    """The test set's content hash over (id, category, hq_sha256) rows."""
    h = hashlib.sha256()
    for pair_id, cat, sha in sorted(rows):
        h.update(f"{pair_id}\t{cat}\t{sha}\n".encode())
    return h.hexdigest()


def _sizes(columns: dict[str, list]) -> dict[str, tuple[int, int]]:
    """id -> (hq_width, hq_height) where both are known (the columns are nullable)."""
    w, h = columns.get("hq_width"), columns.get("hq_height")
    if w is None or h is None:
        return {}
    return {i: (a, b) for i, a, b in zip(columns["id"], w, h) if a and b}


def _from_build(out: str, split: str) -> References:
    import pyarrow.parquet as pq

    from .. import manifest

    data = manifest.read(out)
    shards = [os.path.join(out, s["path"]) for s in data["shards"] if s["split"] == split]
    if not shards:
        have = sorted({s["split"] for s in data["shards"]})
        raise ReferenceDataError(f"{out}: no {split!r} split (it has {', '.join(have) or 'none'})")
    rows: list[tuple[str, str, str]] = []
    sizes: dict[str, tuple[int, int]] = {}
    for path in shards:
        t = pq.read_table(path, columns=["id", "category", "hq_sha256", "hq_width", "hq_height"])
        rows += zip(*(t.column(c).to_pylist() for c in ("id", "category", "hq_sha256")))
        sizes.update(_sizes({c: t.column(c).to_pylist() for c in ("id", "hq_width", "hq_height")}))

    def iter_images(wanted: set[str], column: str) -> Iterator[tuple[str, bytes]]:
        for path in shards:
            pf = pq.ParquetFile(path)
            for rg in range(pf.num_row_groups):
                ids = pf.read_row_group(rg, columns=["id"]).column(0).to_pylist()
                if not wanted.intersection(ids):
                    continue
                images = pf.read_row_group(rg, columns=[column]).column(0)
                for i, pair_id in enumerate(ids):
                    if pair_id in wanted:
                        yield pair_id, images[i]["bytes"].as_py()

    return References(out, split, [r[0] for r in rows], {r[0]: r[1] for r in rows},
                      fingerprint(rows), iter_images, sizes)


def _commit(target: str, revision: str | None) -> str | None:
    """The commit a Hub dataset's ``revision`` (a tag, branch or commit) names now, so the scores
    and the report pin one thing even if the tag moves; offline, the revision as given."""
    from .. import hub

    if os.path.isdir(target) or hub.offline():
        return revision
    from huggingface_hub import HfApi

    try:
        return HfApi().dataset_info(target, revision=revision, timeout=10).sha or revision
    except Exception as e:  # noqa: BLE001 (reported with the target; an unreachable Hub by hub's rule)
        if hub.unreachable(e):
            raise hub.HubUnreachableError(hub.unreachable_message(f"cannot read {target}", e)) from None
        raise ReferenceDataError(f"{target}: cannot resolve revision {revision or 'main'!r} "
                                 f"({type(e).__name__}: {e})") from None


def _from_datasets(target: str, split: str, revision: str | None = None) -> References:
    import datasets

    from ..loading import load

    commit = _commit(target, revision)
    try:
        ds = load(target, split=split, **({"revision": commit} if commit else {}))
    except GGTError:
        raise
    except Exception as e:  # noqa: BLE001 (datasets raises many types; reported with the target)
        raise ReferenceDataError(f"{target}: cannot load split {split!r} ({type(e).__name__}: {e})") from None
    for column in ("lq", "hq"):
        ds = ds.cast_column(column, datasets.Image(decode=False))
    meta = ds.select_columns(["id", "category", "hq_sha256"])
    rows = list(zip(meta["id"], meta["category"], [s or "" for s in meta["hq_sha256"]]))
    size_columns = [c for c in ("hq_width", "hq_height") if c in ds.column_names]
    sizes = _sizes({c: ds[c] for c in ["id", *size_columns]})

    def iter_images(wanted: set[str], column: str) -> Iterator[tuple[str, bytes]]:
        for row in ds.select_columns(["id", column]):
            if row["id"] in wanted:
                yield row["id"], row[column]["bytes"]

    return References(target, split, [r[0] for r in rows], {r[0]: r[1] for r in rows},
                      fingerprint(rows), iter_images, sizes, commit)


def _is_raw_release(folder: str, depth: int = 3, max_folders: int = 1000) -> bool:
    """A raw release (what ``ggt build`` reads): a manifest at the top, or a role folder
    (LQ, GT, input, ...) within ``depth`` levels. Looked at breadth first, a bounded number
    of folders, so a large unrelated folder costs little."""
    from ..raw_scan import METADATA_NAMES
    from ..schema import normalize_role

    if any(os.path.isfile(os.path.join(folder, n)) for n in METADATA_NAMES):
        return True
    level, seen = [folder], 0
    for _ in range(depth):
        below = []
        for d in level:
            try:
                with os.scandir(d) as it:
                    subs = [e for e in it if not e.name.startswith(".") and e.is_dir()]
            except OSError:
                continue
            if any(normalize_role(e.name) for e in subs):
                return True
            below += [e.path for e in subs]
        seen += len(below)
        if seen > max_folders:
            return False
        level = below
    return False


def open_references(target: str, split: str = "test", revision: str | None = None) -> References:
    """Open ``split`` of ``target``: a ``ggt build`` output folder, or anything ``ggt_dataset.load``
    takes; ``revision`` (a tag, branch or commit) pins a Hub dataset."""
    if revision and os.path.exists(target):
        raise ReferenceDataError(f"{target}: a local dataset has no revision; --revision pins a Hub "
                                 "dataset (ORG/NAME)")
    if os.path.isfile(os.path.join(target, MANIFEST_FILE)):
        refs = _from_build(target, split)
    elif os.path.isdir(target) and _is_raw_release(target) or (
            os.path.isfile(target) and target.lower().endswith((".csv", ".jsonl"))):
        raise ReferenceDataError(f"{target}: a raw release (image folders or a manifest), not a built "
                             f"dataset; run `ggt build {target} OUT` first and pass OUT as the reference")
    elif os.path.isfile(target):      # else it would be tried as a Hub id, with network retries
        raise ReferenceDataError(f"{target}: a file; the reference is a folder written by `ggt build` "
                             "or a Hub dataset id")
    else:
        refs = _from_datasets(target, split, revision)
    for pair_id in refs.ids:   # a Hub dataset's ids are its author's text; they name prediction files
        validate_id(pair_id, f"{target} split {split!r}")
    if len(set(refs.ids)) != len(refs.ids):
        raise ReferenceDataError(f"{target}: split {split!r} repeats ids; rebuild it with `ggt build`")
    return refs
