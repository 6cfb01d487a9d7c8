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


@pytest.fixture
def lq(tmp_path):
    for i in range(6):
        write(str(tmp_path / "lq" / f"{i:02d}.png"), image_bytes(i, size=(48, 40)))
    return str(tmp_path / "lq")


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


def test_lost_calls_are_counted_and_resent(double, lq, tmp_path):
    out = str(tmp_path / "out")
    synthesize(lq, out, double)
    j = _journal(out)
    j.start_call("00.png", "edit", "fp-cut-off", 1, "double", "double-1", {})
    assert j.mark_lost() == 1
    assert j.spent("USD") == 7.0           # 6 paid + the lost one at the highest cost seen


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
    assert len(sends) == 16 and sum(counts.values()) == len(srv.requests) == sum(sends.values())
    assert all(sends[k] == 1 for k in done_before)               # nothing answered was sent again
    assert sum(sends.values()) == 16 + cut                       # only calls cut off by kill -9 repeat
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
    for r in rows:
        for col in ("lq_file_name", "hq_file_name"):
            local, ray_out = Path(tmp_path / "local" / r[col]), Path(tmp_path / "ray" / r[col])
            assert local.read_bytes() == ray_out.read_bytes()
