"""eval/scoring.py and eval/batches.py: decode threads by cores and memory, each side of a batch
uploaded once (across metrics and submissions), the next batch uploaded before this one's metrics
run (issue #13.2). The pinned-memory and side-stream path runs only where CUDA is."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from ggt_dataset.eval import batches, scoring
from ggt_dataset.eval.decode import Decoded
from ggt_dataset.eval.metrics import Scorer
from ggt_dataset.eval.predictions import open_predictions
from ggt_dataset.eval.protocol import load
from ggt_dataset.eval.references import open_references

from ggt_dataset.cli.main import main

HAS_CUDA = __import__("torch").cuda.is_available()


def _workers_on(cores: set[int]) -> int:
    """default_workers() in a fresh process pinned to ``cores``."""
    code = (f"import os\nos.sched_setaffinity(0, {sorted(cores)})\n"
            "from ggt_dataset.eval.scoring import default_workers\nprint(default_workers())")
    return int(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this OS")
def test_default_workers_are_the_cores_this_process_may_use():
    """Was min(4, os.cpu_count()): at most 4 decode threads on a 16-core GPU machine."""
    cores = os.sched_getaffinity(0)
    assert _workers_on(cores) == len(cores)
    assert _workers_on({min(cores)}) == 1


def test_default_workers_are_bounded_by_available_memory(monkeypatch):
    """Where half the available memory holds only 2 workers' pairs in flight, 2 decode (not one per core)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(scoring, "_available_bytes", lambda: 4 * scoring.WORKER_BYTES + 1)
    assert scoring.default_workers() == 2
    monkeypatch.setattr(scoring, "_available_bytes", lambda: 0)
    assert scoring.default_workers() == 1
    monkeypatch.setattr(scoring, "_available_bytes", lambda: None)     # unknown: the cores
    assert scoring.default_workers() == 64


def test_workers_help_no_longer_says_at_most_4(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "at most 4" not in out and "one per core this process may use" in out


def _record(monkeypatch) -> list:
    """Log, in order, every Upload made by scoring and every metric call with its tensors."""
    log: list = []

    class Recorded(batches.Upload):
        def __init__(self, arrays, *a, **k):
            log.append(("upload", len(arrays)))
            super().__init__(arrays, *a, **k)

    real_call = Scorer.__call__

    def call(self, pred, gt=None):
        log.append(("metric", self.name, pred, gt))       # the tensors kept: no id() reuse
        return real_call(self, pred, gt)

    monkeypatch.setattr(scoring, "Upload", Recorded)
    monkeypatch.setattr(Scorer, "__call__", call)
    return log


def test_next_batch_is_uploaded_before_this_batch_runs_and_each_side_once(eval_set, identity_preds, monkeypatch):
    """18 pairs of 96 px in batches of 4 (5 batches): one prediction and one ground-truth upload
    per batch, whatever the number of metrics, and batch k+1's uploads come before batch k's
    metrics (on CUDA: its copy overlaps them)."""
    log = _record(monkeypatch)
    proto = load("ggt").subset(["psnr", "ssim"])
    scorers = [Scorer(proto.metric(n), "cpu") for n in ("psnr", "ssim")]
    result = scoring.run(open_predictions(identity_preds), open_references(eval_set), proto, scorers,
                         progress=False, batch_size=4)
    assert len(result.rows) == 18
    kinds = [e[0] for e in log]
    assert kinds.count("upload") == 2 * 5 and kinds.count("metric") == 2 * 5
    # upload, upload (batch 0), upload, upload (batch 1), then batch 0's two metrics, ...
    assert kinds[:6] == ["upload"] * 4 + ["metric"] * 2
    assert kinds[-2:] == ["metric", "metric"]          # the last batch runs at the end
    metrics = [e for e in log if e[0] == "metric"]
    for psnr, ssim in zip(metrics[::2], metrics[1::2]):
        assert psnr[2].dtype == scorers[0].dtype and ssim[2].dtype == scorers[1].dtype


def test_ground_truth_batch_is_uploaded_once_for_every_submission(eval_set, identity_preds, classical_preds,
                                                                  monkeypatch):
    """Three submissions, 5 batches each: 5 ground-truth uploads (was 15), the very tensor handed
    to every submission's metric, and each submission's numbers those of a run of it alone."""
    log = _record(monkeypatch)
    proto = load("ggt").subset(["psnr"])
    scorers = [Scorer(proto.metric("psnr"), "cpu")]
    refs = open_references(eval_set)
    subs = [open_predictions(p) for p in (identity_preds, classical_preds, identity_preds)]
    results = scoring.run_many(subs, refs, proto, scorers, labels=["a", "b", "c"], progress=False, batch_size=4)
    calls = [e for e in log if e[0] == "metric"]
    assert len(calls) == 3 * 5 and [e[0] for e in log].count("upload") == 3 * 5 + 5
    assert len({id(gt) for *_, gt in calls}) == 5
    log.clear()
    alone = scoring.run(open_predictions(classical_preds), refs, proto, scorers, progress=False, batch_size=4)
    assert results[1].rows == alone.rows and results[0].rows == results[2].rows


def _arrays(dtype, n: int = 3):
    rng = np.random.default_rng(5)
    top = np.iinfo(dtype).max
    return [Decoded(rng.integers(0, top + 1, (21, 26, 3), dtype=dtype), float(top), "") for _ in range(n)]


def test_one_upload_gives_each_view_once_and_equal_to_a_fresh_conversion():
    """The views a batch's metrics share (float32/float64, cropped or not) are made once and equal a
    conversion of their own, bit for bit."""
    import torch

    for dtype in (np.uint8, np.uint16):
        arrays = _arrays(dtype)
        up = batches.Upload(arrays, "cpu", batches.side_stream("cpu"))
        for ft in (torch.float32, torch.float64):
            for border in (0, 2):
                view = up.tensor(ft, border)
                assert up.tensor(ft, border) is view
                assert torch.equal(view, batches.tensor(arrays, ft, border))


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device here (bench/gpu_check.sh runs it on one)")
def test_pinned_side_stream_upload_equals_the_cpu_conversion_bit_for_bit():
    """The CUDA path (pinned host buffer, non_blocking copy on a side stream, conversion and an
    exact division on the device) gives the CPU conversion's numbers exactly."""
    import torch

    stream = batches.side_stream("cuda")
    for dtype in (np.uint8, np.uint16):
        arrays = _arrays(dtype, 8)
        up = batches.Upload(arrays, "cuda", stream)
        assert up.host.is_pinned()
        for ft in (torch.float32, torch.float64):
            for border in (0, 4):
                got = up.tensor(ft, border)
                assert got.is_cuda and torch.equal(got.cpu(), batches.tensor(arrays, ft, border))
