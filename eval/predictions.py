"""A model's outputs, from a folder, a zip or Parquet, addressed by pair id.

The id of a file is its path relative to the root, without extension, with '/'
separators: ``rain/chelsea_000.png`` is pair ``rain/chelsea_000``, as in the
dataset's ``id`` column. A flat folder (no subfolders) is matched by the last part
of the id instead, when that is unique in the test set; the report says which.
Zips are read in place, after every member has passed the safety checks.
"""

from __future__ import annotations

import functools
import glob
import os
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import GGTError
from ..ids import shown
from ..schema import IMAGE_EXTENSIONS
from .decode import ImageDecodeError

# Caps against zip bombs: a 500-image test set at 4K in 16-bit PNG is under 40 GB.
MAX_UNZIPPED_BYTES = 64 * 1024**3
MAX_ZIP_RATIO = 100          # uncompressed / compressed, per member; PNG and JPEG stay near 1
IMAGE_COLUMNS = ("prediction", "image", "output", "restored", "pred", "sr")


class PredictionsError(GGTError):
    """The predictions cannot be read, or do not line up with the test set."""


@dataclass
class Predictions:
    """Where each id's bytes come from. ``read(id)`` returns the bytes."""

    source: str
    kind: str                                     # folder, zip, parquet, dataset
    names: dict[str, str]                         # id -> file name shown in messages
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    _reader: Callable[[str], bytes] | None = None
    matched_by: str = "path"                      # or "basename" for a flat folder

    def read(self, pair_id: str) -> bytes:
        assert self._reader is not None         # every opener (open_predictions, memory.py) sets one
        return self._reader(pair_id)

    @property
    def flat(self) -> bool:
        """A folder with no category subfolders: files are named by the last part of the id."""
        return self.kind == "folder" and not any("/" in k for k in self.names)

    def rekey(self, mapping: dict[str, str]) -> None:
        """Re-address by full ids (``mapping``: key used so far -> dataset id)."""
        old_reader, old_names = self._reader, self.names
        assert old_reader is not None
        back = {v: k for k, v in mapping.items()}
        self.names = {mapping[k]: n for k, n in old_names.items() if k in mapping}
        self._reader = lambda pair_id: old_reader(back[pair_id])
        self.matched_by = "basename"


def by_stem(ids: Iterable[str]) -> dict[str, list[str]]:
    """Dataset ids by their last part (``rain/0001`` -> ``0001``), for matching a flat folder."""
    out: dict[str, list[str]] = {}
    for i in ids:
        out.setdefault(i.rsplit("/", 1)[-1], []).append(i)
    return out


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _hidden(relpath: str) -> bool:
    """Hidden files and macOS Finder's ``__MACOSX/`` and ``._x.png`` resource forks: not predictions."""
    parts = relpath.replace("\\", "/").split("/")
    return parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def _group(entries: list[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(id, name) pairs -> id -> name for unique ids, and the ids given several times.

    An id with control characters is kept escaped (``shown``): no test id has them (the
    readers refuse them), so it can only be an extra, and every message then shows it safely.
    """
    by_id: dict[str, list[str]] = {}
    for pair_id, name in entries:
        by_id.setdefault(shown(pair_id), []).append(name)
    return ({k: v[0] for k, v in by_id.items() if len(v) == 1},
            {k: v for k, v in by_id.items() if len(v) > 1})


def _collect(entries: list[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(relative path, where to read it) pairs -> id -> where, and the ids given several times.

    The id is the path without extension. Callers show names through ``shown``: a file
    name may hold control characters that must not reach a terminal raw.
    """
    return _group([(os.path.splitext(rel)[0].replace(os.sep, "/"), where) for rel, where in sorted(entries)])


def _shown(names: dict[str, str], dups: dict[str, list[str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    return {k: shown(v) for k, v in names.items()}, {k: [shown(v) for v in vs] for k, vs in dups.items()}


def _folder(root: str) -> Predictions:
    entries = []
    # glob skips hidden files; isfile (not a FIFO or device, whose read would block) follows links.
    for path in glob.glob(os.path.join(glob.escape(root), "**", "*"), recursive=True):
        rel = os.path.relpath(path, root)
        if _is_image(path) and not _hidden(rel) and os.path.isfile(path):
            entries.append((rel, path))
    paths, dups = _collect(entries)

    def read(pair_id: str) -> bytes:
        try:
            with open(paths[pair_id], "rb") as f:
                return f.read()
        except OSError as e:    # gone or unreadable since the listing: this image fails, not the run
            raise ImageDecodeError(f"{shown(paths[pair_id])}: cannot be read ({e.strerror or e})") from None

    return Predictions(root, "folder", *_shown(paths, dups), read)


def _check_member(zpath: str, info: zipfile.ZipInfo) -> str | None:
    """Why a member is refused, or None. Directories and non-images are skipped by the caller."""
    name = info.filename
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "path escapes the archive ('..')"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    if info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO:
        return (f"compression ratio {info.file_size / info.compress_size:.0f}:1 is above the "
                f"{MAX_ZIP_RATIO}:1 cap (zip bomb?)")
    return None


def _zip(path: str, max_bytes: int) -> Predictions:
    try:
        zf = zipfile.ZipFile(path)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise PredictionsError(f"{path}: not a readable zip ({e})") from None
    refused, entries, total = [], [], 0
    for info in infos:
        why = _check_member(path, info)
        if why:
            refused.append(f"{shown(path)}!{shown(info.filename)}: {why}")
            continue
        if info.is_dir() or not _is_image(info.filename) or _hidden(info.filename):
            continue
        total += info.file_size
        entries.append((info.filename, info.filename))
    if refused:
        raise PredictionsError("refused unsafe zip members:\n  " + "\n  ".join(refused[:20])
                               + (f"\n  ... and {len(refused) - 20} more" if len(refused) > 20 else ""))
    if total > max_bytes:
        raise PredictionsError(f"{path}: {total:,} bytes uncompressed is above the cap of "
                               f"{max_bytes:,} (zip bomb?); raise it with --max-unzipped if this is real")
    member, dups = _collect(entries)
    names, dups = _shown({k: f"{path}!{m}" for k, m in member.items()},
                         {k: [f"{path}!{m}" for m in ms] for k, ms in dups.items()})

    def read(pair_id: str) -> bytes:
        # A damaged member fails its own image (recorded like an undecodable one), not the run.
        info = zf.getinfo(member[pair_id])
        try:
            with zf.open(info) as f:
                data = f.read(info.file_size + 1)    # zipfile also checks the CRC and size
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
            raise ImageDecodeError(f"{names[pair_id]}: damaged zip member ({shown(str(e))})") from None
        if len(data) > info.file_size:
            raise ImageDecodeError(f"{names[pair_id]}: more data than the header declares")
        return data

    return Predictions(path, "zip", names, dups, read)


def _image_bytes(value, where: str) -> bytes:
    if isinstance(value, dict):
        value = value.get("bytes")
    if not isinstance(value, (bytes, bytearray)):
        raise PredictionsError(f"{where}: no image bytes")
    return bytes(value)


def _parquet(path: str) -> Predictions:
    import pyarrow.parquet as pq

    files = [path] if os.path.isfile(path) else sorted(   # isfile: opening a FIFO would block
        f for f in glob.glob(os.path.join(glob.escape(path), "**", "*.parquet"), recursive=True)
        if os.path.isfile(f))
    where: dict[str, tuple[str, int, int]] = {}
    entries, column = [], None
    for f in files:
        try:
            pf = pq.ParquetFile(f)
        except Exception as e:  # noqa: BLE001 (pyarrow raises many types on a bad file)
            raise PredictionsError(f"{f}: not a readable Parquet file ({e})") from None
        cols = pf.schema_arrow.names
        col = next((c for c in IMAGE_COLUMNS if c in cols), None)
        if "id" not in cols or col is None:
            raise PredictionsError(f"{f}: needs an 'id' column and an image column named one of "
                                   f"{', '.join(IMAGE_COLUMNS)}; found {', '.join(cols)}")
        column = col
        for rg in range(pf.num_row_groups):
            for i, pair_id in enumerate(pf.read_row_group(rg, columns=["id"]).column(0).to_pylist()):
                label = shown(f"{f} (id {pair_id})")
                entries.append((str(pair_id), label))
                where[label] = (f, rg, i)
    names, dups = _group(entries)            # ids from a column: no extension to strip

    @functools.lru_cache(maxsize=2)        # one row group at a time, in reference order
    def group(f: str, rg: int):
        return pq.ParquetFile(f).read_row_group(rg, columns=[column]).column(0)

    def read(pair_id: str) -> bytes:
        f, rg, i = where[names[pair_id]]
        return _image_bytes(group(f, rg)[i].as_py(), names[pair_id])

    return Predictions(path, "parquet", names, dups, read)


def _saved_dataset(path: str) -> Predictions:
    import datasets

    ds = datasets.load_from_disk(path)
    if isinstance(ds, datasets.DatasetDict):
        raise PredictionsError(f"{path}: a DatasetDict; save the split holding predictions")
    col = next((c for c in IMAGE_COLUMNS if c in ds.column_names), None)
    if "id" not in ds.column_names or col is None:
        raise PredictionsError(f"{path}: needs an 'id' column and an image column named one of "
                               f"{', '.join(IMAGE_COLUMNS)}; found {', '.join(ds.column_names)}")
    ds = ds.cast_column(col, datasets.Image(decode=False))
    ids = [str(i) for i in ds["id"]]
    names, dups = _group([(pair_id, shown(f"{path} row {i} (id {pair_id})")) for i, pair_id in enumerate(ids)])
    row = {shown(pair_id): i for i, pair_id in enumerate(ids)}
    return Predictions(path, "dataset", names, dups,
                       lambda pair_id: _image_bytes(ds[row[pair_id]][col], names[pair_id]))


def open_predictions(path: str, max_unzipped: int = MAX_UNZIPPED_BYTES) -> Predictions:
    """Open predictions at ``path``: a folder of images, a .zip, Parquet file(s), or a saved dataset."""
    if not os.path.exists(path):
        raise PredictionsError(f"{path}: no such file or folder")
    if os.path.isfile(path):
        if zipfile.is_zipfile(path):
            preds = _zip(path, max_unzipped)
        elif path.endswith(".parquet"):
            preds = _parquet(path)
        else:
            raise PredictionsError(f"{path}: expected a folder, a .zip or a .parquet file")
    elif os.path.isfile(os.path.join(path, "state.json")) or os.path.isfile(os.path.join(path, "dataset_dict.json")):
        preds = _saved_dataset(path)
    elif glob.glob(os.path.join(glob.escape(path), "**", "*.parquet"), recursive=True):
        preds = _parquet(path)
    else:
        preds = _folder(path)
    if not preds.names and not preds.duplicates:
        raise PredictionsError(f"{path}: no prediction images found "
                               f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return preds
