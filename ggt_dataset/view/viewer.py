"""What the page asks for, answered as plain data: the viewer without the web server.

``Viewer.open`` indexes the dataset and joins the submissions (models' outputs and
scores, see ``view.submissions``) once; then ``info``, ``rows``, ``pair`` and ``image``
answer each request from the index and the row groups they need.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, SupportsFloat

import numpy as np
import pyarrow as pa

from ..errors import GGTError
from . import query as q
from . import thumbs
from .index import LRU, PairIndex, build_index
from .overlays import Report
from .source import open_source
from .submissions import Comparison, Submission, comparisons, open_submissions
from .thumb_cache import ThumbCache

THUMB_CACHE_BYTES = 32 << 20


class NotFound(GGTError):
    """No such pair, or no such image for it."""


class Unreadable(GGTError):
    """A model's output that cannot be read (a Parquet row without bytes, a file gone since start)."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _clean(value: Any) -> Any:
    """JSON has no NaN or inf: they become null, at any depth (qc_scores is a list of dicts)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _version(index: PairIndex, subs: list[Submission]) -> str:
    """Changes when what the server shows changes: image URLs carry it, so a browser's cache
    never shows a previous run's outputs after a restart on the same port."""
    h = hashlib.sha256()
    overlays = [p for s in subs for p in (s.outputs and s.outputs.predictions.source, s.report and s.report.path) if p]
    for path in [s.path for s in index.source.shards] + overlays:
        try:
            st = os.stat(path)
            h.update(f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:                  # a Hub path: its name and the index's size stand for it
            h.update(f"{path}\n".encode())
    h.update(str(index.num_rows).encode())
    return h.hexdigest()[:16]


def _listed(value: str | list[str] | None) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _number(v: SupportsFloat) -> float | int | None:
    """Whole numbers as ints; float32 as its shortest decimal (23.8016, not 23.801599502563477)."""
    f = float(v)
    if not math.isfinite(f):
        return None
    return int(f) if f.is_integer() and abs(f) < 2**53 else float(str(v))


@dataclass
class Viewer:
    index: PairIndex
    subs: list[Submission] = field(default_factory=list)      # shown between LQ and HQ, in this order
    version: str = "0"
    disk: ThumbCache | None = None       # thumbnails kept between runs, by image content
    log: Callable[[str], None] = field(default=_stderr, repr=False)

    def __post_init__(self) -> None:
        self.selections = q.Selections(self.index)
        self._thumbs = LRU(THUMB_CACHE_BYTES, len)
        self.comparisons: list[Comparison] = comparisons(self.index, self.subs)

    @classmethod
    def open(cls, target: str, predictions: str | list[str] | None = None, report: str | list[str] | None = None,
             revision: str | None = None, split: str | None = None, log=None, submissions: str | None = None,
             models: list[str] | None = None) -> Viewer:
        """Index ``target`` and join the submissions: ``predictions`` and ``report`` (one or a list of
        each, paired in order), then the records of the results repo ``submissions`` (only ``models``',
        when given). Outputs are matched in ``split`` (default: each one's report's, else test)."""
        log = log or _stderr
        index = build_index(open_source(target, revision))
        subs = open_submissions(index, _listed(predictions), _listed(report), submissions, models, split, log)
        viewer = cls(index, subs, _version(index, subs), log=log)
        viewer.rows(viewer.start())      # the first view, ready before the first visitor asks
        for sub in subs:                 # and each metric's worst-first order
            for name in sub.columns.values():
                better = index.columns[name].better
                if better:
                    viewer.selections.order(name if better == "higher" else f"-{name}")
        return viewer

    @property
    def scored(self) -> list[tuple[Submission, Report]]:
        return [(s, s.report) for s in self.subs if s.report]

    def roles(self, row: int | None = None) -> list[str]:
        """The images the page shows, in order: LQ, each submission's output (those for ``row``), HQ."""
        return ["lq", *(s.role for s in self.subs if s.outputs and (row is None or row in s.outputs.rows)), "hq"]

    def start(self) -> dict[str, Any]:
        """The view a page opens on when its URL names none: with scores, the split they cover and,
        for two or more submissions, the pairs where the first beats the second most; for one,
        worst first by its first metric with a direction (what a first look is for)."""
        if not self.scored:
            return {}
        first, report = self.scored[0]
        view: dict[str, Any] = {"split": [report.split]}
        if self.comparisons:
            view["sort"] = f"-{self.comparisons[0].name}"
            return view
        better = [(n, self.index.columns[n].better) for n in first.columns.values() if self.index.columns[n].better]
        if better:
            name, direction = better[0]
            view["sort"] = name if direction == "higher" else f"-{name}"      # ascending PSNR: worst first
        return view

    # -- answers -------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {"name": self.index.source.name, "rows": self.index.num_rows,
                "columns": [c.describe() for c in self.index.columns.values()],
                "roles": self.roles(), "submissions": [s.describe() for s in self.subs],
                "comparisons": [c.describe() for c in self.comparisons],
                "start": self.start(), "per_page": q.PER_PAGE, "version": self.version}

    def _values(self, row: int, derived: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        """The row's index values by column name, and those of the ``derived`` columns asked for."""
        out = {}
        for name, col in self.index.columns.items():
            v = col.values[row]
            out[name] = _number(v) if col.labels is None else (col.labels[v] if v >= 0 else None)
        for name in derived:
            made = self.index.column(name)
            assert made is not None             # rows() asks only for the index's derived columns
            out[name] = _number(made.values[row])
        return out

    def rows(self, params: q.Params) -> dict[str, Any]:
        """One page of the query's rows: keys and index values only, so no shard is read."""
        query = q.parse(params, self.index)
        page, per = q.page_of(params)
        rows = self.selections.rows(query)
        pages = max(1, -(-rows.size // per))
        page = min(page, pages)
        chosen = rows[(page - 1) * per: page * per]
        keys = self.index.keys(int(r) for r in chosen)
        sort = query.sort.removeprefix("-")
        derived = [sort] if sort in self.index.derived else []        # a comparison: the cards show it
        return {"total": int(rows.size), "page": page, "per": per, "pages": pages, "query": q.describe(query),
                "rows": [{"key": k, "id": k.split(":", 1)[1], "values": self._values(int(r), derived)}
                         for k, r in zip(keys, chosen)]}

    def _row(self, key: str) -> int:
        row = self.index.find(key)
        if row is None:
            raise NotFound(f"no pair {key!r} in {self.index.source.name} (a pair is split:id, e.g. test:rain/0001)")
        return row

    def pair(self, key: str, params: q.Params) -> dict[str, Any]:
        """One pair's stored metadata, index values, notes, images and neighbours in the query's order."""
        row = self._row(key)
        record = self.index.records([row])[0]
        rows = self.selections.rows(q.parse(params, self.index))
        at = np.flatnonzero(rows == row)
        pos = int(at[0]) if at.size else None
        neighbour = (lambda k: self.index.key_of(int(rows[k])) if pos is not None and 0 <= k < rows.size else None)
        values = self._values(row)
        # One row's margins from the scores themselves: no whole derived column made for a pair.
        values.update({c.name: _number(c.values(self.index, row)) for c in self.comparisons})
        notes = [(s.label, r.notes[row]) for s, r in self.scored if row in r.notes]
        roles = self.roles(row)
        return {"key": key, "id": record["id"], "record": _clean(record), "values": values,
                "note": "; ".join(n if len(self.subs) == 1 else f"{label}: {n}" for label, n in notes),
                "roles": roles, "sizes": {r: self._size(row, r) for r in roles[1:-1]},
                "position": pos, "total": int(rows.size),
                "prev": neighbour(pos - 1) if pos is not None else None,
                "next": neighbour(pos + 1) if pos is not None else None}

    def _size(self, row: int, role: str) -> list[int] | None:
        try:
            return list(thumbs.size(self._bytes(row, role)))
        except (thumbs.ImageDecodeError, Unreadable):      # the image request says why
            return None

    def image(self, key: str, role: str, size: str) -> tuple[bytes, str]:
        roles = self.roles()
        if role not in roles or size not in ("thumb", "full"):
            raise NotFound(f"no image {role!r}/{size!r}; roles are {', '.join(roles)}, sizes thumb and full")
        row = self._row(key)
        if size == "thumb":
            return self._thumbs.get((row, role), lambda: self._thumbnail(row, role)), "image/jpeg"
        return thumbs.full(self._bytes(row, role))

    def _thumbnail(self, row: int, role: str) -> bytes:
        """From the disk cache when it has this image's content; made (and kept there) otherwise."""
        data = self._bytes(row, role)
        if self.disk is None:
            return thumbs.thumbnail(data)
        # Keyed by the bytes actually read, not the stored lq_/hq_sha256: a dataset's metadata
        # (a Hub repo's, an edited shard's) may name another image, and the cache is shared by
        # every dataset. Hashing costs ~2 ms per MB; decoding is what a hit saves.
        return self.disk.get_or_make(hashlib.sha256(data).hexdigest(), lambda: thumbs.thumbnail(data))

    def _bytes(self, row: int, role: str) -> bytes:
        if role in ("lq", "hq"):
            return self.index.image(row, role)
        sub = next(s for s in self.subs if s.role == role)        # image() checked the role
        key = self.index.key_of(row)
        try:
            data = sub.outputs.read(row) if sub.outputs else None
        except (GGTError, OSError, pa.ArrowException) as e:
            # The reason names the file: it goes to the server's log, never to the page.
            self.log(f"ggt view: {sub.label}'s output for {key} cannot be read: {e}")
            raise Unreadable(f"the output for {key!r} cannot be read; the server's log says why") from None
        if data is None:
            raise NotFound(f"no prediction for {key!r}" + (f" from {sub.label}" if sub.tag else ""))
        return data

    def private_paths(self) -> list[str]:
        """Local folders behind what is served, longest first: no HTTP answer may show them (see ``public``)."""
        local = [os.path.dirname(os.path.dirname(os.path.dirname(s.path)))      # <root>/data/<category>/<shard>
                 for s in self.index.source.shards] if self.index.source.fs is None else []
        local += [p for s in self.subs for p in (s.outputs and s.outputs.predictions.source,
                                                  s.report and os.path.dirname(s.report.path)) if p]
        local += [self.disk.root] if self.disk else []
        paths = {v for p in local for v in (p, os.path.abspath(p), os.path.realpath(p))}
        return sorted((p for p in paths if len(p) > 1), key=len, reverse=True)

    def public(self, message: str) -> str:
        """``message`` with each local folder shown by its name alone, and the home folder as ~."""
        for path in self.private_paths():
            message = message.replace(path, os.path.basename(os.path.normpath(path)))
        home = os.path.expanduser("~")
        return message.replace(home, "~") if len(home) > 1 else message
