"""The build manifest (``ggt_manifest.json``): what a build wrote, shard by shard.

It holds no timestamps or absolute paths, so the same input gives the same
manifest, and it travels with the dataset to the Hub so that a download can be
verified with ``ggt verify``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any

import pyarrow

from ._version import __version__
from .errors import VerifyError
from .layout import MANIFEST_FILE
from .schema import CATEGORIES, SCHEMA_VERSION, SPLITS

if TYPE_CHECKING:
    from .build_report import BuildReport
    from .plan import BuildOptions

FORMAT = "ggt-100k/build-manifest"
FORMAT_VERSION = 1
MAX_IGNORED_LISTED = 100


def make(report: BuildReport, options: BuildOptions) -> dict[str, Any]:
    shards = [{"path": r.path, "split": r.split, "category": r.category, "sha256": r.sha256,
               "num_rows": r.num_rows, "num_bytes": r.num_bytes, "arrow_bytes": r.arrow_bytes, "row_groups": r.row_groups,
               "licenses": r.licenses, "ids": r.ids} for r in report.results]
    ignored = report.release.ignored
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "schema_version": SCHEMA_VERSION,
        "built_with": {"ggt-100k": __version__, "pyarrow": pyarrow.__version__},
        "release": {**dataclasses.asdict(report.release.info), "layout": report.release.layout},
        "options": {k: v for k, v in options.fingerprint_fields().items()
                    if k not in ("schema", "pyarrow")},
        "totals": {"pairs": sum(s["num_rows"] for s in shards), "shards": len(shards),
                   "bytes": sum(s["num_bytes"] for s in shards)},
        "counts": counts(shards),
        "skipped": report.skipped,
        "ignored_files": {"count": len(ignored), "first": ignored[:MAX_IGNORED_LISTED]},
        "shards": shards,
    }


def counts(shards: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, int]]]:
    """{split: {category: {pairs, bytes, arrow_bytes, shards}}} in canonical order, empty ones left out."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for split in SPLITS:
        for cat in CATEGORIES:
            members = [s for s in shards if s["split"] == split and s["category"] == cat]
            if members:
                out.setdefault(split, {})[cat] = {
                    "pairs": sum(s["num_rows"] for s in members),
                    "bytes": sum(s["num_bytes"] for s in members),
                    "arrow_bytes": sum(s["arrow_bytes"] for s in members),
                    "shards": len(members)}
    return out


def read(out: str) -> dict[str, Any]:
    path = os.path.join(out, MANIFEST_FILE)
    if not os.path.isfile(path):
        raise VerifyError(f"{path}: missing. Either {out} is not a ggt build, or its build did not "
                          "finish: run `ggt build RAW OUT` again to complete it.")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise VerifyError(f"{path}: unreadable ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise VerifyError(f"{path}: not a ggt build manifest (format {found!r})")
    version = data.get("format_version", 0)
    if type(version) is not int:  # bool is an int subclass, and "1" > 1 would crash
        raise VerifyError(f"{path}: 'format_version' is {version!r}, expected an integer "
                          f"(this ggt-100k writes {FORMAT_VERSION})")
    if version > FORMAT_VERSION:
        raise VerifyError(f"{path}: format version {version} is newer than this "
                          f"ggt-100k ({__version__}) reads; upgrade ggt-100k")
    _check_structure(path, data)
    return data


_SHARD_KEYS = {"path": str, "split": str, "category": str, "sha256": str, "num_rows": int,
               "num_bytes": int, "arrow_bytes": int, "ids": list}


# What card.render reads from "release" (the card is rendered again by `ggt publish`).
_CARD_RELEASE_KEYS = ("pretty_name", "license", "description", "source_license")


def _check_structure(path: str, data: dict[str, Any]) -> None:
    """Enough shape checking that later code can index without crashing on a damaged file."""
    for key, kind in (("shards", list), ("totals", dict), ("counts", dict), ("release", dict)):
        if not isinstance(data.get(key), kind):
            raise VerifyError(f"{path}: {key!r} missing or not a {kind.__name__}")
    for key, names, value_type in (("totals", ("pairs", "shards", "bytes"), int),
                                   ("release", _CARD_RELEASE_KEYS, str), ("built_with", ("ggt-100k",), str)):
        part = data.get(key)
        bad = [k for k in names if not isinstance(part, dict) or type(part.get(k)) is not value_type]
        if bad:
            raise VerifyError(f"{path}: {key!r} lacks or mistypes {bad} "
                              f"(expected {value_type.__name__} values)")
    for i, shard in enumerate(data["shards"]):
        bad = [k for k, kind in _SHARD_KEYS.items() if not isinstance(shard, dict)
               or not isinstance(shard.get(k), kind)]
        if bad:
            raise VerifyError(f"{path}: shard {i} lacks or mistypes {bad}")
