"""A real `ggt view` server for tests: uvicorn on a free port, in a thread, stopped on exit; and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import uvicorn

from ggt_dataset.view.app import make_app
from ggt_dataset.view.viewer import Viewer


@contextmanager
def serving(viewer: Viewer):
    server = uvicorn.Server(uvicorn.Config(make_app(viewer, ["127.0.0.1", "localhost"]), host="127.0.0.1",
                                           port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def get(url: str, method: str = "GET", headers: dict | None = None) -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("content-type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read()


def get_json(url: str) -> tuple[int, dict]:
    status, _, body = get(url)
    return status, json.loads(body)


@contextmanager
def ggt_view(*args: str, env: dict | None = None):
    """The real `ggt view ARGS` in a subprocess; yields what it printed when it started (its URLs, warnings)."""
    proc = subprocess.Popen([sys.executable, "-m", "ggt_dataset.cli.main", "view", *args], stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})})
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while not any("open http" in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "ggt view did not start:\n" + "".join(lines)
            time.sleep(0.05)
        time.sleep(0.5)                # what it prints right after the URL (more URLs, a warning)
        yield "".join(lines)
    finally:
        proc.terminate()
        proc.wait(10)


def ggt(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real `ggt` command in a subprocess, its output captured."""
    return subprocess.run([sys.executable, "-m", "ggt_dataset.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
