"""The journal's SQLite schema: tables, indexes, and the triggers that keep the money ledger.

The ledger is kept by triggers on ``calls`` so that every insert, update or delete of a
call row changes it in the same transaction, from any process or Ray actor: budget
checks then read a few ledger rows instead of scanning ``calls`` (0.01 ms instead of
about 200 ms at 300K call rows).
"""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (
  key TEXT PRIMARY KEY,            -- LQ path relative to LQ_DIR, POSIX
  id TEXT NOT NULL,                -- <category>/<name>, the pair id in the release
  split TEXT NOT NULL, category TEXT, category_from TEXT NOT NULL,
  name TEXT NOT NULL, lq_sha256 TEXT NOT NULL, lq_width INTEGER, lq_height INTEGER,
  state TEXT NOT NULL DEFAULT 'pending',
  prompt TEXT, prompt_meta TEXT, generator TEXT, hq_file TEXT, hq_sha256 TEXT,
  qc TEXT, reason TEXT, decided_by TEXT, updated REAL,
  lq_stat TEXT,                    -- size:inode:ctime_ns when lq_sha256 was taken (an edit changes it)
  lq_released TEXT,                -- the lq_sha256 whose copy is in the release (NULL: none yet)
  UNIQUE (split, id)
);
CREATE TABLE IF NOT EXISTS calls (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL, kind TEXT NOT NULL, fingerprint TEXT NOT NULL, attempt INTEGER NOT NULL,
  status TEXT NOT NULL,            -- sent, ok, refused, transient, error, lost
  provider TEXT, model TEXT, started REAL NOT NULL, ended REAL,
  http_status INTEGER, retry_after REAL,
  cost REAL NOT NULL DEFAULT 0, currency TEXT, cost_estimated INTEGER NOT NULL DEFAULT 0,
  detail TEXT, request TEXT, response TEXT, result_file TEXT, result_sha256 TEXT,
  reserved REAL NOT NULL DEFAULT 0 -- while 'sent': what the budget holds back for it
);
CREATE INDEX IF NOT EXISTS calls_fingerprint ON calls (fingerprint, status);
CREATE INDEX IF NOT EXISTS calls_key ON calls (key, kind);
CREATE INDEX IF NOT EXISTS pairs_state ON pairs (state, key);
CREATE TABLE IF NOT EXISTS ledger (
  kind TEXT NOT NULL, currency TEXT NOT NULL,
  paid REAL NOT NULL DEFAULT 0,        -- known costs
  max_cost REAL NOT NULL DEFAULT 0,    -- the highest cost seen (prices calls of unknown cost)
  unknown INTEGER NOT NULL DEFAULT 0,  -- lost calls and timeouts: maybe billed, price unknown
  reserved REAL NOT NULL DEFAULT 0,    -- held back for calls in flight
  answered INTEGER NOT NULL DEFAULT 0, -- 'ok' calls: once > 0 the cost of this kind is known
  PRIMARY KEY (kind, currency)
);
"""

# Columns added to ``pairs`` after the first release: older journals get them on open.
PAIR_COLUMNS = (("lq_stat", "TEXT"), ("lq_released", "TEXT"))

# How one calls row counts in the ledger; the triggers add NEW and subtract OLD, so every
# INSERT/UPDATE/DELETE keeps the ledger exact in the same transaction, from any process.
_KNOWN = "({r}.status IN ('ok','refused','error','stale') OR ({r}.status='transient' AND {r}.http_status IS NOT NULL))"
_UNKNOWN = "({r}.status='lost' OR ({r}.status='transient' AND {r}.http_status IS NULL))"


def _ledger_sql(r: str, sign: str) -> str:
    cur = f"COALESCE({r}.currency, '')"
    return (f"INSERT INTO ledger (kind, currency) VALUES ({r}.kind, {cur}) ON CONFLICT DO NOTHING; "
            f"UPDATE ledger SET paid = paid {sign} CASE WHEN {_KNOWN.format(r=r)} THEN {r}.cost ELSE 0 END, "
            f"unknown = unknown {sign} CASE WHEN {_UNKNOWN.format(r=r)} THEN 1 ELSE 0 END, "
            f"reserved = reserved {sign} CASE WHEN {r}.status='sent' THEN {r}.reserved ELSE 0 END, "
            f"answered = answered {sign} CASE WHEN {r}.status='ok' THEN 1 ELSE 0 END, "
            f"max_cost = MAX(max_cost, {r}.cost) WHERE kind={r}.kind AND currency={cur};")


TRIGGERS = (
    f"CREATE TRIGGER ledger_insert AFTER INSERT ON calls BEGIN {_ledger_sql('NEW', '+')} END",
    f"CREATE TRIGGER ledger_update AFTER UPDATE ON calls BEGIN {_ledger_sql('OLD', '-')} {_ledger_sql('NEW', '+')} END",
    f"CREATE TRIGGER ledger_delete AFTER DELETE ON calls BEGIN {_ledger_sql('OLD', '-')} END",
)

# The ledger computed from scratch, for journals made before it existed.
FILL_LEDGER = f"""INSERT INTO ledger SELECT kind, COALESCE(currency, ''),
    SUM(CASE WHEN {_KNOWN.format(r="calls")} THEN cost ELSE 0 END), MAX(cost),
    SUM(CASE WHEN {_UNKNOWN.format(r="calls")} THEN 1 ELSE 0 END),
    SUM(CASE WHEN status='sent' THEN reserved ELSE 0 END),
    SUM(CASE WHEN status='ok' THEN 1 ELSE 0 END) FROM calls GROUP BY 1, 2"""
