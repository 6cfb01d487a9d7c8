"""kill -9 a build at several moments; the re-run must finish identical to an uninterrupted build."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import write
from test_build import shard_files

from ggt_dataset.build import build
from ggt_dataset.layout import STATE_DIR
from ggt_dataset.plan import BuildOptions

SHARD = 150_000


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory):
    import io

    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("kill") / "raw"
    rng = np.random.default_rng(0)
    for i in range(90):
        for role in ("LQ", "GT"):
            buf = io.BytesIO()
            Image.fromarray((rng.random((96, 96, 3)) * 255).astype(np.uint8)).save(buf, format="PNG")
            write(root / ("test" if i % 10 == 0 else "train") / role / ("rain", "snow", "haze")[i % 3]
                  / f"{i:04d}.png", buf.getvalue())
    return str(root)


def assert_no_truncated_final_shard(out):
    """Every file under a final name is a complete shard matching its sidecar record."""
    for rel in shard_files(out):
        side = os.path.join(out, STATE_DIR, rel + ".json")
        assert os.path.exists(side), rel
        record = json.loads(Path(side).read_text())
        assert pq.read_metadata(os.path.join(out, rel)).num_rows == record["num_rows"]


@pytest.mark.slow
def test_kill_9_then_resume_gives_identical_output(big_tree, tmp_path):
    ref = str(tmp_path / "ref" / "ggt")
    build(big_tree, ref, options=BuildOptions(shard_bytes=SHARD), progress=False)
    out = str(tmp_path / "run" / "ggt")
    cmd = [sys.executable, "-m", "ggt_dataset.cli.main", "build", big_tree, out, "-q",
           "--shard-size", str(SHARD), "--workers", "2"]
    kills = 0
    for target in (1, 5, 12):  # kill once some shards are final, at three depths
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if len(shard_files(out)) >= target if os.path.isdir(out) else False:
                break
            time.sleep(0.002)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
        assert_no_truncated_final_shard(out)
        assert not os.path.exists(os.path.join(out, "ggt_manifest.json")) or proc.returncode == 0
    assert kills >= 2, "the build finished before it could be killed; enlarge the tree"
    before = {rel: os.stat(os.path.join(out, rel)).st_mtime_ns for rel in shard_files(out)}
    result = subprocess.run(cmd, check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"({len(before)} shards reused)" in result.stdout
    # finished shards were not rewritten, and the whole output equals the uninterrupted build
    assert all(os.stat(os.path.join(out, rel)).st_mtime_ns == t for rel, t in before.items())
    assert shard_files(out) == shard_files(ref)
    for name in ("ggt_manifest.json", "README.md"):
        assert Path(os.path.join(out, name)).read_bytes() == Path(os.path.join(ref, name)).read_bytes()


@pytest.mark.slow
def test_truncated_shard_under_final_name_is_rebuilt(big_tree, tmp_path):
    out = str(tmp_path / "ggt")
    build(big_tree, out, options=BuildOptions(shard_bytes=SHARD), progress=False)
    victim = os.path.join(out, sorted(shard_files(out))[3])
    good = Path(victim).read_bytes()
    with open(victim, "wb") as f:
        f.write(good[:1000])  # damage made by something other than ggt
    report = build(big_tree, out, options=BuildOptions(shard_bytes=SHARD), progress=False)
    assert Path(victim).read_bytes() == good
    assert report.reused == len(report.results) - 1
