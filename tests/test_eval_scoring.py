"""eval/scoring.py and eval/batches.py: decode threads by cores and memory, each side of a batch
uploaded once (across metrics and submissions), the next batch uploaded before this one's metrics
run (issue #13.2). The pinned-memory and side-stream path runs only where CUDA is."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from ggt_dataset.eval import batcher, batches, scoring
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

    monkeypatch.setattr(batcher, "Upload", Recorded)
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


@pytest.fixture(scope="module")
def jpeg_preds(identity_preds, tmp_path_factory):
    """The identity predictions saved as JPEG (quality 90, 4:2:0), one EXIF-rotated (Pillow's path)."""
    from PIL import Image

    out = tmp_path_factory.mktemp("jpeg-preds")
    for k, (root, _, files) in enumerate(sorted(os.walk(identity_preds))):
        for f in sorted(files):
            dest = out / os.path.relpath(root, identity_preds) / (os.path.splitext(f)[0] + ".jpg")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(os.path.join(root, f)) as im:
                exif = Image.Exif()
                if k == 1 and f == min(files):
                    exif[0x0112] = 1          # a tag present but upright: still plain
                im.convert("RGB").save(dest, "JPEG", quality=90, subsampling=2, exif=exif.tobytes())
    return str(out)


@pytest.mark.slow
def test_jpeg_decoder_device_on_cpu_equals_pillow_and_the_fingerprint_says_which(eval_set, jpeg_preds, tmp_path):
    """--jpeg-decoder device decodes JPEGs with torchvision on the scoring device (nvjpeg on CUDA,
    whose pixels can differ); on the CPU that is libjpeg-turbo, as Pillow's: the same table. Only the
    opted-in report says "jpeg_decoder"; the default decoder stays Pillow."""
    import pyarrow.parquet as pq

    rc_default = main(["score", jpeg_preds, "--reference", eval_set, "--out", str(tmp_path / "pil"),
                       "--metrics", "psnr,ssim", "--device", "cpu", "-q"])
    rc_device = main(["score", jpeg_preds, "--reference", eval_set, "--out", str(tmp_path / "dev"),
                      "--metrics", "psnr,ssim", "--device", "cpu", "--jpeg-decoder", "device", "-q"])
    assert rc_default == rc_device == 0
    a, b = (pq.read_table(tmp_path / d / "per_image.parquet") for d in ("pil", "dev"))
    assert a.num_rows == 18 and a.equals(b)
    import json

    fp = {d: json.loads((tmp_path / d / "summary.json").read_text())["fingerprint"] for d in ("pil", "dev")}
    assert "jpeg_decoder" not in fp["pil"] and fp["dev"]["jpeg_decoder"] == "torchvision decode_jpeg on cpu"


def test_device_decoded_ground_truth_scores_stay_out_of_the_reference_cache(eval_set, identity_preds, tmp_path):
    """The cache holds scores of Pillow-decoded ground truths: a --jpeg-decoder device run reads none
    and writes none (a later Pillow run must not get nvjpeg's numbers)."""
    from conftest import NR_PROTOCOL

    (tmp_path / "nr.yaml").write_text(NR_PROTOCOL)
    proto = load(str(tmp_path / "nr.yaml")).subset(["psnr", "piqe"])
    scorers = [Scorer(s, "cpu") for s in proto.metrics]
    refs, cache = open_references(eval_set), tmp_path / "cache"
    device = scoring.run(open_predictions(identity_preds), refs, proto, scorers, progress=False,
                         cache_dir=str(cache), jpeg_decoder="device")
    assert not cache.exists() or not any(cache.rglob("*.json"))
    pillow = scoring.run(open_predictions(identity_preds), refs, proto, scorers, progress=False, cache_dir=str(cache))
    assert any(cache.rglob("*.json")) and pillow.reference_cache == {"piqe": "miss"}
    assert device.rows == pillow.rows         # PNG everywhere here: torchvision decoded nothing


def test_unknown_jpeg_decoder_is_a_clear_error(eval_set, identity_preds):
    proto = load("ggt").subset(["psnr"])
    with pytest.raises(scoring.ScoreError, match="--jpeg-decoder must be one of pillow, device, got 'gpu'"):
        scoring.run(open_predictions(identity_preds), open_references(eval_set), proto,
                    [Scorer(proto.metric("psnr"), "cpu")], progress=False, jpeg_decoder="gpu")


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device here (bench/gpu_check.sh runs it on one)")
def test_nvjpeg_decoding_runs_and_stays_near_pillow(eval_set, jpeg_preds, tmp_path):
    """On CUDA the device decoder is nvjpeg: it scores every pair, and its PSNR stays within 0.5 dB
    of Pillow's (torchvision allows nvjpeg a mean pixel difference up to 2 levels)."""
    import pyarrow.parquet as pq
    from ggt_dataset.eval import api

    for d, decoder in (("pil", "pillow"), ("dev", "device")):
        api.score(jpeg_preds, eval_set, out=str(tmp_path / d), metrics=["psnr", "ssim"], device="cuda",
                  jpeg_decoder=decoder)
    a, b = (pq.read_table(tmp_path / d / "per_image.parquet").to_pylist() for d in ("pil", "dev"))
    assert len(b) == 18 and max(abs(x["psnr"] - y["psnr"]) for x, y in zip(a, b)) < 0.5


def test_decode_on_reads_plain_jpegs_with_torchvision_and_the_rest_with_pillow():
    """The same pixels (on the CPU); a rotated JPEG and a PNG keep Pillow's path (numpy pixels)."""
    import io

    import torch
    from ggt_dataset.eval.decode import decode, decode_on
    from PIL import Image

    rng = np.random.default_rng(2)
    img = Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))
    read = decode_on("cpu")
    for fmt, orientation, on_device in (("JPEG", 1, True), ("JPEG", 6, False), ("PNG", 1, False)):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        img.save(buf, fmt, exif=exif.tobytes())
        got, want = read(buf.getvalue(), "x"), decode(buf.getvalue(), "x")
        assert isinstance(got.pixels, torch.Tensor) == on_device
        assert np.array_equal(np.asarray(got.pixels), want.pixels) and got.note == want.note


@pytest.mark.slow
def test_ground_truth_scores_keep_the_protocols_order_whatever_the_cache_held(eval_set, identity_preds, tmp_path):
    """entropy's ground-truth scores cached, piqe's not: the result (and so report.md's |Δ| columns)
    still lists piqe then entropy, as the protocol does; the cache hit came first before."""
    from conftest import NR_PROTOCOL

    (tmp_path / "nr.yaml").write_text(NR_PROTOCOL)
    proto = load(str(tmp_path / "nr.yaml"))
    refs, cache = open_references(eval_set), str(tmp_path / "cache")
    first = proto.subset(["psnr", "entropy"])
    scoring.run(open_predictions(identity_preds), refs, first, [Scorer(s, "cpu") for s in first.metrics],
                progress=False, cache_dir=cache)
    result = scoring.run(open_predictions(identity_preds), refs, proto, [Scorer(s, "cpu") for s in proto.metrics],
                         progress=False, cache_dir=cache)
    assert result.reference_cache == {"piqe": "miss", "entropy": "hit"}
    assert list(result.reference) == ["piqe", "entropy"]
    assert [k for k in result.rows[0] if k.endswith("_absdiff")] == ["piqe_absdiff", "entropy_absdiff"]
