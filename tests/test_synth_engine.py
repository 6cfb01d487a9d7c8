"""The engine's journal, retry, refusal and budget logic (test-double backends), and kill/resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import image_bytes, write

from ggt_dataset.synth.backend import BackendError, EditResult, TransientError
from ggt_dataset.synth.backends.classical import restore_bytes
from ggt_dataset.synth.calls import BudgetReached, RetryPolicy
from ggt_dataset.synth.engine import SynthConfig, synthesize
from ggt_dataset.synth.journal import Journal
from ggt_dataset.synth.qc import QCConfig, Review, Validity

FAST = SynthConfig(prompter="fixed", category="rain", retry=RetryPolicy(max_attempts=3, base_delay=0.001),
                   qc=QCConfig((("validity", Validity()), ("review", Review("none")))))


class ScriptedBackend:
    """Test double: answers each request from a script keyed by its pair, else restores it; costs 1.0."""

    name, model, foundation_model, currency = "double", "double-1", True, "USD"
    script: ClassVar[dict[str, list]] = {}
    sent: ClassVar[list[str]] = []

    def __init__(self, **_):
        pass

    async def edit(self, request):
        ScriptedBackend.sent.append(request.pair_id)
        todo = self.script.get(request.pair_id)
        step = todo.pop(0) if todo else "ok"
        if isinstance(step, Exception):
            raise step
        if step == "refuse":
            return EditResult("refused", None, self.model, cost=0.5, detail="SAFETY")
        if step == "empty":
            return EditResult("ok", b"", self.model, cost=1.0)
        data, _ = restore_bytes(request.image, request.pair_id)
        return EditResult("ok", data, self.model, cost=1.0)

    async def aclose(self):
        pass


@pytest.fixture
def double(monkeypatch):
    import ggt_dataset.synth.backends as registry

    monkeypatch.setitem(registry.BACKENDS, "double", (__name__, "ScriptedBackend"))
    ScriptedBackend.script, ScriptedBackend.sent = {}, []
    return replace(FAST, backend="double")


def six_photos(root) -> str:
    for i in range(6):
        write(str(root / "lq" / f"{i:02d}.png"), image_bytes(i, size=(48, 40)))
    return str(root / "lq")


@pytest.fixture
def lq(tmp_path):
    return six_photos(tmp_path)


def _journal(out):
    return Journal(os.path.join(out, ".ggt-synth", "journal.sqlite"))


def test_retries_then_success_refusal_final_and_errors(double, lq, tmp_path):
    ScriptedBackend.script = {"00.png": [TransientError("429", retry_after=0.01, status=429),
                                         TransientError("503", status=503)],
                              "01.png": ["refuse"], "02.png": [BackendError("400 bad request")],
                              "03.png": [TransientError("500", status=500)] * 3}
    out = str(tmp_path / "out")
    report = synthesize(lq, out, double)
    assert report["pairs"] == {"accepted": 3, "refused": 1, "failed": 2}
    j = _journal(out)
    rows = j.db.execute("SELECT key, status, http_status, retry_after FROM calls ORDER BY id").fetchall()
    assert [r[1:] for r in rows if r[0] == "00.png"] == [("transient", 429, 0.01), ("transient", 503, None),
                                                         ("ok", None, None)]
    assert [r[1] for r in rows if r[0] == "03.png"] == ["transient"] * 3
    assert report["spent"] == 3.5                      # 3 ok + the refusal's price
    ScriptedBackend.sent.clear()
    report = synthesize(lq, out, double)               # failed pairs are tried again; refusals are not
    assert sorted(ScriptedBackend.sent) == ["02.png", "03.png"]
    assert report["pairs"] == {"accepted": 5, "refused": 1}


def test_backoff_honours_retry_after():
    import random

    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(0)
    assert all(0 <= policy.delay(a, None, rng) <= min(8.0, 2 ** (a - 1)) for a in range(1, 8))
    assert policy.delay(1, 5.0, rng) >= 5.0


def test_budget_stops_cleanly_and_resumes(double, lq, tmp_path, capsys):
    out = str(tmp_path / "out")
    cfg = replace(double, budget=2.5, concurrency=1)
    with pytest.raises(BudgetReached, match="budget of 2.5 USD reached"):
        synthesize(lq, out, cfg)
    j = _journal(out)
    assert j.call_counts() == {"edit": {"ok": 2}} and j.spent("USD") == 2.0
    assert j.counts() == {"accepted": 2, "pending": 4}
    assert len(Path(out, "metadata.jsonl").read_text().splitlines()) == 2   # a valid partial release
    from ggt_dataset.cli.main import main

    args = ["synth", lq, out, "--backend", "double", "--prompter", "fixed", "--category", "rain",
            "--review", "none", "-q", "--budget", "3.5"]
    assert main(args) == 3 and "raise --budget" in capsys.readouterr().err
    ScriptedBackend.sent.clear()
    report = synthesize(lq, out, replace(cfg, budget=100))
    assert len(ScriptedBackend.sent) == 3 and report["pairs"] == {"accepted": 6}
    assert sorted(_journal(out).sends_by_key().values()) == [1] * 6


def test_lost_calls_and_timeouts_are_counted_and_resent(double, lq, tmp_path):
    out = str(tmp_path / "out")
    synthesize(lq, out, double)
    j = _journal(out)
    j.start_call("00.png", "edit", "fp-cut-off", "double", "double-1", {}, currency="USD")
    assert j.mark_lost() == (1, 0)
    assert j.spent("USD") == 7.0           # 6 paid + the lost one at the highest cost seen
    timed_out = j.start_call("01.png", "edit", "fp-timeout", "double", "double-1", {}, currency="USD")
    j.end_call(timed_out, "transient", detail="ReadTimeout")          # no HTTP status: may be billed
    rate_limited = j.start_call("01.png", "edit", "fp-429", "double", "double-1", {}, currency="USD")
    j.end_call(rate_limited, "transient", http_status=429)            # refused before work: not billed
    assert j.spent("USD") == 8.0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_run_resumes_without_sending_an_image_twice(tmp_path, sig):
    """A real `ggt synth --backend gemini` process against the fake API server, killed mid-run."""
    from ggt_dataset.synth.fake_server import FakeAPIServer

    for i in range(16):
        write(str(tmp_path / "lq" / f"{i:02d}.png"), image_bytes(i, size=(40, 32)))
    out = str(tmp_path / "out")
    (tmp_path / "qc.yaml").write_text("stages:\n  - validity: {}\n")
    with FakeAPIServer(latency=0.3) as srv:
        cmd = [sys.executable, "-m", "ggt_dataset.cli.main", "synth", str(tmp_path / "lq"), out, "--backend",
               "gemini", "--base-url", srv.base_url, "--prompter", "fixed", "--category", "haze", "-q",
               "--concurrency", "2", "--qc", str(tmp_path / "qc.yaml")]
        env = {**os.environ, "GEMINI_API_KEY": "test-key"}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while len(srv.requests) < 5 and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(sig)
        proc.communicate(timeout=60)
        j = _journal(out)
        done_before = {k for (k,) in j.db.execute("SELECT key FROM calls WHERE status='ok'")}
        cut = j.db.execute("SELECT COUNT(*) FROM calls WHERE status='sent'").fetchone()[0]
        j.close()
        assert 0 < len(done_before) < 16
        if sig == signal.SIGTERM:
            assert proc.returncode == 130 and cut == 0          # calls in flight finished and were journalled
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        counts = srv.counts_by_image()
    j = _journal(out)
    sends = j.sends_by_key()
    served = len(srv.requests)
    assert len(sends) == 16 and sum(counts.values()) == served
    # A call is journalled `sent` before it leaves, so kill -9 can land between the two:
    # such a call is in the journal (as lost) but never reached the server.
    never_left = sum(sends.values()) - served
    assert never_left == 0 if sig == signal.SIGTERM else 0 <= never_left <= cut
    assert all(sends[k] == 1 for k in done_before)               # nothing answered was sent again
    recovered = json.loads(Path(out, "synth-report.json").read_text())["recovered_calls"]
    assert sum(sends.values()) == 16 + cut - recovered           # only calls cut off by kill -9 repeat,
    #                                                              unless their answer was already saved
    assert sum(j.counts().values()) == 16 and not {"pending", "failed"} & set(j.counts())


@pytest.mark.slow
def test_local_and_ray_engines_write_identical_outputs(tmp_path):
    pytest.importorskip("ray")
    import shutil

    from ggt_dataset.sample import write_sample

    write_sample(str(tmp_path / "raw"), train_per_category=1, test_per_category=0, size=48)
    shutil.copytree(tmp_path / "raw" / "train" / "LQ", tmp_path / "lq")
    import ray

    try:
        for engine in ("local", "ray"):
            synthesize(str(tmp_path / "lq"), str(tmp_path / engine), SynthConfig(engine=engine, concurrency=4))
    finally:
        ray.shutdown()
    for name in ("metadata.jsonl", "review.csv", "ggt-release.yaml"):
        assert Path(tmp_path / "local" / name).read_text() == Path(tmp_path / "ray" / name).read_text()
    rows = [json.loads(line) for line in Path(tmp_path / "local" / "metadata.jsonl").read_text().splitlines()]
    assert rows, "nothing was accepted, so the comparison above compared empty files"
    decided = [{r["key"]: (r["state"], r["qc"], r["hq_sha256"], r["prompt"])
                for r in _journal(str(tmp_path / engine)).rows(("accepted", "rejected", "review", "failed"))}
               for engine in ("local", "ray")]
    assert decided[0] == decided[1] and len(decided[0]) == sum(_journal(str(tmp_path / "ray")).counts().values())
    for r in rows:
        for col in ("lq_file_name", "hq_file_name"):
            local, ray_out = Path(tmp_path / "local" / r[col]), Path(tmp_path / "ray" / r[col])
            assert local.read_bytes() == ray_out.read_bytes()


# -- review fixes: budget, failures, retries, exit codes ----------------------------------
def test_budget_holds_at_concurrency_8_with_no_estimate(double, lq, tmp_path, monkeypatch):
    """No estimate and no price seen: one call at a time until one answers, then each reserves it."""
    import asyncio

    fast_edit = ScriptedBackend.edit

    async def slow_edit(self, request):         # calls overlap, as a real provider's do
        await asyncio.sleep(0.05)
        return await fast_edit(self, request)

    monkeypatch.setattr(ScriptedBackend, "edit", slow_edit)
    with pytest.raises(BudgetReached) as stop:
        synthesize(lq, str(tmp_path / "out"), replace(double, budget=2.5, concurrency=8))
    j = _journal(str(tmp_path / "out"))
    assert len(ScriptedBackend.sent) == 2 and j.spent("USD") == 2.0      # within the 2.5
    # the refusal came while the second call was in flight: the message reports the final spend
    assert "budget of 2.5 USD reached: 2.0000 USD spent in all" in str(stop.value)
    report = json.loads(Path(tmp_path, "out", "synth-report.json").read_text())
    assert report["spent"] == 2.0 and report["calls"] == {"edit": {"ok": 2}}


def test_reservations_are_shared_between_journal_connections(tmp_path):
    """Ray actors each have a connection: what one reserves, the others see (one transaction)."""
    path = str(tmp_path / "j.sqlite")
    a, b = Journal(path), Journal(path)
    assert a.start_call("k1", "edit", "f1", "p", "m", {}, currency="USD", reserve=1.0, budget=1.5) is not None
    assert b.start_call("k2", "edit", "f2", "p", "m", {}, currency="USD", reserve=1.0, budget=1.5) is None
    assert b.committed("USD") == 1.0


def test_a_pair_that_raises_fails_alone_and_tiny_images_are_bad_input(double, lq, tmp_path, monkeypatch):
    from ggt_dataset.synth import qc

    write(os.path.join(lq, "odd.png"), image_bytes(9, size=(40, 36)))
    real = qc.check_validity

    def check(cfg, lq_rgb, hq):
        if lq_rgb.shape[:2] == (36, 40):
            raise RuntimeError("boom")
        return real(cfg, lq_rgb, hq)

    monkeypatch.setattr(qc, "check_validity", check)
    out = str(tmp_path / "out")
    report = synthesize(lq, out, double)
    j = _journal(out)
    assert report["pairs"] == {"accepted": 6, "failed": 1} and report["failed_this_run"] == 1
    assert j.pair("odd.png")["reason"] == f"{os.path.join(lq, 'odd.png')}: RuntimeError: boom"
    assert j.call_counts() == {"edit": {"ok": 7}}            # nothing cancelled, nothing lost
    write(os.path.join(lq, "tiny.png"), image_bytes(3, size=(8, 8)))
    from ggt_dataset.errors import GGTError

    with pytest.raises(GGTError, match=r"tiny.png: is 8x8 px; ggt synth needs at least 32 px"):
        synthesize(lq, out, double)
    report = synthesize(lq, out, replace(double, skip_bad=True))
    assert report["skipped_inputs"][0]["path"].endswith("tiny.png")


def test_a_fatal_error_drains_calls_in_flight(double, lq, tmp_path, monkeypatch):
    import asyncio

    fast_edit = ScriptedBackend.edit

    async def slow_edit(self, request):
        await asyncio.sleep(0.1)
        return await fast_edit(self, request)

    monkeypatch.setattr(ScriptedBackend, "edit", slow_edit)
    real = Journal.update_pair

    def update_pair(self, key, **values):
        if key == "00.png" and values.get("state"):
            raise OSError("disk full")
        return real(self, key, **values)

    monkeypatch.setattr(Journal, "update_pair", update_pair)
    out = str(tmp_path / "out")
    with pytest.raises(OSError, match="disk full"):
        synthesize(lq, out, replace(double, concurrency=4))
    counts = _journal(out).call_counts()["edit"]
    assert "sent" not in counts and "lost" not in counts and counts["ok"] >= 2


def test_exit_codes_and_bad_options_create_nothing(double, lq, tmp_path, capsys):
    from ggt_dataset.cli.main import main

    base = ["synth", lq, "--backend", "double", "--prompter", "fixed", "--category", "rain", "--review", "none",
            "-q"]
    for option in ("--max-attempts", "--ray-actors", "--concurrency", "--stop-after-failures"):
        out = tmp_path / f"bad{option}"
        assert main([*base[:2], str(out), *base[2:], option, "0"]) == 1
        assert f"{option} must be at least 1" in capsys.readouterr().err and not out.exists()
    ScriptedBackend.script = {"00.png": [BackendError("400 bad request")]}
    assert main([*base[:2], str(tmp_path / "out"), *base[2:]]) == 4
    assert "1 pair(s) failed in this run" in capsys.readouterr().err
    assert main([*base[:2], str(tmp_path / "out"), *base[2:]]) == 0


@pytest.mark.parametrize("option, value, message", [
    ("--budget", "nan", "--budget must be a finite number above 0, got nan"),
    ("--budget", "inf", "--budget must be a finite number above 0, got inf"),
    ("--budget", "-1", "--budget must be a finite number above 0, got -1"),
    ("--price", "nan,1,1", "--price 'nan,1,1': expected TEXT_IN,TEXT_OUT,IMAGE_OUT[,IMAGE_IN], finite"),
    ("--price", "1,inf,1", "--price '1,inf,1': expected"),
    ("--price", "1,1,-2", "--price '1,1,-2': expected"),
    ("--vlm-price", "1,nan", "--vlm-price '1,nan': expected TEXT_IN,TEXT_OUT, finite"),
    ("--judge-price", "-inf,1", "--judge-price '-inf,1': expected TEXT_IN,TEXT_OUT, finite"),
])
def test_non_finite_or_negative_budgets_and_prices_are_refused_before_anything(double, lq, tmp_path, capsys,
                                                                                 option, value, message):
    """A NaN budget fails every comparison (it never stops the run); a NaN price makes costs NULL."""
    from ggt_dataset.cli.main import main

    out = tmp_path / "out"
    args = ["synth", lq, str(out), "--backend", "double", "--prompter", "fixed", "--category", "rain",
            "--review", "none", "-q", f"{option}={value}"] + (["--budget", "5"] if option != "--budget" else [])
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() and ScriptedBackend.sent == []


def test_a_price_object_refuses_non_finite_rates():
    from ggt_dataset.errors import GGTError
    from ggt_dataset.synth.backends._common import Price

    with pytest.raises(GGTError, match="finite number >= 0"):
        Price(text_input=float("nan"), text_output=1.0)
    assert Price(1.0, 2.0, 3.0).cost(text_in=1_000_000) == 1.0


def test_a_run_that_loses_the_lock_race_leaves_the_winners_out_raw(double, lq, tmp_path, monkeypatch):
    """Both runs saw no OUT_RAW; the other one took the lock first: the loser must not delete its folder."""
    import contextlib

    from ggt_dataset.errors import GGTError
    from ggt_dataset.synth import journal

    out = tmp_path / "out"
    real_lock = journal.run_lock
    with contextlib.ExitStack() as winner:
        def lock_after_the_winner(state_dir):
            if not winner._exit_callbacks:          # the winner gets in between the check and the lock
                winner.enter_context(real_lock(state_dir))
                (out / "winner-writing.png").write_bytes(b"in progress")
            return real_lock(state_dir)

        monkeypatch.setattr(journal, "run_lock", lock_after_the_winner)
        with pytest.raises(GGTError, match="another ggt synth"):
            synthesize(lq, str(out), double)
        assert (out / "winner-writing.png").read_bytes() == b"in progress"
    assert ScriptedBackend.sent == []


def test_a_huge_concurrency_starts_no_more_workers_than_pairs(double, lq, tmp_path):
    """--concurrency 20000000 on six photos: eight workers, not twenty million (which ran out of memory)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    report = synthesize(lq, str(tmp_path / "out"), replace(double, concurrency=20_000_000))
    assert report["pairs"] == {"accepted": 6} and len(ScriptedBackend.sent) == 6
    assert time.monotonic() - started < 30
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000       # KiB: under 0.5 GB more


def test_out_of_memory_advice_names_synths_own_options(double, lq, tmp_path, capsys, monkeypatch):
    from ggt_dataset.cli.main import main
    from ggt_dataset.synth import engine

    def out_of_memory(*args, **kwargs):         # fault injection: this machine's memory is not the point
        raise MemoryError

    monkeypatch.setattr(engine, "synthesize", out_of_memory)
    assert main(["synth", lq, str(tmp_path / "out"), "--backend", "double", "--concurrency", "64", "-q"]) == 1
    err = capsys.readouterr().err
    assert "out of memory with --concurrency 64; lower them" in err and "--shard-size" not in err


@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_a_wrong_api_key_stops_the_run_after_the_first_call(lq, tmp_path, monkeypatch, capsys, provider):
    pytest.importorskip("google.genai" if provider == "gemini" else "openai")
    from ggt_dataset.cli.main import main
    from ggt_dataset.synth.fake_server import FakeAPIServer

    monkeypatch.setenv("GEMINI_API_KEY", "wrong-key")
    monkeypatch.setenv("OPENAI_API_KEY", "wrong-key")
    with FakeAPIServer(api_key="right-key") as srv:
        assert main(["synth", lq, str(tmp_path / "out"), "--backend", provider, "--base-url", srv.base_url, "-q",
                     "--prompter", "fixed", "--category", "rain", "--review", "none", "--concurrency", "1"]) == 4
        assert len(srv.requests) == 1                   # not one per photo
    err = capsys.readouterr().err
    assert "stopped: the provider refused the credentials" in err and "_API_KEY" in err
    assert _journal(str(tmp_path / "out")).counts() == {"failed": 1, "pending": 5}


def test_out_raw_inside_lq_dir_through_a_symlink_is_refused(double, lq, tmp_path):
    from ggt_dataset.errors import GGTError

    os.symlink(lq, tmp_path / "link-to-lq")
    for out in (tmp_path / "link-to-lq" / "out", Path(lq) / "out"):
        with pytest.raises(GGTError, match="OUT_RAW must not be inside LQ_DIR"):
            synthesize(lq, str(out), double)
        assert not out.exists()
    os.symlink(os.path.join(lq, "inner"), tmp_path / "out-link")       # OUT_RAW itself a link into LQ_DIR
    with pytest.raises(GGTError, match=r"out-link \(really .*inner\): OUT_RAW must not be inside"):
        synthesize(lq, str(tmp_path / "out-link"), double)


def test_a_429_backs_every_call_off_and_a_storm_stops_the_run(double, lq, tmp_path):
    starts: list[float] = []
    real = ScriptedBackend.edit

    async def timed(self, request):
        starts.append((time.monotonic(), request.pair_id))
        return await real(self, request)

    ScriptedBackend.edit = timed            # a class attribute the fixture does not reset
    try:
        ScriptedBackend.script = {"00.png": [TransientError("429", retry_after=0.3, status=429)]}
        synthesize(lq, str(tmp_path / "a"), replace(double, concurrency=1))
        told = next(t for t, key in starts if key == "00.png")          # the call answered 429
        later = [t for t, _ in starts if t > told]
        assert later and min(later) - told >= 0.3          # every later call waited (shared not-before)
        ScriptedBackend.script = {f"{i:02d}.png": [TransientError("503", status=503)] * 9 for i in range(6)}
        starts.clear()
        cfg = replace(double, concurrency=2, retry=RetryPolicy(max_attempts=9, base_delay=0.001, stop_after=7))
        report = synthesize(lq, str(tmp_path / "b"), cfg)
    finally:
        ScriptedBackend.edit = real
    assert "7 transient failures in a row" in report["stopped"]
    assert 7 <= len(starts) <= 7 + 2 and report["pairs"].get("pending")


def test_an_ok_answer_with_an_empty_image_fails_the_pair_saying_so(double, lq, tmp_path):
    """A backend that breaks its contract (ok, but b"" for the image): the pair fails naming why; it
    was an ok answer with no saved file, and the pipeline then failed on reading it."""
    ScriptedBackend.script = {"00.png": ["empty"]}
    synthesize(lq, str(tmp_path / "out"), double)
    row = _journal(str(tmp_path / "out")).pair("00.png")
    assert (row["state"], row["reason"]) == ("failed", "the provider answered ok with no image")


def test_a_long_retry_after_gives_the_call_up_and_sleeps_wake_on_stop(double, lq, tmp_path):
    import asyncio

    from ggt_dataset.synth.calls import Caller, Stopped

    ScriptedBackend.script = {"00.png": [TransientError("429", retry_after=1000, status=429)]}
    t = time.monotonic()
    cfg = replace(double, retry=RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=1))
    synthesize(lq, str(tmp_path / "out"), cfg)
    assert time.monotonic() - t < 30
    assert "asked to wait 1000 s, more than max_delay (1 s)" in _journal(str(tmp_path / "out")).pair("00.png")["reason"]

    async def stopped_sleep():
        caller = Caller(_journal(str(tmp_path / "out")), str(tmp_path), concurrency=1, retry=RetryPolicy())
        asyncio.get_running_loop().call_later(0.05, caller.stop, "interrupted by SIGINT")
        t = time.monotonic()
        with pytest.raises(Stopped):
            await caller._sleep(30)
        return time.monotonic() - t

    assert asyncio.run(stopped_sleep()) < 1


def test_the_stored_prompt_and_answer_hashes_key_paid_calls(double, lq, tmp_path, monkeypatch):
    from ggt_dataset.synth import prompts

    out = str(tmp_path / "out")
    synthesize(lq, out, double)
    monkeypatch.setattr(prompts, "fill", lambda category, named: "a prompt that changed since")
    qc = QCConfig((("validity", Validity(min_std=1.0)), ("review", Review("none"))))
    report = synthesize(lq, out, replace(double, qc=qc))                # QC re-run: every pair again
    assert report["reopened_for_qc"] == 6 and report["calls"] == {"edit": {"ok": 6}}
    assert {r["prompt"] for r in _journal(out).rows(("accepted",))} != {"a prompt that changed since"}


def test_the_judge_is_keyed_by_image_hashes_not_png_bytes(double, lq, tmp_path, monkeypatch):
    import ggt_dataset.synth.backends as registry
    import ggt_dataset.synth.qc_quality as qq
    from ggt_dataset.synth.backend import VisionReply

    class Judge:
        name, model = "vjudge", "vjudge-1"

        def __init__(self, **_):
            pass

        async def ask(self, image, mime, instruction, schema=None):
            return VisionReply('{"removal": 90, "fidelity": 90, "reason": "ok"}', self.model, cost=0.1)

        async def aclose(self):
            pass

    monkeypatch.setitem(registry.VISION_MODELS, "vjudge", (__name__, "JudgeDouble"))
    monkeypatch.setitem(globals(), "JudgeDouble", Judge)
    out = str(tmp_path / "out")
    cfg = replace(double, qc=QCConfig((("validity", Validity()),)).with_judge("vjudge").with_review("none"))
    synthesize(lq, out, cfg)
    real = qq.side_by_side
    monkeypatch.setattr(qq, "side_by_side", lambda a, b: real(a, b) + b"changed encoder")
    report = synthesize(lq, out, replace(cfg, qc=QCConfig((("validity", Validity(min_std=1.0)),))
                                         .with_judge("vjudge").with_review("none")))
    assert report["reopened_for_qc"] == 6 and report["calls"]["judge"] == {"ok": 6}


def test_ray_plan_never_exceeds_concurrency():
    from ggt_dataset.synth.ray_engine import plan

    for concurrency in range(1, 20):
        for actors in range(1, 12):
            n, per = plan(concurrency, actors)
            assert 1 <= n <= actors and per >= 1 and n * per <= concurrency


@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
@pytest.mark.slow
def test_gemini_budget_needs_a_price_and_holds_at_concurrency_8(lq, tmp_path, monkeypatch, capsys):
    pytest.importorskip("google.genai")
    from ggt_dataset.cli.main import main
    from ggt_dataset.synth.fake_server import FakeAPIServer

    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    with FakeAPIServer(latency=0.2) as srv:
        args = ["synth", lq, str(tmp_path / "out"), "--backend", "gemini", "--base-url", srv.base_url, "-q",
                "--prompter", "fixed", "--category", "rain", "--review", "none", "--concurrency", "8"]
        assert main([*args, "--model", "gemini-9-image", "--budget", "1"]) == 1
        assert "--budget needs prices" in capsys.readouterr().err and not (tmp_path / "out").exists()
        assert not srv.requests
        # one call is about $0.067 (estimated at $0.071): a budget of $0.15 allows two
        assert main([*args, "--budget", "0.15"]) == 3
        spent = _journal(str(tmp_path / "out")).spent("USD")
        assert len(srv.requests) == 2 and spent <= 0.15
        args[2] = str(tmp_path / "priced")
        assert main([*args, "--model", "gemini-9-image", "--budget", "0.3", "--price", "0.5,3,60"]) == 3
        assert 0 < _journal(args[2]).spent("USD") <= 0.3 and len(srv.requests) == 2 + 4


@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
def test_billed_malformed_images_count_against_the_budget(lq, tmp_path, monkeypatch):
    """A 200 with usage but unusable image bytes is billed: the journal and the budget must see it."""
    pytest.importorskip("google.genai")
    from ggt_dataset.synth.fake_server import FakeAPIServer

    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    out = str(tmp_path / "out")
    with FakeAPIServer() as srv:
        for n in range(1, 30):
            srv.add_fault("malformed", request=n)
        cfg = replace(FAST, backend="gemini", budget=0.15, options={"backend": {"base_url": srv.base_url}})
        with pytest.raises(BudgetReached):
            synthesize(lq, out, replace(cfg, concurrency=1))
        j = _journal(out)
        # one call is about $0.067: two fit in $0.15 (the old journal said 0 and sent all six)
        assert len(srv.requests) == 2 and j.call_counts() == {"edit": {"error": 2}}
        assert j.spent("USD") == pytest.approx(2 * 0.06733, rel=1e-3) and j.spent("USD") <= 0.15


def test_an_unpriced_vlm_needs_its_price_under_a_budget(lq, tmp_path, monkeypatch, capsys):
    pytest.importorskip("google.genai")
    import argparse

    from ggt_dataset.cli.main import main
    from ggt_dataset.cli.synth import config, register
    from ggt_dataset.synth.engine import check_config

    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    args = ["synth", lq, str(tmp_path / "out"), "-q", "--vlm", "gemini", "--vlm-model", "gemini-9-flash",
            "--budget", "1"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "--vlm gemini model 'gemini-9-flash'" in err and "--vlm-price TEXT_IN,TEXT_OUT" in err
    assert not (tmp_path / "out").exists()
    assert main([*args, "--vlm-price", "1.5"]) == 1
    assert "--vlm-price '1.5': expected TEXT_IN,TEXT_OUT" in capsys.readouterr().err
    # Priced, the parsed options reach the price check and pass it.
    sub = argparse.ArgumentParser().add_subparsers()
    register(sub)
    parsed = sub.choices["synth"].parse_args(args[1:] + ["--vlm-price", "1.5,9", "--judge", "gemini",
                                                          "--judge-price", "1.5,9"])
    check_config(config(parsed))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
def test_gemini_text_only_answer_is_retried_next_run_not_refused(lq, tmp_path, monkeypatch):
    pytest.importorskip("google.genai")
    from ggt_dataset.synth.fake_server import FakeAPIServer

    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    out = str(tmp_path / "out")
    with FakeAPIServer() as srv:
        cfg = replace(FAST, backend="gemini", options={"backend": {"base_url": srv.base_url}})
        srv.add_fault("text_only", request=1)
        srv.add_fault("refuse", request=2)
        report = synthesize(lq, out, replace(cfg, concurrency=1))
        assert report["pairs"] == {"accepted": 4, "failed": 1, "refused": 1}
        report = synthesize(lq, out, replace(cfg, concurrency=1))
        assert report["pairs"] == {"accepted": 5, "refused": 1}
