"""``ggt synth --engine ray --address``: an address where no cluster answers is a quick, clear error.

No Ray cluster is started here (the multi-node tests are in test_synth_ray.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import image_bytes, write


@pytest.mark.parametrize("how", ["--address", "RAY_ADDRESS"])
def test_an_address_with_no_cluster_is_refused_before_anything_is_made(tmp_path, how, refused_port):
    pytest.importorskip("ray")
    write(str(tmp_path / "lq" / "a.png"), image_bytes(1, size=(48, 40)))
    address = f"127.0.0.1:{refused_port}"
    cmd = [sys.executable, "-m", "ggt_dataset.cli.main", "synth", str(tmp_path / "lq"), str(tmp_path / "out"),
           "--engine", "ray", "-q"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    if how == "RAY_ADDRESS":
        env["RAY_ADDRESS"] = address
    start = time.monotonic()
    done = subprocess.run([*cmd, *(["--address", address] if how == "--address" else [])], check=False,
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1 and time.monotonic() - start < 30
    assert f"no Ray cluster answers at {address}" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()

