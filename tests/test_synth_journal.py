"""The synthesis journal: the run lock, the money ledger, cut-off calls and review.csv."""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write
from test_synth_engine import _journal, six_photos

from ggt_dataset.errors import GGTError
from ggt_dataset.synth.engine import SynthConfig, synthesize
from ggt_dataset.synth.journal import Journal
from ggt_dataset.synth.out_raw import ReviewError
from ggt_dataset.synth.qc import QCConfig, Review, Validity

FAST = SynthConfig(prompter="fixed", category="rain", qc=QCConfig((("validity", Validity()), ("review", Review("none")))))


@pytest.fixture
def lq(tmp_path):
    return six_photos(tmp_path)


def test_a_second_run_on_the_same_out_raw_is_refused(lq, tmp_path):
    out = str(tmp_path / "out")
    synthesize(lq, out, FAST)
    j = _journal(out)
    cut = j.start_call("00.png", "edit", "in-flight", "p", "m", {}, currency="USD")
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys; from ggt_dataset.synth.journal import run_lock\n"
                                f"with run_lock({os.path.join(out, '.ggt-synth')!r}):\n"
                                " print('held', flush=True); sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(GGTError, match=rf"another ggt synth \(pid {holder.pid}\) is using {out}"):
            synthesize(lq, out, FAST)
        assert j.db.execute("SELECT status FROM calls WHERE id=?", (cut,)).fetchone()[0] == "sent"   # untouched
    finally:
        holder.communicate("")
    synthesize(lq, out, FAST)                           # the lock went with its process


def test_the_ledger_matches_a_full_scan(tmp_path):
    j = Journal(str(tmp_path / "j.sqlite"))
    rng = random.Random(0)
    for i in range(400):
        kind = rng.choice(["edit", "prompt"])
        cid = j.start_call(f"k{i}", kind, f"f{i}", "p", "m", {}, currency="USD", reserve=rng.random())
        status = rng.choice(["ok", "refused", "transient", "error", "sent"])
        if status != "sent":
            j.end_call(cid, status, cost=round(rng.random(), 3), currency="USD",
                       http_status=rng.choice([None, 429]) if status == "transient" else None)
    j.mark_lost()
    rows = j.db.execute("SELECT kind, status, http_status, cost FROM calls").fetchall()
    top = {k: max(c for kk, _, _, c in rows if kk == k) for k in ("edit", "prompt")}
    want = sum(c if s in ("ok", "refused", "error") or (s == "transient" and h) else top[k]
               for k, s, h, c in rows)
    assert j.spent("USD") == pytest.approx(want) and j.committed("USD") == pytest.approx(want)
    assert j.max_cost("edit") == top["edit"]


def test_a_journal_made_before_the_ledger_gets_the_same_ledger(tmp_path):
    """Opening a journal without the ledger triggers adds them and fills the ledger from ``calls``."""
    path = str(tmp_path / "j.sqlite")
    j = Journal(path)
    rng = random.Random(1)
    for i in range(60):
        cid = j.start_call(f"k{i}", rng.choice(["edit", "judge"]), f"f{i}", "p", "m", {}, currency="USD",
                           reserve=0.5)
        if i % 5:
            j.end_call(cid, rng.choice(["ok", "transient", "error"]), cost=round(rng.random(), 3), currency="USD")
    def ledger_rows():
        return sorted(tuple(round(v, 9) if isinstance(v, float) else v for v in r)
                      for r in j.db.execute("SELECT * FROM ledger"))

    ledger = ledger_rows()
    for name in ("ledger_insert", "ledger_update", "ledger_delete"):
        j.db.execute(f"DROP TRIGGER {name}")
    j.db.execute("DELETE FROM ledger")
    j.close()
    j = Journal(path)
    assert ledger_rows() == ledger and len(ledger) == 2
    j.start_call("more", "edit", "f-more", "p", "m", {}, currency="USD", reserve=0.25)   # triggers are back
    assert j.committed("USD") == pytest.approx(j.spent("USD") + 12 * 0.5 + 0.25)


def test_a_release_made_before_lq_copies_is_upgraded_without_new_calls(lq, tmp_path):
    """Older journals lack pairs.lq_stat/lq_released and their releases hard-linked LQ_DIR's photos:
    the next run adds the columns, hashes each photo once and replaces each link with a copy."""
    out = str(tmp_path / "out")
    synthesize(lq, out, FAST)
    j = _journal(out)
    for column in ("lq_stat", "lq_released"):
        j.db.execute(f"ALTER TABLE pairs DROP COLUMN {column}")
    j.close()
    released = [Path(out, "train", "LQ", "rain", f"{i:02d}.png") for i in range(6)]
    for i, path in enumerate(released):             # what the old release held: links to LQ_DIR
        path.unlink()
        os.link(os.path.join(lq, f"{i:02d}.png"), path)
    report = synthesize(lq, out, FAST)
    assert report["released"] == 6 and report["calls"] == {"edit": {"ok": 6}} and report["changed_inputs"] == []
    assert not any(p.samefile(os.path.join(lq, p.name)) for p in released)
    assert all(p.read_bytes() == Path(lq, p.name).read_bytes() for p in released)
    assert all(r["lq_stat"] and r["lq_released"] == r["lq_sha256"] for r in _journal(out).rows(("accepted",)))


def test_a_saved_answer_cut_off_before_it_was_journalled_is_not_paid_again(lq, tmp_path):
    out = str(tmp_path / "out")
    synthesize(lq, out, FAST)
    j = _journal(out)
    fp, rel = j.db.execute("SELECT fingerprint, result_file FROM calls WHERE key='00.png'").fetchone()
    results = os.path.join(out, ".ggt-synth", "results")
    j.db.execute("UPDATE calls SET status='sent' WHERE fingerprint=?", (fp,))        # killed before end_call
    j.db.execute("UPDATE pairs SET state='pending' WHERE key='00.png'")
    garbage = j.start_call("01.png", "edit", "ab" + "0" * 62, "p", "m", {}, currency="USD")
    write(os.path.join(results, "ab", "ab" + "0" * 62), b"\x89PNG not really")        # saved, but torn
    report = synthesize(lq, out, FAST)
    assert (report["recovered_calls"], report["lost_calls"]) == (1, 1)
    assert j.paid(fp).status == "ok" and report["calls"]["edit"]["ok"] == 6               # not sent again
    assert j.db.execute("SELECT status FROM calls WHERE id=?", (garbage,)).fetchone()[0] == "lost"
    os.remove(os.path.join(results, rel))
    qc = QCConfig((("validity", Validity(min_std=1.0)), ("review", Review("none"))))
    report = synthesize(lq, out, SynthConfig(prompter="fixed", category="rain", qc=qc))
    assert report["calls"]["edit"]["stale"] == 1 and report["calls"]["edit"]["ok"] == 6
    detail = j.db.execute("SELECT detail FROM calls WHERE status='stale'").fetchone()[0]
    assert f"result file {os.path.join(results, rel)} is missing" in detail


def test_review_is_applied_all_or_nothing_and_only_to_pairs_in_review(lq, tmp_path):
    out = str(tmp_path / "out")
    synthesize(lq, out, SynthConfig(prompter="fixed", category="rain",
                                    qc=QCConfig((("validity", Validity()), ("review", Review("all"))))))
    path = Path(out, "review.csv")
    rows = list(csv.DictReader(path.read_text().splitlines()))
    j = _journal(out)
    j.db.execute("UPDATE pairs SET state='rejected' WHERE id=?", (rows[1]["id"],))   # QC's verdict, say
    rows[0]["decision"], rows[1]["decision"] = "accept", "accept"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(ReviewError, match=r"review.csv:3: .* is rejected .*not waiting for review"):
        synthesize(lq, out, FAST)
    assert j.pair(rows[0]["id"].split("/")[1] + ".png")["state"] == "review"        # nothing applied


def test_a_journal_transaction_is_all_or_nothing(tmp_path):
    j = Journal(str(tmp_path / "journal.sqlite"))
    row = {"key": "a.png", "id": "rain/a", "split": "train", "category": "rain", "category_from": "folder",
           "name": "a", "lq_sha256": "0" * 64, "lq_width": 40, "lq_height": 32, "prompt_meta": None, "lq_stat": "1"}
    with pytest.raises(ValueError), j.transaction():
        assert j.add_pair(row)
        raise ValueError("a failure after the insert")
    assert j.pair("a.png") is None                                  # rolled back
    with j.transaction():
        assert j.add_pair(row)
        assert not j.add_pair({**row, "key": "a.jpg"})              # same (split, id): refused, not raised
    assert j.pair_by_id("train", "rain/a")["key"] == "a.png" and j.counts() == {"pending": 1}
