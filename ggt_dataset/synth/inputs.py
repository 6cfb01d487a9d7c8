"""LQ_DIR -> journal rows: which photos to restore, their split, category and pair id.

LQ_DIR may be organised by folders or flat. For each image (any depth, hidden files
skipped, sorted), folder names are read as ``ggt build`` reads a raw tree:

* a folder naming a category (``rain``, ``Low-Light``, ``fog``, ...) sets the category;
* otherwise ``--category NAME`` sets it; with ``--category auto`` (the default) the
  heuristic analyser decides from the pixels (low_light, haze, old_photo or mixed;
  it cannot tell rain or snow, so put those in a folder or name them);
* a folder naming a split sets the split, else ``--split``; with ``--split auto`` (the
  default) LQ_DIR's own path names it when LQ_DIR is a split or role folder inside one
  (``sample-raw/test/LQ`` is test), else train;
* role folders (``LQ``, ``input``) are allowed and ignored.

The pair id is ``<category>/<name>``, name being the path below the recognised folders
without extension, as in a raw release. Two files with one id, an unreadable or
corrupt image (each new photo is decoded once at scan, as the pipeline will), an image smaller than :data:`MIN_SIDE` (32 px) on a side (QC's 32- and
64-px comparisons and the providers need at least that much picture), or a path that
names two categories, are bad inputs: all are listed at
once and nothing is sent, unless ``--skip-bad`` leaves them out (listed in the report).
A later run adds new files. A file already in the journal is read again only when its
size, inode or ctime changed (an edit in place or a replacement changes one of them); if
its sha256 then differs from the journal's, the pair is synthesised again from the new
photo (its old answer no longer matches it), and the run reports it under
``changed_inputs``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator

import numpy as np

from ..errors import BadIdError, BadPairError, GGTError
from ..ids import validate_id
from ..schema import CATEGORIES, SPLITS, normalize_category, normalize_split
from .journal import Journal

MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg", "WEBP": "image/webp",
        "BMP": "image/bmp", "TIFF": "image/tiff"}


MIN_SIDE = 32     # px, both sides: fidelity compares at 32/64 px; smaller is not a photo to restore
SCAN_THREADS = min(8, os.cpu_count() or 1)      # new photos read and decoded at once during a scan


class InputError(GGTError):
    """LQ_DIR or the options that describe it cannot be used."""


def check_options(split: str | None, category: str | None) -> tuple[str | None, str | None]:
    """The split and category options, normalised; None for ``auto`` (decided per photo / per LQ_DIR)."""
    if split not in (None, "auto") and normalize_split(split) is None:
        raise InputError(f"--split {split!r} is not one of {list(SPLITS)} or 'auto'")
    if category not in (None, "auto") and normalize_category(category) is None:
        raise InputError(f"--category {category!r} is not one of {list(CATEGORIES)} or 'auto'")
    return (None if split in (None, "auto") else normalize_split(split),
            None if category in (None, "auto") else normalize_category(category))


def split_of(lq_dir: str) -> str:
    """The split LQ_DIR's own path names (``.../test/LQ``: test), else train. Only LQ_DIR and the
    role or split folders right above it count, so ``/home/test/photos`` stays train."""
    from ..schema import normalize_role

    for part in reversed(os.path.abspath(lq_dir).split(os.sep)):
        split = normalize_split(part)
        if split:
            return split
        if not normalize_role(part):
            break
    return "train"


def decode_rgb(data: bytes, name: str) -> np.ndarray:
    """8-bit RGB by the evaluation suite's rules (EXIF applied, 16-bit scaled down)."""
    from ..eval.decode import decode_rgb8

    return decode_rgb8(data, name)


def mime_of(data: bytes) -> str:
    from PIL import Image

    return MIME.get(Image.open(io.BytesIO(data)).format or "", "application/octet-stream")


def _row(lq_dir: str, rel: str, split: str, category: str | None) -> dict:
    from ..images import read_image
    from ..raw_folders import locate

    loc = locate(rel, split=split)
    path = os.path.join(lq_dir, rel)
    cat, source = (loc.category, "folder") if loc.category else (category, "option")
    stat = stat_key(path)      # before reading: a later edit changes it
    # Every new photo is decoded once here, as the pipeline will decode it: a header that promises
    # more pixels than the data holds (9000x9000 over a tiny IDAT) passes the header and CRC checks
    # but would fail on every run. Pillow's plain decode (2-3x cheaper than decode_rgb's conversions),
    # unless the analyser decodes it anyway.
    record = read_image(path, shown_as=path, decode=cat is not None)
    if min(record.width, record.height) < MIN_SIDE:
        raise BadPairError(path, f"is {record.width}x{record.height} px; ggt synth needs at "
                           f"least {MIN_SIDE} px on each side")
    meta = None
    if cat is None:
        from dataclasses import asdict

        from .prompts import analyse

        try:
            rgb = decode_rgb(record.data, rel)
        except GGTError as e:
            raise BadPairError(path, f"does not decode: {str(e).removeprefix(rel + ': ')}") from None
        analysis = analyse(rgb)
        cat, source = analysis.category(), "analyser"
        meta = json.dumps({"analysis": asdict(analysis)})   # the adaptive prompter reuses it
    pair_id = f"{cat}/{loc.name}"
    try:        # a name with a backslash or a control character makes an id no release folder holds safely
        validate_id(pair_id, "its pair")
    except BadIdError as e:
        raise BadPairError(os.path.join(lq_dir, rel), f"{e}; rename the file") from None
    return {"key": rel, "id": pair_id, "split": loc.split, "category": cat,
            "category_from": source, "name": loc.name, "lq_sha256": record.sha256,
            "lq_width": record.width, "lq_height": record.height, "prompt_meta": meta, "lq_stat": stat}


def stat_key(path: str) -> str:
    """What changes when a file is edited in place or replaced: size, inode, ctime (which no tool can set)."""
    st = os.stat(path)
    return f"{st.st_size}:{st.st_ino}:{st.st_ctime_ns}"


def _changed(journal: Journal, lq_dir: str, known: dict) -> bool:
    """Whether a journalled photo's bytes changed; an unchanged one gets its new stat recorded."""
    from ..hashing import file_sha256

    path = os.path.join(lq_dir, known["key"])
    try:
        stat = stat_key(path)
        if stat == known["lq_stat"]:
            return False
        if file_sha256(path) != known["lq_sha256"]:
            return True
    except OSError:
        return False            # unreadable now: the pipeline's own read names the file
    journal.set_stat(known["key"], stat)
    return False


def _is_new(journal: Journal, lq_dir: str, rel: str, changed: list[str]) -> bool:
    known = journal.pair(rel)
    if known is None:
        return True
    if not _changed(journal, lq_dir, known):
        return False
    journal.forget_pair(rel)
    changed.append(rel)
    return True


def _try_row(lq_dir: str, rel: str, split: str, category: str | None) -> dict | BadPairError:
    try:
        return _row(lq_dir, rel, split, category)
    except BadPairError as e:
        return e
    except GGTError as e:
        return BadPairError(rel, str(e))


def _new_rows(journal: Journal, lq_dir: str, images: list[str], split: str, category: str | None,
              problems: list[BadPairError], changed: list[str]) -> Iterator[dict]:
    """Rows for the new photos, in ``images``' order. The journal is read on this thread only;
    reading and decoding (Pillow and numpy release the GIL) run on SCAN_THREADS threads."""
    from concurrent.futures import ThreadPoolExecutor
    from itertools import islice

    todo = (rel for rel in images if _is_new(journal, lq_dir, rel, changed))
    with ThreadPoolExecutor(SCAN_THREADS, thread_name_prefix="ggt-scan") as pool:
        while chunk := list(islice(todo, 4 * SCAN_THREADS)):       # bounded: memory does not grow with N
            for result in pool.map(lambda rel: _try_row(lq_dir, rel, split, category), chunk):
                if isinstance(result, BadPairError):
                    problems.append(result)
                else:
                    yield result


def scan(journal: Journal, lq_dir: str, *, split: str | None = "auto", category: str | None = None,
         skip_bad: bool = False, batch: int = 500, changed: list[str] | None = None) -> list[BadPairError]:
    """Add LQ_DIR's new (and changed) images to the journal (one transaction); returns the skipped bad
    inputs. ``changed`` receives the keys of journalled photos whose bytes changed (re-synthesised)."""
    from ..raw_folders import walk_images

    if not os.path.isdir(lq_dir):
        raise InputError(f"{lq_dir}: not a folder of LQ images")
    split, category = check_options(split, category)
    split = split or split_of(lq_dir)
    images, _ = walk_images(lq_dir)
    if not images:
        raise InputError(f"{lq_dir}: no images (expected {', '.join(sorted(MIME))} files, any depth)")
    problems: list[BadPairError] = []
    changed = [] if changed is None else changed
    with journal.transaction():
        pending: list[dict] = []
        for row in _new_rows(journal, lq_dir, images, split, category, problems, changed):
            pending.append(row)
            if len(pending) >= batch:
                _insert(journal, pending, problems)
                pending = []
        _insert(journal, pending, problems)
        if problems and not skip_bad:
            raise InputError(f"{len(problems)} bad input(s) in {lq_dir}; nothing was sent:\n  "
                             + "\n  ".join(str(p) for p in problems[:20])
                             + ("\n  ..." if len(problems) > 20 else "")
                             + "\nfix or remove them, or pass --skip-bad to leave them out")
    return problems


def _insert(journal: Journal, rows: list[dict], problems: list[BadPairError]) -> None:
    for r in rows:
        if not journal.add_pair(r):
            other = journal.pair_by_id(r["split"], r["id"])
            problems.append(BadPairError(r["key"], f"has the same pair id {r['id']!r} as "
                                         f"{other['key'] if other else 'another file'}; rename one"))
