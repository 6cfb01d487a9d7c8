"""``ggt verify``: does a built folder match its manifest and its card, byte for byte?

Faults are collected, not raised, so one run lists every problem. Memory stays
flat: shards are hashed in chunks and, with ``full``, read one row group at a time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq
from huggingface_hub import DatasetCardData
from huggingface_hub.repocard import metadata_load

from . import manifest as manifest_mod
from .card import configs_and_infos
from .contents import dataset_files, other_files, why_left_out
from .errors import BadPairError, GGTError
from .hashing import file_sha256
from .images import decoded_size
from .layout import CARD_FILE, DATA_DIR, MANIFEST_FILE, shard_path
from .schema import FEATURES, IMAGE_COLUMNS

VIEWER_ROW_GROUP_LIMIT = 100 * 2**20


@dataclass
class VerifyReport:
    out: str
    faults: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # files beside the dataset; not published
    shards: int = 0
    rows: int = 0
    images_decoded: int = 0

    @property
    def ok(self) -> bool:
        return not self.faults


def verify(out: str, *, full: bool = False,
           on_shard: Callable[[dict[str, Any]], None] = lambda shard: None) -> VerifyReport:
    """Check every shard of the build in ``out`` against ``ggt_manifest.json`` and ``README.md``.

    Args:
        out: a folder written by ``ggt build`` (or downloaded from the Hub).
        full: also decode every image and check its hash and size columns.
        on_shard: called with each manifest shard entry once it is checked (progress).
    """
    report = VerifyReport(out)
    try:
        data = manifest_mod.read(out)
    except GGTError as e:
        report.faults.append(str(e))
        return report
    counts = manifest_mod.counts(data["shards"])  # what the shards add up to, trusted over the file's
    _check_counts(data, counts, report)
    _check_card(out, counts, report)
    _check_strays(out, data, report)
    for shard in data["shards"]:
        _check_shard(out, shard, report, full)
        on_shard(shard)
    total = sum(s["num_rows"] for s in data["shards"])
    if total != data["totals"]["pairs"]:
        report.faults.append(f"{MANIFEST_FILE}: totals say {data['totals']['pairs']} "
                             f"pairs, shards add up to {total}")
    return report


def _check_counts(data: dict[str, Any], counts: dict, report: VerifyReport) -> None:
    """Per split and category, the manifest's counts must be what its shards add up to,
    and each group's shards must be the complete series NNNNN-of-MMMMM."""
    where = MANIFEST_FILE
    if counts != data["counts"]:
        report.faults.append(f"{where}: per-split/category counts differ from what its shards add up to")
    groups: dict[tuple[str, str], list[str]] = {}
    for s in data["shards"]:
        groups.setdefault((s["category"], s["split"]), []).append(s["path"])
    for (category, split), paths in groups.items():
        n = len(paths)
        want = [shard_path(split, category, i, n) for i in range(n)]
        if sorted(paths) != want:
            report.faults.append(f"{where}: the {category}/{split} shards are not a complete series "
                                 f"(have {sorted(paths)[:3]}..., expected {want[:3]}...)")


def _check_card(out: str, counts: dict, report: VerifyReport) -> None:
    path = os.path.join(out, CARD_FILE)
    if not os.path.isfile(path):
        report.faults.append(f"{path}: missing (the dataset card); re-run `ggt build`")
        return
    try:
        meta = metadata_load(path) or {}
        card = DatasetCardData(**meta)
        configs = datasets.utils.metadata.MetadataConfigs.from_dataset_card_data(card)
        infos = datasets.info.DatasetInfosDict.from_dataset_card_data(card)
    except Exception as e:  # noqa: BLE001 (any parse failure is a fault to report, not a crash)
        report.faults.append(f"{path}: YAML header does not parse as a dataset card ({e})")
        return
    want_configs, want_infos = configs_and_infos(counts)
    for want in want_configs:
        name = want["config_name"]
        got = configs.get(name)
        if got is None or got.get("data_files") != want["data_files"]:
            report.faults.append(f"{path}: config {name!r} data_files differ from the manifest's")
    for want in want_infos:
        got = infos.get(want["config_name"])
        if got is None:
            report.faults.append(f"{path}: no dataset_info for config {want['config_name']!r}")
            continue
        if got.features != FEATURES:
            report.faults.append(f"{path}: features of config {want['config_name']!r} differ from the schema")
        have = {s.name: s.num_examples for s in (got.splits or {}).values()}
        expected = {s["name"]: s["num_examples"] for s in want["splits"]}
        if have != expected:
            report.faults.append(f"{path}: config {want['config_name']!r} num_examples {have}, "
                                 f"manifest says {expected}")


def _check_strays(out: str, data: dict[str, Any], report: VerifyReport) -> None:
    """A visible file under data/ that the manifest does not list is a fault (a loader's glob
    may read it). Anything else outside the dataset is a warning: ``ggt publish`` sends only
    the dataset's files, so a stray .DS_Store leaves the build publishable, but people
    should know that a .env sits next to it."""
    card_path = Path(out, CARD_FILE)
    card_text = card_path.read_text(encoding="utf-8", errors="replace") if card_path.is_file() else ""
    for rel in other_files(out, set(dataset_files(out, data, card_text))):
        where = os.path.join(out, rel)
        visible = not any(part.startswith(".") for part in rel.split("/"))
        if rel.startswith(DATA_DIR + "/") and visible and not rel.endswith("/"):
            report.faults.append(f"{where}: not in the manifest (loaders would read it)")
        else:
            report.warnings.append(f"{where}: {why_left_out(out, rel)}")


def _check_shard(out: str, shard: dict[str, Any], report: VerifyReport, full: bool) -> None:
    path = os.path.join(out, shard["path"])
    faults_before = len(report.faults)
    if not os.path.isfile(path):
        report.faults.append(f"{path}: missing")
        return
    if os.path.getsize(path) != shard["num_bytes"]:
        report.faults.append(f"{path}: {os.path.getsize(path)} bytes, manifest says {shard['num_bytes']}")
    if file_sha256(path) != shard["sha256"]:
        report.faults.append(f"{path}: sha256 differs from the manifest (the file changed or is corrupt)")
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 (any read error is a fault to report, not a crash)
        report.faults.append(f"{path}: not a readable Parquet file ({e})")
        return
    if datasets.Features.from_arrow_schema(pf.schema_arrow) != FEATURES:
        report.faults.append(f"{path}: schema differs from the pair schema")
    if pf.metadata.num_rows != shard["num_rows"]:
        report.faults.append(f"{path}: {pf.metadata.num_rows} rows, manifest says {shard['num_rows']}")
    for i in range(pf.metadata.num_row_groups):
        if pf.metadata.row_group(i).total_byte_size > VIEWER_ROW_GROUP_LIMIT:
            report.faults.append(f"{path}: row group {i} is over 100 MB; the Hub viewer cannot page it")
    try:
        ids = pf.read(columns=["id", "category"])
    except Exception as e:  # noqa: BLE001 (any read error is a fault to report, not a crash)
        report.faults.append(f"{path}: cannot be read ({e})")
        return
    if ids.column("id").to_pylist() != shard["ids"]:
        report.faults.append(f"{path}: ids differ from the manifest's list")
    if set(ids.column("category").to_pylist()) - {shard["category"]}:
        report.faults.append(f"{path}: holds rows of another category than {shard['category']!r}")
    report.shards += 1
    report.rows += pf.metadata.num_rows
    if full and len(report.faults) == faults_before:
        _check_images(path, pf, report)


def _check_images(path: str, pf: pq.ParquetFile, report: VerifyReport) -> None:
    columns = ["id", *IMAGE_COLUMNS, *(f"{c}_{k}" for c in IMAGE_COLUMNS for k in ("sha256", "width", "height"))]
    for batch in pf.iter_batches(batch_size=16, columns=columns):
        for row in batch.to_pylist():
            for col in IMAGE_COLUMNS:
                fault = _image_fault(row, col)
                if fault:
                    report.faults.append(f"{path}: pair {row['id']!r} {col}: {fault}")
                report.images_decoded += 1


def _image_fault(row: dict[str, Any], col: str) -> str | None:
    data = row[col]["bytes"]
    if data is None:
        return "no image bytes"
    if hashlib.sha256(data).hexdigest() != row[f"{col}_sha256"]:
        return "bytes do not match their sha256 column"
    try:
        size = decoded_size(data, col)
    except BadPairError as e:
        return e.reason
    if size != (row[f"{col}_width"], row[f"{col}_height"]):
        return f"decodes to {size[0]}x{size[1]}, columns say {row[f'{col}_width']}x{row[f'{col}_height']}"
    return None

