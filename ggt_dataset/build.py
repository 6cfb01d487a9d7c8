"""``ggt build``: a raw release in, a Hub-ready dataset repo out, in the layout that
:mod:`ggt_dataset.layout` defines (card, manifest, ``data/<category>/`` shards, resume state).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from tqdm.auto import tqdm

from . import card, manifest
from .atomic import TMP_NAME, publish_file, write_json, write_text
from .build_report import BuildReport
from .errors import BadPairError, BuildError
from .hashing import file_sha256
from .layout import CARD_FILE, DATA_DIR, MANIFEST_FILE, STATE_DIR
from .leakage import find_duplicates
from .locks import exclusive
from .plan import BuildOptions, PlannedShard, plan_shards, stat_pairs
from .raw_release import RawRelease
from .raw_scan import scan
from .shards import ShardResult, load_pairs, write_shard

SOURCE_FILE = "source.json"  # in STATE_DIR: the real path of the raw release built here
MAX_PROBLEMS_SHOWN = 20
ON_BAD_PAIRS = ("error", "skip")  # refuse the build, or leave bad pairs out and record them


DEFAULT_OPTIONS = BuildOptions()   # frozen, so one shared default is safe


def build(raw: str, out: str = "ggt-100k", *, options: BuildOptions = DEFAULT_OPTIONS,
          on_bad_pairs: str = "error", layout: str = "auto", split: str | None = None,
          category: str | None = None, workers: int | None = None,
          progress: bool = True, overwrite: bool = False) -> BuildReport:
    """Package the raw release at ``raw`` into ``out``; resume where an earlier run stopped.

    Args:
        raw: raw release folder or manifest file (see :func:`ggt_dataset.raw_scan.scan`).
        out: output folder; created, or resumed if it holds an earlier ggt build.
        options: shard and row-group sizes, image checks.
        on_bad_pairs: ``error`` (refuse the build) or ``skip`` (leave the pair out and
            record it in the manifest's ``skipped`` list).
        overwrite: replace a build of another raw release in ``out`` (else refused).
    """
    if on_bad_pairs not in ON_BAD_PAIRS:
        raise BuildError(f"on_bad_pairs must be one of {list(ON_BAD_PAIRS)}, got {on_bad_pairs!r}")
    skip_bad = on_bad_pairs == "skip"
    release = scan(raw, layout=layout, split=split, category=category)
    if release.problems and not skip_bad:
        raise BuildError(_problems_message(release))
    skipped = [{"id": e.pair_id or "", "path": e.path, "reason": e.reason} for e in release.problems]
    if not release.pairs:
        raise BuildError(f"{raw}: no usable pairs ({len(release.problems)} problems)")
    _claim(out, raw, release.root)
    with _exclusive(out):
        _check_source(out, raw, overwrite)
        _remove_leftovers(out)
        return _build_locked(release, out, options, skip_bad, skipped, workers, progress)


@contextlib.contextmanager
def _exclusive(out: str) -> Iterator[None]:
    """One build per OUT at a time; the kernel drops the lock if the process dies (kill -9 included)."""
    with exclusive(os.path.join(out, STATE_DIR, "lock"),
                   lambda pid: BuildError(f"{out}: another `ggt build` is writing here; wait for it or stop it")):
        yield


def _build_locked(release: RawRelease, out: str, options: BuildOptions, skip_bad: bool,
                  skipped: list[dict[str, str]], workers: int | None, progress: bool) -> BuildReport:
    shards = plan_shards(stat_pairs(release), options)
    results, reused = _write_all(release, shards, out, options, skip_bad, workers, progress)
    _remove_stale(out, {s.path for s in shards})
    skipped += [s for r in results for s in r.skipped]
    report = BuildReport(out, results, reused, release, skipped)
    data = manifest.make(report, options)
    data["duplicates"] = find_duplicates(out, data["shards"])
    write_text(os.path.join(out, CARD_FILE), card.render(data, repo=os.path.basename(os.path.abspath(out))))
    write_json(os.path.join(out, MANIFEST_FILE), data)
    shutil.rmtree(os.path.join(out, STATE_DIR, "tmp"), ignore_errors=True)
    return report


def _problems_message(release: RawRelease) -> str:
    shown = "\n".join(f"  {e}" for e in release.problems[:MAX_PROBLEMS_SHOWN])
    more = len(release.problems) - MAX_PROBLEMS_SHOWN
    return (f"{release.root}: {len(release.problems)} bad pair(s); nothing was written.\n{shown}"
            + (f"\n  ... and {more} more" if more > 0 else "")
            + "\nFix them, or pass --skip-bad to leave them out (they are recorded in the manifest).")


def _claim(out: str, raw: str, root: str) -> None:
    """Refuse to write into a folder that holds anything but an earlier ggt build, or that
    overlaps the raw release (real paths: a symlink must not hide it)."""
    real_out, real_root = os.path.realpath(out), os.path.realpath(root)
    if real_out in (real_root, os.path.realpath(raw)):
        raise BuildError(f"{out}: the output folder must differ from the raw release")
    if _inside(real_out, real_root):
        raise BuildError(f"{out}: inside the raw release {root} (as {real_out}); its files would be "
                         "read as raw files on the next run. Choose an output folder outside it")
    if _inside(real_root, real_out):
        raise BuildError(f"{raw}: inside the output folder {out}; choose an output folder outside "
                         "the raw release")
    if os.path.isdir(out) and os.listdir(out) and not os.path.isdir(os.path.join(out, STATE_DIR)):
        raise BuildError(f"{out}: exists and is not a ggt build; choose an empty or new folder")
    if os.path.exists(out) and not os.path.isdir(out):
        raise BuildError(f"{out}: exists and is not a folder")
    os.makedirs(os.path.join(out, STATE_DIR, "tmp"), exist_ok=True)


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _check_source(out: str, raw: str, overwrite: bool) -> None:
    """A re-run resumes or updates the build of the same raw release; a build of another
    one is replaced only with ``overwrite`` (a build from before this record is taken as ours)."""
    path, real_raw = os.path.join(out, STATE_DIR, SOURCE_FILE), os.path.realpath(raw)
    try:
        with open(path, encoding="utf-8") as f:
            before = json.load(f)["raw"]
    except (OSError, ValueError, KeyError, TypeError):
        before = None
    if before not in (None, real_raw) and not overwrite:
        raise BuildError(f"{out}: holds a build of {before}, not of {real_raw}; pass --overwrite "
                         "to replace it (shards whose input did not change are kept)")
    write_json(path, {"raw": real_raw})


def _remove_leftovers(out: str) -> None:
    """Temporary files of a killed run: atomic writes' *.tmp-PID-TID and unfinished shards."""
    for dirpath, _dirs, files in os.walk(out):
        for fn in files:
            if TMP_NAME.search(fn):
                os.remove(os.path.join(dirpath, fn))
    shutil.rmtree(os.path.join(out, STATE_DIR, "tmp"), ignore_errors=True)
    os.makedirs(os.path.join(out, STATE_DIR, "tmp"))


def _sidecar(out: str, shard: PlannedShard) -> str:
    return os.path.join(out, STATE_DIR, shard.path + ".json")


def _finished(out: str, shard: PlannedShard, skip_bad: bool) -> ShardResult | None:
    """The result of an earlier run's shard, if that shard is complete and still current.

    A shard reaches its final name only by an atomic rename after its record was
    written, so a final file whose size and mtime match its record is that complete
    shard; re-hashing hundreds of GB on every resume would buy nothing (and
    `ggt verify` hashes everything). Any mismatch means: write it again.
    """
    final, side = os.path.join(out, shard.path), _sidecar(out, shard)
    try:
        with open(side, encoding="utf-8") as f:
            record = json.load(f)
        st = os.stat(final)
        stamp = record.pop("stamp")
        if record.pop("fingerprint") != shard.fingerprint or stamp != [st.st_size, st.st_mtime_ns]:
            return None
        if record["skipped"] and not skip_bad:
            return None  # built with --skip-bad; without it, the bad pair must stop the build
        # A record written before results carried split and category lacks them; the plan has them.
        return ShardResult(**{**record, "split": shard.split, "category": shard.category})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_all(release: RawRelease, shards: list[PlannedShard], out: str, options: BuildOptions,
               skip_bad: bool, workers: int | None, progress: bool) -> tuple[list[ShardResult], int]:
    done = {s.path: r for s in shards if (r := _finished(out, s, skip_bad)) is not None}
    todo = [s for s in shards if s.path not in done]
    if todo:  # the card and manifest of an earlier build no longer describe OUT
        if os.path.exists(os.path.join(out, MANIFEST_FILE)):
            os.remove(os.path.join(out, MANIFEST_FILE))
        # Until the build completes, a card that makes load_dataset(OUT) fail with a
        # message, instead of silently loading whichever shards are finished.
        write_text(os.path.join(out, CARD_FILE), card.incomplete())
    total = sum(len(s.pairs) for s in shards)
    bar = tqdm(total=total, initial=total - sum(len(s.pairs) for s in todo), unit="pair",
               desc="ggt build", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    # One thread per core: more only adds GIL hand-offs (measured: 4 threads on 2 cores
    # were 10-25% slower than 2, on small and large images alike).
    workers = workers or min(8, os.cpu_count() or 1)
    loaded = load_pairs(release.root, (pp for s in todo for pp in s.pairs), options, workers)
    # Hashing and publishing a finished shard overlaps with writing the next one.
    finisher = ThreadPoolExecutor(max_workers=1)
    finishing = []
    try:
        for shard in todo:
            tmp, result = _write_one(shard, loaded, out, skip_bad, bar)
            finishing.append(finisher.submit(_finish, shard, result, tmp, out))
    except BadPairError as e:
        raise BuildError(f"{e}\nThe build stopped here; finished shards are kept and a re-run "
                         "resumes. Fix the file, or pass --skip-bad to leave such pairs out.") from None
    finally:
        loaded.close()
        finisher.shutdown(wait=True)
        bar.close()
    for fut in finishing:
        result = fut.result()
        done[result.path] = result
    return [done[s.path] for s in shards], len(shards) - len(todo)


def _write_one(shard: PlannedShard, loaded: Iterator, out: str, skip_bad: bool, bar) -> tuple[str, ShardResult]:
    tmp = os.path.join(out, STATE_DIR, "tmp", shard.path.replace("/", "__") + ".partial")
    try:
        return tmp, write_shard(shard, loaded, tmp, skip_bad=skip_bad, on_row=lambda: bar.update(1))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _finish(shard: PlannedShard, result: ShardResult, tmp: str, out: str) -> ShardResult:
    result.sha256 = file_sha256(tmp)
    st = os.stat(tmp)  # rename keeps size and mtime: the stamp identifies the final file
    side = _sidecar(out, shard)
    os.makedirs(os.path.dirname(side), exist_ok=True)
    # Sidecar first, shard second: a shard under its final name always has its record.
    write_json(side, {"fingerprint": shard.fingerprint, "stamp": [st.st_size, st.st_mtime_ns],
                      **result.__dict__})
    publish_file(tmp, os.path.join(out, shard.path))
    return result


def _remove_stale(out: str, planned: set[str]) -> None:
    """Delete shards an earlier build of different input left behind (only files we name)."""
    data = os.path.join(out, DATA_DIR)
    for dirpath, _dirs, files in os.walk(data):
        for fn in files:
            rel = os.path.relpath(os.path.join(dirpath, fn), out).replace(os.sep, "/")
            if fn.endswith(".parquet") and rel not in planned:
                os.remove(os.path.join(out, rel))
                side = os.path.join(out, STATE_DIR, rel + ".json")
                if os.path.exists(side):
                    os.remove(side)
