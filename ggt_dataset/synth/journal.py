"""The synthesis journal: one SQLite file that makes a 100K-image run resumable and auditable.

Tables:
  pairs   one row per LQ image: where it is, its split and category, its state
          (pending, accepted, rejected, review, refused, failed), prompt, generator,
          HQ file and every QC stage's record.
  calls   one row per request attempt to a paid service (kind ``prompt``, ``edit``
          or ``judge``): the request (no image bytes), the response facts, cost,
          HTTP status, retry delay, and for edits the file the image was saved to.
  meta    the run's settings, for the report.

  ledger  money by (kind, currency), kept by triggers on ``calls`` in the same
          transaction as each call row: known costs, the highest cost seen, how many
          calls may have been billed at an unknown price, and what calls in flight
          have reserved. Budget checks read this (a few rows), never scan ``calls``.

"Already paid" means: a ``calls`` row with the same ``fingerprint`` (a hash of the
kind, provider, model, the LQ bytes' hash and the prompt or instruction) whose
status is ``ok`` or ``refused``. Such a call is never sent again; its saved
result is reused. A row still ``sent`` when a run starts was cut off by a kill:
if its result file was saved and decodes, it is promoted to ``ok`` (not paid
again); otherwise it becomes ``lost`` and the call is sent again.

Money (``spent``): known costs of answered calls, plus, at the highest cost seen
for that kind, every call that may have been billed without us learning the
price: ``lost`` calls and transient failures with no HTTP status (a timeout or a
dropped connection after the request left). A saved result whose file later
disappears is marked ``stale`` (its cost still counts) and the call is sent again.

One run at a time: :func:`run_lock` takes an exclusive ``flock`` on
``.ggt-synth/lock`` for the whole run; a second run on the same OUT_RAW is refused.

The database runs in WAL mode with ``synchronous=NORMAL``: a killed process
(even ``kill -9``) loses nothing committed; a power cut may lose the last
transactions, and then those calls are sent again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import GGTError
from .journal_schema import FILL_LEDGER, PAIR_COLUMNS, SCHEMA, TRIGGERS

# pairs.decided_by beside 'qc' and 'manual': a pair QC accepted that new QC settings flag for
# review stays accepted (a review never removes accepted work without a person's decision) and
# is listed in review.csv as KEPT; WAS_ACCEPTED marks it while its QC runs again.
KEPT = "qc-kept"
WAS_ACCEPTED = "qc-was-accepted"


class JournalError(GGTError):
    """The journal cannot be opened or does not belong to this run."""


def result_rel(fp: str) -> str:
    """Where a call's saved answer lives under the results folder (found again after a kill)."""
    return f"{fp[:2]}/{fp}"


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
            self.db.executescript(SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise JournalError(f"{path}: not a usable synthesis journal ({e}); move it away to "
                               "start over") from None

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction: committed at the end of the block, rolled back on any
        exception. IMMEDIATE takes the write lock first, so a check and the write it allows cannot
        interleave with another process (Ray actors share the file)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        """Journals made before the ledger: add the column, the triggers and fill the ledger once."""
        have = {r[1] for r in self.db.execute("PRAGMA table_info(pairs)")}
        for name, sql_type in PAIR_COLUMNS:
            if name not in have:
                with contextlib.suppress(sqlite3.OperationalError):     # another process added it meanwhile
                    self.db.execute(f"ALTER TABLE pairs ADD COLUMN {name} {sql_type}")
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(calls)")}
        def fresh() -> bool:
            return self.db.execute("SELECT 1 FROM sqlite_master WHERE name='ledger_insert'").fetchone() is None

        if not fresh():
            return
        with self.transaction():
            if not fresh():             # another process migrated it meanwhile
                return
            if "reserved" not in columns:
                self.db.execute("ALTER TABLE calls ADD COLUMN reserved REAL NOT NULL DEFAULT 0")
            for statement in TRIGGERS:
                self.db.execute(statement)
            self.db.execute("DELETE FROM ledger")
            self.db.execute(FILL_LEDGER)

    # -- run settings -----------------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # -- pairs ------------------------------------------------------------------------
    def pair(self, key: str) -> dict | None:
        return self._one("SELECT * FROM pairs WHERE key=?", (key,))

    def pair_by_id(self, split: str, pair_id: str) -> dict | None:
        return self._one("SELECT * FROM pairs WHERE split=? AND id=?", (split, pair_id))

    def _one(self, sql: str, params: tuple) -> dict | None:
        cur = self.db.execute(sql, params)
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else None

    def add_pair(self, row: dict) -> bool:
        """A new LQ photo, pending; False if another photo already has its (split, id)."""
        try:
            self.db.execute(
                "INSERT INTO pairs (key, id, split, category, category_from, name, lq_sha256, lq_width, "
                "lq_height, prompt_meta, lq_stat, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                (row["key"], row["id"], row["split"], row["category"], row["category_from"], row["name"],
                 row["lq_sha256"], row["lq_width"], row["lq_height"], row["prompt_meta"], row["lq_stat"]))
        except sqlite3.IntegrityError:
            return False
        return True

    def forget_pair(self, key: str) -> None:
        """A photo replaced under the same name: its answer and verdict were for the old bytes."""
        self.db.execute("DELETE FROM pairs WHERE key=?", (key,))

    def set_stat(self, key: str, stat: str) -> None:
        """The photo's bytes are unchanged; remember its new stat so the next scan skips the hash."""
        self.db.execute("UPDATE pairs SET lq_stat=? WHERE key=?", (stat, key))

    def update_pair(self, key: str, **values: Any) -> None:
        values = {k: json.dumps(v) if k in ("qc", "prompt_meta") and v is not None else v
                  for k, v in values.items()}
        sets = ", ".join(f"{k}=?" for k in values)
        self.db.execute(f"UPDATE pairs SET {sets}, updated=? WHERE key=?",
                        (*values.values(), time.time(), key))

    def set_released(self, key: str, lq_sha256: str) -> None:
        """The release now holds its own copy of this LQ (``updated`` untouched: not a decision)."""
        self.db.execute("UPDATE pairs SET lq_released=? WHERE key=?", (lq_sha256, key))

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
            yield self._listed(key)

    def _listed(self, key: str) -> dict:
        """The row of a key just listed from ``pairs``: still there, as only a run's scan removes pairs,
        before the run reads any (and one run at a time holds OUT_RAW's lock)."""
        row = self.pair(key)
        assert row is not None, key
        return row

    def accepted(self, page: int = 500) -> Iterator[dict]:
        """Accepted pairs by split and id (the manifest's order), read a page at a time."""
        last = ("", "")
        while True:
            cur = self.db.execute("SELECT * FROM pairs WHERE state='accepted' AND (split, id) > (?, ?) "
                                  "ORDER BY split, id LIMIT ?", (*last, page))
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
            if not rows:
                return
            yield from rows
            last = (rows[-1]["split"], rows[-1]["id"])

    def kept(self) -> Iterator[dict]:
        """Accepted pairs that later QC flagged for review: in the release until a person rejects them."""
        keys = [k for (k,) in self.db.execute("SELECT key FROM pairs WHERE state='accepted' AND decided_by=? "
                                              "ORDER BY key", (KEPT,))]
        return (self._listed(k) for k in keys)

    def reopen_for_qc(self) -> int:
        """New QC settings: pairs QC decided go back to pending (an accepted one marked WAS_ACCEPTED)."""
        cur = self.db.execute("UPDATE pairs SET state='pending', decided_by=CASE WHEN state='accepted' THEN ? "
                              "ELSE decided_by END WHERE decided_by IN ('qc', ?) AND state IN "
                              "('accepted','rejected','review')", (WAS_ACCEPTED, KEPT))
        return cur.rowcount

    def failed_since(self, started: float) -> int:
        """Pairs that failed at or after ``started`` (time.time()): this run's failures."""
        return self.db.execute("SELECT COUNT(*) FROM pairs WHERE state='failed' AND updated >= ?",
                               (started,)).fetchone()[0]

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

    def start_call(self, key: str, kind: str, fp: str, provider: str, model: str, request: dict, *,
                   currency: str = "", reserve: float = 0.0, budget: float | None = None) -> int | None:
        """Journal a request as ``sent``, holding ``reserve`` of the budget; None if that would pass it.

        Committed *before* the request leaves, so a kill mid-call is visible afterwards. The
        check and the insert are one ``BEGIN IMMEDIATE`` transaction, so processes sharing the
        journal (Ray actors) cannot together reserve more than ``budget``.
        """
        with self.transaction():
            if budget is not None and self.committed(currency) + reserve > budget + 1e-9:
                return None         # nothing written: the commit is a rollback
            cur = self.db.execute(
                "INSERT INTO calls (key, kind, fingerprint, attempt, status, provider, model, started, request, "
                "currency, reserved) VALUES (?, ?, ?, ?, 'sent', ?, ?, ?, ?, ?, ?)",
                (key, kind, fp, self.attempts(fp) + 1, provider, model, time.time(),
                 json.dumps(request, default=str), currency, reserve))
        call_id = cur.lastrowid
        assert call_id is not None      # an INSERT that succeeded sets it
        return call_id

    def hold(self, call_id: int, cost: float) -> None:
        """A call in flight now known to cost ``cost``: hold that until its row is closed."""
        self.db.execute("UPDATE calls SET reserved=? WHERE id=? AND status='sent'", (cost, call_id))

    def end_call(self, call_id: int, status: str, **values: Any) -> None:
        if "response" in values:
            values["response"] = json.dumps(values["response"], default=str)
        values.update(status=status, ended=time.time())
        sets = ", ".join(f"{k}=?" for k in values)
        self.db.execute(f"UPDATE calls SET {sets} WHERE id=?", (*values.values(), call_id))

    def mark_stale(self, call_id: int, detail: str) -> None:
        """A paid answer whose saved file is gone or changed: it is asked for again (its cost stays)."""
        self.db.execute("UPDATE calls SET status='stale', detail=? WHERE id=?", (detail[:1000], call_id))

    def mark_lost(self, results_dir: str | None = None) -> tuple[int, int]:
        """Calls a kill cut off; returns (lost, recovered).

        A cut-off edit whose result file was saved (the file is written before the row is
        closed) and decodes is promoted to ``ok`` at the highest cost seen, so it is not paid
        again; the others become ``lost``: outcome unknown, possibly billed, sent again.
        """
        recovered = 0
        rows = self.db.execute("SELECT id, kind, fingerprint, currency FROM calls WHERE status='sent'").fetchall()
        for call_id, kind, fp, currency in rows:
            rel = result_rel(fp)
            sha = _decodable_sha(os.path.join(results_dir, rel)) if results_dir and kind == "edit" else None
            if sha is None:
                continue
            self.end_call(call_id, "ok", cost=self.max_cost(kind, currency or ""), cost_estimated=1,
                          result_file=rel, result_sha256=sha, reserved=0,
                          detail="recovered: the answer was saved before the run was killed (cost: the "
                                 "highest seen)")
            recovered += 1
        cur = self.db.execute("UPDATE calls SET status='lost', reserved=0, detail='cut off: the run was killed "
                              "while this request was in flight', ended=started WHERE status='sent'")
        return cur.rowcount, recovered

    def spent(self, currency: str) -> float:
        """Money spent in ``currency``; calls of unknown cost count at the highest cost seen for their kind."""
        return float(self.db.execute("SELECT COALESCE(SUM(paid + unknown * max_cost), 0) FROM ledger "
                                     "WHERE currency=?", (currency,)).fetchone()[0])

    def committed(self, currency: str) -> float:
        """Spent plus what calls in flight (any process) hold back."""
        return float(self.db.execute("SELECT COALESCE(SUM(paid + unknown * max_cost + reserved), 0) FROM "
                                     "ledger WHERE currency=?", (currency,)).fetchone()[0])

    def max_cost(self, kind: str, currency: str | None = None) -> float:
        if currency is None:
            row = self.db.execute("SELECT MAX(max_cost) FROM ledger WHERE kind=?", (kind,)).fetchone()
        else:
            row = self.db.execute("SELECT MAX(max_cost) FROM ledger WHERE kind=? AND currency=?",
                                  (kind, currency)).fetchone()
        return float(row[0] or 0.0)

    def cost_known(self, kind: str) -> bool:
        """Whether a call of ``kind`` has answered ok (so its price has been seen)."""
        return bool(self.db.execute("SELECT COALESCE(SUM(answered), 0) FROM ledger WHERE kind=?",
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


def _decodable_sha(path: str) -> str | None:
    """The file's sha256 if it exists and Pillow decodes it, else None."""
    import io

    from PIL import Image

    try:
        with open(path, "rb") as f:
            data = f.read()
        with Image.open(io.BytesIO(data)) as im:     # the bytes just read: no second read of the file
            im.load()
    except (OSError, ValueError, SyntaxError):
        return None
    return hashlib.sha256(data).hexdigest()


def run_lock(state_dir: str) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive lock on ``state_dir/lock`` (our pid inside) for a whole run.

    Raises:
        GGTError: another process holds it (its pid is named).
    """
    from ..locks import exclusive

    return exclusive(os.path.join(state_dir, "lock"), lambda pid: GGTError(
        f"another ggt synth (pid {pid}) is using {os.path.dirname(state_dir)}; wait for it to finish "
        "(or stop it), then run again"))
