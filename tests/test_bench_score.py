"""bench/score.py, the bench of issue #13.2, run for real at a tiny size so it cannot rot: the
same command a lent GPU runs (bench/gpu_check.sh), here on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from ggt_dataset.eval import weights
from ggt_dataset.eval.protocol import load

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_CUDA = __import__("torch").cuda.is_available()


@pytest.mark.slow
def test_bench_times_each_metric_labels_random_weights_and_says_no_gpu(tmp_path):
    """--device cuda on a machine without one: the CPU figures, said so; each metric timed, the
    one without weight files here (lpips) labelled as random weights, and kept out of the report."""
    fig = tmp_path / "fig.json"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "score.py"), "--device", "cuda",
                           "--pairs", "2", "--size", "64", "--metrics", "psnr,ssim,lpips", "--pyiqa-pairs", "1",
                           "--json", str(fig)], check=False, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    if not HAS_CUDA:
        assert out.startswith("no GPU here") and "device cpu" in out
    for line in ("  psnr ", "  ssim ", "  lpips", "(c) all 3 metrics",
                 "(b)/(c) = ", "(a)/(b) = ", "max |(b) - (a)|"):
        assert line in out, (line, out)
    figures = json.loads(fig.read_text())
    assert set(figures["compute_alone_s"]) == {"psnr", "ssim", "lpips"}
    if weights.resolve(load("ggt").metric("lpips"))[1]:       # its files are not here (no network)
        assert figures["random_weights"] == ["lpips"] and "  lpips (random weights, timing only) " in out
        assert "writing the report (of the metrics with real weights: psnr, ssim)" in out
    assert figures["max_abs_score_diff"]["psnr"] == 0.0 and figures["max_abs_score_diff"]["ssim"] < 1e-10
