"""The Ray engine on a real multi-node Ray cluster made on this machine (ray.cluster_utils.Cluster:
one raylet per node, each with its own resources): actors on both nodes, the release identical
to the local engine's, a worker node lost mid-run, the driver killed and resumed, the budget, and
diffusers actors placed only on a node with a (fake) GPU.

Kept small for a 2-core machine: one CPU and a 100 MB object store per node, no dashboard,
every run bounded by a timeout, the cluster shut down in a finalizer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import image_bytes, write

from ggt_dataset.synth.calls import BudgetReached, RetryPolicy
from ggt_dataset.synth.engine import SynthConfig, synthesize
from ggt_dataset.synth.journal import Journal
from ggt_dataset.synth.qc import QCConfig, Review, Validity

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")]
ray = pytest.importorskip("ray")

NODE = {"num_cpus": 1, "object_store_memory": 100 * 1024**2}
FAST = SynthConfig(prompter="fixed", category="rain", concurrency=4,
                   retry=RetryPolicy(max_attempts=3, base_delay=0.05),
                   qc=QCConfig((("validity", Validity()), ("review", Review("none")))))


@pytest.fixture(scope="module")
def cluster():
    """A head and one worker node; the provider key is set first, so every node's workers inherit it."""
    from ray.cluster_utils import Cluster

    os.environ.setdefault("GEMINI_API_KEY", "test-key")
    c = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    try:
        c.add_node(**NODE)
        c.wait_for_nodes()
        ray.init(address=c.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


def photos(root, n: int) -> str:
    for i in range(n):
        write(str(root / "lq" / f"{i:02d}.png"), image_bytes(i, size=(48, 40)))
    return str(root / "lq")


def _journal(out) -> Journal:
    return Journal(os.path.join(out, ".ggt-synth", "journal.sqlite"))


def _sent_after_answered(j: Journal) -> list:
    """Calls sent again although the same request had already been answered and journalled."""
    return j.db.execute("SELECT c.id FROM calls c JOIN calls o ON o.fingerprint = c.fingerprint "
                        "AND o.status = 'ok' AND o.id < c.id").fetchall()


def _alive_nodes() -> int:
    return sum(1 for n in ray.nodes() if n.get("Alive"))


def test_two_nodes_actors_on_both_and_the_release_equals_the_local_engines(cluster, tmp_path):
    lq = photos(tmp_path, 8)
    local = synthesize(lq, str(tmp_path / "local"), FAST)
    report = synthesize(lq, str(tmp_path / "ray"), replace(FAST, engine="ray", ray_actors=2))
    assert _alive_nodes() == 2
    assert report["ray"]["nodes"] == 2 and report["ray"]["actors"] == 2
    assert len(report["ray"]["calls_by_node"]) == 2, report["ray"]      # both nodes answered calls
    assert sum(report["ray"]["calls_by_node"].values()) == 8 == report["calls"]["edit"]["ok"]
    assert report["calls"] == local["calls"] and report["pairs"] == local["pairs"] and report["released"] == 8
    for name in ("metadata.jsonl", "review.csv", "ggt-release.yaml", "rejections.csv"):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name
    for r in map(json.loads, (tmp_path / "local" / "metadata.jsonl").read_text().splitlines()):
        for col in ("lq_file_name", "hq_file_name"):
            assert (tmp_path / "local" / r[col]).read_bytes() == (tmp_path / "ray" / r[col]).read_bytes()


def test_a_worker_node_lost_mid_run_its_calls_are_retried_and_the_run_finishes(cluster, tmp_path):
    from ggt_dataset.synth.fake_server import FakeAPIServer

    lq, out = photos(tmp_path, 12), str(tmp_path / "out")
    extra = cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    with FakeAPIServer(latency=0.5) as srv:
        # stop_after=1: the lost calls are not the provider failing, so they must not stop the run
        cfg = replace(FAST, engine="ray", backend="gemini", ray_actors=3, concurrency=6,
                      retry=replace(FAST.retry, stop_after=1), options={"backend": {"base_url": srv.base_url}})

        def remove_when_busy() -> None:         # once calls are in flight on every actor
            deadline = time.monotonic() + 60
            while srv.max_in_flight < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            cluster.remove_node(extra)

        killer = threading.Thread(target=remove_when_busy, daemon=True)
        killer.start()
        report = synthesize(lq, out, cfg)
        killer.join(60)
    assert report["ray"]["nodes"] == 3 and report["ray"]["actors_left"] == 2, report["ray"]
    assert report["pairs"] == {"accepted": 12} and report["stopped"] is None
    j = _journal(out)
    lost = j.db.execute("SELECT key, detail, http_status FROM calls WHERE status='transient'").fetchall()
    assert lost and all(d.startswith("lost: the Ray worker") and s is None for _, d, s in lost), lost
    # each pair has one answered edit; a lost call was re-sent (its answer never came back)
    assert j.call_counts()["edit"]["ok"] == 12 and not _sent_after_answered(j)
    assert sum(j.sends_by_key().values()) == 12 + len(lost) >= len(srv.requests)
    # a lost call may have been billed: counted at the highest cost seen
    answered = j.db.execute("SELECT SUM(cost), MAX(cost) FROM calls WHERE status='ok'").fetchone()
    assert j.spent("USD") == pytest.approx(answered[0] + len(lost) * answered[1])


def test_budget_holds_at_concurrency_16_across_nodes(cluster, tmp_path):
    from ggt_dataset.synth.fake_server import FakeAPIServer

    lq, out = photos(tmp_path, 24), str(tmp_path / "out")
    with FakeAPIServer(latency=0.2) as srv:
        # one call is about $0.067: a budget of $0.5 allows seven
        cfg = replace(FAST, engine="ray", backend="gemini", ray_actors=2, concurrency=16, budget=0.5,
                      options={"backend": {"base_url": srv.base_url}})
        with pytest.raises(BudgetReached):
            synthesize(lq, out, cfg)
    j = _journal(out)
    assert 0 < j.spent("USD") <= 0.5 and len(srv.requests) == sum(j.sends_by_key().values()) == 7
    assert srv.max_in_flight > 1        # the budget held while calls ran side by side


def test_driver_killed_then_resumed_with_the_same_command(cluster, tmp_path):
    """`ggt synth --engine ray --address ADDR` as a real process, kill -9 mid-run, then the same command."""
    from ggt_dataset.synth.fake_server import FakeAPIServer

    lq, out = photos(tmp_path, 12), str(tmp_path / "out")
    ggt = os.path.join(os.path.dirname(sys.executable), "ggt")
    with FakeAPIServer(latency=0.5) as srv:
        cmd = [ggt, "synth", lq, out, "--engine", "ray", "--address", cluster.address, "--backend", "gemini",
               "--base-url", srv.base_url, "--prompter", "fixed", "--category", "rain", "--review", "none",
               "--concurrency", "4", "-q"]
        driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 90
        while len([r for r in srv.requests if r.finished]) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(30)
        assert not Path(out, "metadata.jsonl").exists()         # killed before the release was written
        cut = _journal(out).db.execute("SELECT COUNT(*) FROM calls WHERE status='sent'").fetchone()[0]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(Path(out, "synth-report.json").read_text())
    # every pair decided (the default QC rejects the fake server's answers for noise photos: no matter)
    assert sum(report["pairs"].values()) == 12 and not {"pending", "failed"} & set(report["pairs"])
    assert report["ray"]["nodes"] == 2 and report["calls"]["edit"]["ok"] == 12
    j = _journal(out)
    # nothing answered and journalled is sent again: only the calls the kill cut off repeat
    assert report["lost_calls"] + report["recovered_calls"] == cut and not _sent_after_answered(j)
    assert sum(j.sends_by_key().values()) == 12 + report["lost_calls"] >= len(srv.requests)


def test_diffusers_actors_ask_for_a_gpu_and_go_to_the_node_that_has_one(cluster, tmp_path, monkeypatch):
    """Placement with fake GPU resources: no node has a GPU, so the actor waits and the run says why; a
    node with one (a fake: Ray counts it, torch sees none) takes the actor, which then tries to load the model."""
    from ggt_dataset.errors import GGTError
    from ggt_dataset.synth import ray_engine

    lq = photos(tmp_path, 1)
    cfg = replace(FAST, engine="ray", backend="diffusers", ray_actors=1, concurrency=1)
    monkeypatch.setattr(ray_engine, "PLACE_TIMEOUT", 3.0)
    with pytest.raises(GGTError, match=r"no worker could be placed in 3 s; each asks for \{'num_gpus': 1\}"):
        synthesize(lq, str(tmp_path / "no-gpu"), cfg)
    gpu = cluster.add_node(**NODE, num_gpus=1)
    try:
        cluster.wait_for_nodes()
        monkeypatch.setattr(ray_engine, "PLACE_TIMEOUT", 60.0)
        with pytest.raises(GGTError, match="no worker could start: .*(diffusers|CUDA|torch)"):
            synthesize(lq, str(tmp_path / "fake-gpu"), cfg)
    finally:
        cluster.remove_node(gpu)
