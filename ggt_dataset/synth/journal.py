"""The synthesis journal: one SQLite file that makes a 100K-image run resumable and auditable.

Tables:
  pairs   one row per LQ image: where it is, its split and category, its state
          (pending, accepted, rejected, review, refused, failed), prompt, generator,
          HQ file and every QC stage's record.
  calls   one row per request attempt to a paid service (kind ``prompt``, ``edit``
          or ``judge``): the request (no image bytes), the response facts, cost,
          HTTP status, retry delay, and for edits the file the image was saved to.
  meta    the run's settings, for the report.

"Already paid" means: a ``calls`` row with the same ``fingerprint`` (a hash of the
kind, provider, model, the LQ bytes' hash and the prompt or instruction) whose
status is ``ok`` or ``refused``. Such a call is never sent again; its saved
result is reused. A row still ``sent`` when a run starts was cut off by a kill:
it becomes ``lost`` (the provider may have billed it, so the budget counts it at
the highest cost seen for that kind) and the call is sent again.

The database runs in WAL mode with ``synchronous=NORMAL``: a killed process
(even ``kill -9``) loses nothing committed; a power cut may lose the last
transactions, and then those calls are sent again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import GGTError

PAID = ("ok", "refused")          # a call that reached the provider and answered
STATES = ("pending", "accepted", "rejected", "review", "refused", "failed")
FINAL = ("accepted", "rejected", "refused")   # not reprocessed by a later run

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (
  key TEXT PRIMARY KEY,            -- LQ path relative to LQ_DIR, POSIX
  id TEXT NOT NULL,                -- <category>/<name>, the pair id in the release
  split TEXT NOT NULL, category TEXT, category_from TEXT NOT NULL,
  name TEXT NOT NULL, lq_sha256 TEXT NOT NULL, lq_width INTEGER, lq_height INTEGER,
  state TEXT NOT NULL DEFAULT 'pending',
  prompt TEXT, prompt_meta TEXT, generator TEXT, hq_file TEXT, hq_sha256 TEXT,
  qc TEXT, reason TEXT, decided_by TEXT, updated REAL,
  UNIQUE (split, id)
);
CREATE TABLE IF NOT EXISTS calls (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL, kind TEXT NOT NULL, fingerprint TEXT NOT NULL, attempt INTEGER NOT NULL,
  status TEXT NOT NULL,            -- sent, ok, refused, transient, error, lost
  provider TEXT, model TEXT, started REAL NOT NULL, ended REAL,
  http_status INTEGER, retry_after REAL,
  cost REAL NOT NULL DEFAULT 0, currency TEXT, cost_estimated INTEGER NOT NULL DEFAULT 0,
  detail TEXT, request TEXT, response TEXT, result_file TEXT, result_sha256 TEXT
);
CREATE INDEX IF NOT EXISTS calls_fingerprint ON calls (fingerprint, status);
CREATE INDEX IF NOT EXISTS calls_key ON calls (key, kind);
CREATE INDEX IF NOT EXISTS pairs_state ON pairs (state, key);
"""


class JournalError(GGTError):
    """The journal cannot be opened or does not belong to this run."""


def fingerprint(*parts: Any) -> str:
    """The identity of a paid request: same fingerprint, same answer, never paid twice."""
    body = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class PaidCall:
    id: int
    status: str
    model: str
    cost: float
    currency: str
    detail: str
    response: dict
    result_file: str | None
    result_sha256: str | None


class Journal:
    """One connection per process (and per Ray actor); every write is its own transaction."""

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        try:
            self.db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise JournalError(f"{path}: not a usable synthesis journal ({e}); move it away to "
                               "start over") from None

    def close(self) -> None:
        self.db.close()

    # -- run settings -----------------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # -- pairs ------------------------------------------------------------------------
    def pair(self, key: str) -> dict | None:
        cur = self.db.execute("SELECT * FROM pairs WHERE key=?", (key,))
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else None

    def update_pair(self, key: str, **values: Any) -> None:
        values = {k: json.dumps(v) if k in ("qc", "prompt_meta") and v is not None else v
                  for k, v in values.items()}
        sets = ", ".join(f"{k}=?" for k in values)
        self.db.execute(f"UPDATE pairs SET {sets}, updated=? WHERE key=?",
                        (*values.values(), time.time(), key))

    def keys(self, states: tuple[str, ...], page: int = 500) -> Iterator[str]:
        """Keys in ``states``, sorted, read a page at a time (memory does not grow with N)."""
        last = ""
        marks = ",".join("?" * len(states))
        while True:
            rows = self.db.execute(f"SELECT key FROM pairs WHERE state IN ({marks}) AND key > ? "
                                   "ORDER BY key LIMIT ?", (*states, last, page)).fetchall()
            if not rows:
                return
            for (key,) in rows:
                yield key
            last = rows[-1][0]

    def rows(self, states: tuple[str, ...], page: int = 500) -> Iterator[dict]:
        for key in self.keys(states, page):
            yield self.pair(key)

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT state, COUNT(*) FROM pairs GROUP BY state").fetchall())

    # -- calls ------------------------------------------------------------------------
    def paid(self, fp: str) -> PaidCall | None:
        row = self.db.execute(
            "SELECT id, status, model, cost, currency, detail, response, result_file, result_sha256 "
            "FROM calls WHERE fingerprint=? AND status IN ('ok','refused') ORDER BY id DESC LIMIT 1",
            (fp,)).fetchone()
        if not row:
            return None
        return PaidCall(row[0], row[1], row[2] or "", row[3], row[4] or "", row[5] or "",
                        json.loads(row[6] or "{}"), row[7], row[8])

    def attempts(self, fp: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM calls WHERE fingerprint=?", (fp,)).fetchone()[0]

    def start_call(self, key: str, kind: str, fp: str, attempt: int, provider: str, model: str,
                   request: dict) -> int:
        """Committed *before* the request leaves, so a kill mid-call is visible afterwards."""
        cur = self.db.execute(
            "INSERT INTO calls (key, kind, fingerprint, attempt, status, provider, model, started, request) "
            "VALUES (?, ?, ?, ?, 'sent', ?, ?, ?, ?)",
            (key, kind, fp, attempt, provider, model, time.time(), json.dumps(request, default=str)))
        return int(cur.lastrowid)

    def end_call(self, call_id: int, status: str, **values: Any) -> None:
        if "response" in values:
            values["response"] = json.dumps(values["response"], default=str)
        values.update(status=status, ended=time.time())
        sets = ", ".join(f"{k}=?" for k in values)
        self.db.execute(f"UPDATE calls SET {sets} WHERE id=?", (*values.values(), call_id))

    def mark_lost(self) -> int:
        """Calls cut off by a kill: outcome unknown, possibly billed; they will be sent again."""
        cur = self.db.execute("UPDATE calls SET status='lost', detail='cut off: the run was killed "
                              "while this request was in flight', ended=started WHERE status='sent'")
        return cur.rowcount

    def spent(self, currency: str) -> float:
        """Money spent in ``currency``; a lost call counts at the highest cost seen for its kind."""
        paid = self.db.execute("SELECT COALESCE(SUM(cost), 0) FROM calls WHERE currency=? AND "
                               "status IN ('ok','refused','transient','error')", (currency,)).fetchone()[0]
        lost = self.db.execute(
            "SELECT COALESCE(SUM(m), 0) FROM (SELECT l.kind, (SELECT MAX(cost) FROM calls c WHERE "
            "c.kind=l.kind AND c.currency=?) * COUNT(*) AS m FROM calls l WHERE l.status='lost' "
            "GROUP BY l.kind)", (currency,)).fetchone()[0]
        return float(paid) + float(lost or 0)

    def max_cost(self, kind: str) -> float:
        return float(self.db.execute("SELECT COALESCE(MAX(cost), 0) FROM calls WHERE kind=?",
                                     (kind,)).fetchone()[0])

    def call_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for kind, status, n in self.db.execute("SELECT kind, status, COUNT(*) FROM calls GROUP BY kind, status"):
            out.setdefault(kind, {})[status] = n
        return out

    def sends_by_key(self, kind: str = "edit") -> dict[str, int]:
        """How many times each LQ image was sent for ``kind`` (lost calls included)."""
        return dict(self.db.execute("SELECT key, COUNT(*) FROM calls WHERE kind=? AND status != "
                                    "'skipped' GROUP BY key", (kind,)).fetchall())
