"""``ggt weights fetch`` against a local server standing in for the weight host: pyiqa asks
the Hub (``chaofengc/IQA-PyTorch-Weights``) for its files, so HF_ENDPOINT redirects it.
The real command runs in a subprocess (the Hub endpoint is read at import), on NIQE, whose
model file is small enough to make here: a file served whole, missing, with a wrong sha256,
and cut mid-download then resumed."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from file_server import FileServer
from ggt_dataset.eval.protocol import resolve_path

# Each test runs the real command (a subprocess importing torch and pyiqa): over 0.5 s of CPU.
pytestmark = pytest.mark.slow

NIQE = "niqe_modelparameters.mat"
NIQE_URL = f"/chaofengc/IQA-PyTorch-Weights/resolve/main/{NIQE}"


def niqe_model() -> bytes:
    """What pyiqa's NIQE reads: 36 means and a 36x36 covariance (archs/niqe_arch.py)."""
    import scipy.io

    rng = np.random.default_rng(0)
    a = rng.random((36, 36))
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"mu_prisparam": rng.random((1, 36)), "cov_prisparam": a @ a.T + np.eye(36)})
    return buf.getvalue()


@pytest.fixture
def host(tmp_path):
    """The server with NIQE's file, and the environment that sends pyiqa (and an empty
    calibration set: those images are test_selfcheck's) to it."""
    cal = tmp_path / "calibration.yaml"
    cal.write_text("source: none\nbase_url: http://unused.invalid\npairs: []\nfiles: {}\nmetrics: {}\n")
    with FileServer({NIQE_URL: niqe_model()}) as server:
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HUB_OFFLINE": "0", "GGT_CALIBRATION": str(cal),
               "XDG_CACHE_HOME": str(tmp_path / "xdg")}
        yield server, env, tmp_path / "w"


def fetch(env, weights_dir, protocol="ggt"):
    return subprocess.run([sys.executable, "-m", "ggt_dataset.cli.main", "weights", "fetch", protocol,
                           "--metrics", "niqe", "--weights-dir", str(weights_dir)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def placed(weights_dir):
    return weights_dir / "torch" / "hub" / "pyiqa" / NIQE


def test_fetch_downloads_from_the_weight_host(host):
    server, env, w = host
    r = fetch(env, w)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"niqe       ok       {placed(w)}" in r.stdout
    assert placed(w).read_bytes() == server.files[NIQE_URL] and (NIQE_URL, None, 200) in server.requests


def test_a_missing_weight_file_is_named(host):
    server, env, w = host
    del server.files[NIQE_URL]
    r = fetch(env, w)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "unexpected" not in r.stderr
    assert f"{server.url}{NIQE_URL}: HTTP 404 Not Found; cannot fetch {NIQE}" in r.stderr, r.stderr
    assert not placed(w).exists()


def test_a_wrong_sha256_is_named(host, tmp_path):
    server, env, w = host
    want = hashlib.sha256(b"another file").hexdigest()
    proto = tmp_path / "pinned.yaml"
    proto.write_text("include: " + resolve_path("ggt") + "\nname: pinned\nmetadata: {version: 1}\n"
                     f"metrics:\n  niqe: {{pyiqa: niqe, kind: NR, better: lower, weights: "
                     f"[{{store: pyiqa, file: {NIQE}, sha256: {want}}}]}}\n")
    r = fetch(env, w, str(proto))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    got = hashlib.sha256(server.files[NIQE_URL]).hexdigest()
    assert (f"{placed(w)}: sha256 {got[:16]}... does not match the protocol's {want[:16]} "
            "for metric 'niqe'; delete it and fetch again") in r.stderr, r.stderr


def test_an_interrupted_download_resumes(host):
    """torch.hub's download moved a cut-short file into place (and pyiqa never fetched it again)."""
    server, env, w = host
    size = len(server.files[NIQE_URL])
    server.cut[NIQE_URL] = 1000
    r = fetch(env, w)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"download of {NIQE} interrupted after 1000 of {size} bytes; run the same command again" in r.stderr, r.stderr
    assert not placed(w).exists()
    r = fetch(env, w)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (NIQE_URL, "bytes=1000-", 206) in server.requests
    assert placed(w).read_bytes() == server.files[NIQE_URL]
