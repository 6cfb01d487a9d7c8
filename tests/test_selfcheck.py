"""``ggt selfcheck``: the calibration images fetched by ``ggt weights fetch`` (pinned by sha256,
resumed when cut), scored, compared with golden values, and the outcome in every report.

The HTTP path runs against a local server (tests/file_server.py) with calibration-like
images made here and a calibration file naming them; PSNR's golden values come from an
independent numpy computation. Every test that runs the real command or scores with pyiqa
is marked slow (over 0.5 s of CPU: torch is imported); eval/download.py's own tests are
fast (test_eval_download.py). The real calibration set (TID2013 images, not vendored: no
licence allowing redistribution comes with them) is checked against its pinned golden values only where
``ggt weights fetch`` has put it (``~/.cache/torch/hub/ggt-calibration``), else skipped.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from file_server import FileServer
from ggt_dataset.eval import selfcheck
from PIL import Image

from ggt_dataset.hashing import file_sha256

PAIRS = ("a.bmp", "b.bmp")


def bmp(seed: int, noise: float) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(0).integers(0, 256, (40, 48, 3))
    pixels = np.clip(base + rng.normal(0, noise, base.shape), 0, 255).astype(np.uint8) if noise else base.astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="BMP")
    return buf.getvalue(), pixels


def numpy_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255) ** 2)
    return float(10 * np.log10(1 / mse))


@dataclass
class Env:
    """The environment that points ggt at the served calibration set, and how ggt runs in it."""

    run: Callable
    vars: dict[str, str]

    def __getitem__(self, key: str) -> str:
        return self.vars[key]


@pytest.fixture
def calib(tmp_path, ggt_in_process):
    """Two pairs served over HTTP, a calibration file pinning them, and the environment that
    points ggt at both (private caches: nothing of the user's is read or written)."""
    files, golden = {}, []
    for i, name in enumerate(PAIRS):
        ref, ref_px = bmp(0, 0)
        dist, dist_px = bmp(i + 1, 8 + 8 * i)
        files[f"/cal/ref_dir/{name}"], files[f"/cal/dist_dir/{name}"] = ref, dist
        golden.append(round(numpy_psnr(dist_px, ref_px), 4))
    cal = {"source": "made by tests/test_selfcheck.py", "base_url": "http://unused.invalid",
           "pairs": list(PAIRS),
           "files": {k[len("/cal/"):]: hashlib.sha256(v).hexdigest() for k, v in files.items()},
           "metrics": {"psnr": {"tolerance": 2e-4, "pyiqa": golden}}}
    path = tmp_path / "calibration.yaml"
    path.write_text(yaml.safe_dump(cal))
    with FileServer(files) as server:
        env = Env(ggt_in_process, {"GGT_CALIBRATION": str(path), "GGT_CALIBRATION_URL": server.url + "/cal",
                                   "XDG_CACHE_HOME": str(tmp_path / "xdg")})
        yield server, env, path, cal, tmp_path / "w"


def ggt(env: Env, *args):
    """In this process (tests/conftest.py ggt_in_process): a subprocess would import torch each time."""
    return env.run(*args, env=env.vars)


def fetch(env, weights_dir):
    return ggt(env, "weights", "fetch", "ggt", "--metrics", "psnr", "--weights-dir", str(weights_dir))


def images(weights_dir):
    return weights_dir / "torch" / "hub" / selfcheck.STORE


def state_file(env):
    found = list((Path(env["XDG_CACHE_HOME"]) / "ggt" / "selfcheck").glob("*.json"))
    assert len(found) == 1, found
    return json.loads(found[0].read_text())


@pytest.mark.slow
def test_fetch_then_selfcheck_passes(calib):
    _, env, _, _, w = calib
    r = fetch(env, w)
    assert r.returncode == 0 and f"calibration fetched 4 images in {images(w)}" in r.stdout, r.stdout + r.stderr
    r = ggt(env, "selfcheck", "--metrics", "psnr,ssim", "--device", "cpu", "--weights-dir", str(w))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "psnr       ok" in r.stdout and "ssim       skipped no golden value" in r.stdout
    assert "self-check passed for pyiqa 0.1.16" in r.stdout
    record = state_file(env)
    assert record["state"] == "passed" and record["device"] == "cpu"
    assert record["checked"][0]["max_deviation"] <= 2e-4
    assert fetch(env, w).stdout.startswith("calibration ok images")     # nothing fetched twice


@pytest.mark.slow
def test_a_missing_image_is_named(calib):
    server, env, _, _, w = calib
    del server.files["/cal/dist_dir/b.bmp"]
    r = fetch(env, w)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{server.url}/cal/dist_dir/b.bmp: HTTP 404 Not Found; cannot fetch b.bmp" in r.stderr
    assert not (images(w) / "dist_dir" / "b.bmp").exists()
    r = ggt(env, "selfcheck", "--metrics", "psnr", "--weights-dir", str(w))
    assert r.returncode == 1 and f"{images(w) / 'dist_dir' / 'b.bmp'}: calibration image missing" in r.stderr


@pytest.mark.slow
def test_a_wrong_sha256_is_named_and_not_kept(calib):
    server, env, _, cal, w = calib
    server.files["/cal/ref_dir/a.bmp"] = bmp(7, 3)[0]
    r = fetch(env, w)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "ref_dir/a.bmp: a.bmp has sha256 " in r.stderr
    assert f"but {cal['files']['ref_dir/a.bmp']} is pinned; the file was not kept" in r.stderr
    assert not list((images(w) / "ref_dir").glob("a.bmp*"))


@pytest.mark.slow
def test_an_interrupted_download_resumes(calib):
    server, env, _, cal, w = calib
    path = "/cal/dist_dir/a.bmp"
    size = len(server.files[path])
    server.cut[path] = 1000
    r = fetch(env, w)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"download of a.bmp interrupted after 1000 of {size} bytes; run the same command again" in r.stderr
    assert not (images(w) / "dist_dir" / "a.bmp").exists()          # never half-written
    r = fetch(env, w)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (path, "bytes=1000-", 206) in server.requests             # the rest, not all again
    got = (images(w) / "dist_dir" / "a.bmp").read_bytes()
    assert hashlib.sha256(got).hexdigest() == cal["files"]["dist_dir/a.bmp"]


@pytest.mark.slow
def test_a_golden_value_off_by_more_than_its_tolerance_fails_and_reports_say_so(calib, eval_set, identity_preds):
    _, env, path, cal, w = calib
    assert fetch(env, w).returncode == 0
    r = ggt(env, "score", identity_preds, "--reference", eval_set, "--out", str(w.parent / "r0"),
            "--metrics", "psnr", "--device", "cpu", "-q")
    assert r.returncode == 0, r.stderr
    assert "self-check not run for pyiqa 0.1.16" in r.stdout
    assert ggt(env, "selfcheck", "--metrics", "psnr", "--device", "cpu", "--weights-dir", str(w)).returncode == 0
    r = ggt(env, "score", identity_preds, "--reference", eval_set, "--out", str(w.parent / "r-ok"),
            "--metrics", "psnr", "--device", "cpu", "-q")
    assert r.returncode == 0 and "self-check" not in r.stdout + r.stderr, r.stdout + r.stderr
    fp = json.loads((w.parent / "r-ok" / "summary.json").read_text())["fingerprint"]["selfcheck"]
    assert fp["state"] == "passed" and fp["checked"][0]["metric"] == "psnr"
    cal["metrics"]["psnr"]["pyiqa"][1] += 0.01              # tolerance 2e-4
    path.write_text(yaml.safe_dump(cal))
    r = ggt(env, "selfcheck", "--metrics", "psnr", "--device", "cpu", "--weights-dir", str(w))
    assert r.returncode == 1 and "psnr       FAILED max |deviation| 0.00" in r.stdout, r.stdout + r.stderr
    assert "on b.bmp" in r.stdout and "tolerance 0.0002)\nself-check failed for pyiqa" in r.stdout
    r = ggt(env, "score", identity_preds, "--reference", eval_set, "--out", str(w.parent / "r1"),
            "--metrics", "psnr", "--device", "cpu", "-q")
    assert r.returncode == 0 and "self-check failed: psnr off by 0.00" in r.stdout
    assert "on b.bmp (tolerance 0.0002) for pyiqa 0.1.16" in r.stdout
    fp = json.loads((w.parent / "r1" / "summary.json").read_text())["fingerprint"]["selfcheck"]
    assert fp["state"] == "failed" and fp["failed"][0]["metric"] == "psnr"
    assert 0.0099 < fp["failed"][0]["max_deviation"] < 0.0101


@pytest.mark.slow
def test_a_metric_pyiqa_cannot_run_is_named(tmp_path):
    with pytest.raises(selfcheck.CalibrationError, match=r"^metric 'no_such_metric': pyiqa failed while building it"):
        selfcheck.score_metric("no_such_metric", str(tmp_path), PAIRS, "cpu")
    with pytest.raises(selfcheck.CalibrationError, match=rf"^metric 'psnr': pyiqa failed on {tmp_path}/dist_dir/a.bmp"):
        selfcheck.score_metric("psnr", str(tmp_path), PAIRS, "cpu")       # no images there


def test_the_state_is_per_install_and_device(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert selfcheck.state("cpu")["state"] == "not run"
    key = selfcheck.install_key("cpu")
    os.makedirs(os.path.dirname(selfcheck.state_path(key)))
    with open(selfcheck.state_path(key), "w") as f:
        json.dump({"state": "passed", **key}, f)
    assert selfcheck.state("cpu")["state"] == "passed"
    assert selfcheck.state("cuda:0 (NVIDIA H200)") == {"state": "not run", **selfcheck.install_key("cuda")}
    assert selfcheck.summary_line(selfcheck.state("cpu")) is None


def test_a_broken_calibration_file_is_named(tmp_path):
    bad = tmp_path / "cal.yaml"
    bad.write_text("source: x\nbase_url: y\npairs: [a.bmp]\nfiles: {}\nmetrics: {psnr: {tolerance: 1, pyiqa: [1]}}\n")
    with pytest.raises(selfcheck.CalibrationError, match=rf"{bad}: pair 'a.bmp' needs dist_dir/a.bmp"):
        selfcheck.load(str(bad))
    bad.write_text("source: x\nbase_url: y\npairs: []\nfiles: {../../.bashrc: abc}\nmetrics: {}\n")
    with pytest.raises(selfcheck.CalibrationError, match=rf"{bad}: file '../../.bashrc' must be a relative path inside"):
        selfcheck.load(str(bad))
    bad.write_text("metrics: [1, 2]\n")
    with pytest.raises(selfcheck.CalibrationError, match=rf"{bad}: not a calibration set"):
        selfcheck.load(str(bad))


def test_the_shipped_calibration_pins_pyiqa_results():
    cal = selfcheck.load(selfcheck.SHIPPED)
    assert cal.pairs == ("I03.bmp", "I04.bmp", "I06.bmp", "I08.bmp", "I19.bmp") and len(cal.files) == 10
    assert "/ef87c7a575acaac824f113b23c1433380ce273d2/" in cal.base_url
    assert cal.golden["psnr"] == (2e-4, [21.1136, 20.9872, 27.0139, 23.3002, 21.6186])


# The real calibration images, where `ggt weights fetch` put them (conftest points TORCH_HOME
# at an empty folder, so the user's default store is named here).
REAL = os.path.join(os.path.expanduser("~"), ".cache", "torch", "hub", selfcheck.STORE)
CLASSICAL = ("psnr", "ssim", "ms_ssim", "cw_ssim", "fsim", "gmsd", "vif", "vsi", "nlpd", "entropy", "piqe")


def real_images() -> str:
    cal = selfcheck.load(selfcheck.SHIPPED)
    for rel, sha in cal.files.items():
        p = os.path.join(REAL, rel)
        if not os.path.isfile(p) or file_sha256(p) != sha:
            pytest.skip(f"{p}: the calibration images are not here; `ggt weights fetch` (internet) puts them there")
    return REAL


@pytest.mark.slow
@pytest.mark.parametrize("metric", CLASSICAL)
def test_golden_values_of_classical_metrics(metric):
    root = real_images()
    cal = selfcheck.load(selfcheck.SHIPPED)
    result = selfcheck.compare(metric, selfcheck.score_metric(metric, root, cal.pairs, "cpu"), cal)
    assert result["passed"], result
