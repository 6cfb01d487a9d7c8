"""Every verb, run for real as a user would, asserting on exit codes and outputs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import image_bytes, write


def ggt(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ggt_dataset.cli.main", *args], check=False,
                          capture_output=True, text=True, cwd=cwd)


@pytest.mark.slow
def test_sample_build_verify_info_publish_dry_run(tmp_path):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "ggt-100k")
    r = ggt("sample", raw, "--train", "1", "--test", "1", "--size", "48")
    assert r.returncode == 0 and "wrote 12 pairs" in r.stdout
    r = ggt("build", raw, cwd=tmp_path)  # OUT defaults to ./ggt-100k
    assert r.returncode == 0, r.stderr
    assert "12 pairs in 12 shards" in r.stdout and "test   old_photo" in r.stdout
    assert "ggt build: 100%" in r.stderr  # the progress bar
    r = ggt("verify", out, "--full")
    assert r.returncode == 0 and r.stdout.startswith("OK ") and "24 images decoded" in r.stdout
    r = ggt("info", "ggt-100k", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "train 6 pairs, test 6 pairs" in r.stdout and "streaming train[0]" in r.stdout
    r = ggt("publish", out, "--repo-id", "me/GGT-sample", "--dry-run")
    assert r.returncode == 0 and "would upload 14 files" in r.stdout and "all checks passed" in r.stdout


@pytest.mark.parametrize("args,message", [
    (("build", "/does/not/exist", "o"), "ggt build: error: /does/not/exist: no such file or directory"),
    (("verify", "/does/not/exist"), "FAILED /does/not/exist"),
    (("publish", "/does/not/exist", "--repo-id", "a/b", "--dry-run"), "not publishable"),
    (("build", ".", "o", "--shard-size", "lots"), "is not a size like 300MB"),
])
@pytest.mark.slow
def test_errors_are_messages_not_tracebacks(tmp_path, args, message):
    r = ggt(*args, cwd=tmp_path)
    assert r.returncode != 0
    assert message in r.stdout + r.stderr
    assert "Traceback" not in r.stderr


def split_option(verb):
    import argparse

    from ggt_dataset.cli.main import parser

    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return next(a for a in sub.choices[verb]._actions if "--split" in a.option_strings)


@pytest.mark.parametrize("verb", ["build", "baseline", "score", "view", "synth"])
def test_split_is_the_shared_option(verb):
    assert split_option(verb).metavar == "SPLIT"  # what add_split gives it


@pytest.mark.slow
def test_bad_tree_lists_problems_and_writes_nothing(tmp_path):
    write(tmp_path / "raw/train/LQ/rain/a.jpg", image_bytes(0, fmt="JPEG"))
    write(tmp_path / "raw/train/GT/rain/b.png", image_bytes(1))
    r = ggt("build", str(tmp_path / "raw"), str(tmp_path / "out"))
    assert r.returncode == 1 and "2 bad pair(s); nothing was written" in r.stderr
    assert "train/LQ/rain/a.jpg: LQ image has no HQ/GT partner" in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_verify_exit_code_on_a_flipped_byte(built, tmp_path):
    import shutil
    out = str(tmp_path / "copy")
    shutil.copytree(built, out)
    shard = os.path.join(out, "data/haze/test-00000-of-00001.parquet")
    data = bytearray(Path(shard).read_bytes())
    data[-100] ^= 0x80
    Path(shard).write_bytes(bytes(data))
    r = ggt("verify", out)
    assert r.returncode == 1 and "FAILED" in r.stdout and "sha256 differs" in r.stdout


def test_a_reader_that_stops_early_ends_it_quietly(tmp_path):
    """`ggt ... | head -1`: a real pipe whose reader has gone. Exit 141 as coreutils' `yes | head -1`
    does (killed by SIGPIPE), no 'Broken pipe' message, no traceback."""
    read, write_end = os.pipe()
    os.close(read)                      # the reader is gone before the first write: EPIPE every time
    try:
        r = subprocess.run([sys.executable, "-m", "ggt_dataset.cli.main", "weights", "list", "ggt",
                            "--metrics", "psnr,ssim"], stdout=write_end,
                           stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    finally:
        os.close(write_end)
    assert (r.returncode, r.stderr) == (141, "")


def test_head_of_an_output_in_a_shell_pipeline(tmp_path):
    """The same through a shell pipeline into `head -1`, as the issue reports it (whether the
    writer is still writing when head exits is up to the scheduler: 0 or 141, never an error)."""
    line = (f'"{sys.executable}" -m ggt_dataset.cli.main weights list ggt --metrics psnr,ssim | head -1; '
            'echo "status ${PIPESTATUS[0]}"')
    r = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=120, check=False)
    assert r.stdout.startswith("psnr ") and r.stdout.rstrip().endswith(("status 0", "status 141"))
    assert r.stderr == ""


QUICK_EXIT = r"""
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from ggt_dataset.cli.main import entry

pool = ThreadPoolExecutor(1)       # left open: its idle worker must be told to stop, not waited on
pool.submit(print, "pool ran").result()

class Teardown:
    def __del__(self):      # runs in the interpreter's teardown, which the command skips
        print("teardown ran", flush=True)

kept = Teardown()
atexit.register(print, "atexit ran")
threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished"))).start()
sys.argv = ["ggt", *sys.argv[1:]]
entry()
"""


@pytest.mark.parametrize("args,code", [(("weights", "list", "ggt", "--metrics", "psnr"), 0),
                                       (("build", "/does/not/exist", "o"), 1)])
@pytest.mark.slow
def test_the_command_exits_as_python_does_less_the_teardown(tmp_path, args, code):
    """entry(): main()'s exit code, a thread that is not a daemon finishes, a thread pool left
    open does not hang it, atexit handlers run, the output is flushed; the objects' teardown does
    not run (that is the time it saves)."""
    r = subprocess.run([sys.executable, "-c", QUICK_EXIT, *args], capture_output=True, text=True,
                       timeout=60, check=False, cwd=tmp_path)
    assert r.returncode == code, r.stderr
    lines = r.stdout.splitlines()
    assert lines[-2:] == ["thread finished", "atexit ran"] and "teardown ran" not in lines, r.stdout
    assert ("psnr " in r.stdout) == (code == 0) and ("no such file" in r.stderr) == (code == 1)
