"""Throughput of the local synthesis engine against its configured concurrency, in one run.

    python bench/synth.py                              # concurrency 1 4 16 32, 1 s per call
    python bench/synth.py --concurrency 8 64 --latency 0.5 --images 256

The real Gemini client (google-genai) talks to the local fake API server, which answers
each request after a fixed latency. The ideal rate is concurrency / latency; the goal
(issue 5) is at least 80% of it. Prompts are fixed and QC is the validity stage only, so
what is measured is the engine: journal writes, retries machinery, the semaphore,
decoding and file writes, and the SDK. Each point starts from an empty OUT_RAW.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs Python 3.11


def make_lq(root: str, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    os.makedirs(root, exist_ok=True)
    for i in range(n):
        buf = io.BytesIO()
        Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8)).save(buf, format="PNG")
        with open(os.path.join(root, f"{i:05d}.png"), "wb") as f:
            f.write(buf.getvalue())


def run_point(lq: str, out: str, url: str, concurrency: int) -> tuple[float, int, float]:
    """Seconds for the whole run, calls made, and seconds from the first request to the last answer."""
    from ggt_dataset.synth.engine import SynthConfig, synthesize
    from ggt_dataset.synth.qc import QCConfig, Validity

    client = {"base_url": url, "api_key": "bench"}
    cfg = SynthConfig(backend="gemini", prompter="fixed", category="rain", concurrency=concurrency,
                      qc=QCConfig((("validity", Validity()),)), options={"backend": client})
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    report = synthesize(lq, out, cfg)
    seconds = time.perf_counter() - start
    import sqlite3

    db = sqlite3.connect(os.path.join(out, ".ggt-synth", "journal.sqlite"))
    first, last = db.execute("SELECT MIN(started), MAX(ended) FROM calls").fetchone()
    db.close()
    return seconds, report["calls"]["edit"].get("ok", 0), last - first


class ServerProcess:
    """The fake API server in a process of its own, as a real provider is: it must not
    share this process's interpreter lock with the engine being measured."""

    def __init__(self, latency: float):
        self.proc = subprocess.Popen([sys.executable, "-m", "ggt_dataset.synth.fake_server", "--latency",
                                      str(latency)], stdout=subprocess.PIPE, text=True)
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            raise SystemExit("the fake API server did not start")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 32])
    ap.add_argument("--latency", type=float, default=1.0, help="seconds the server waits per call (default "
                    "1.0; real image edits take several)")
    ap.add_argument("--images", type=int, help="LQ images per point (default 8 x concurrency, at least 16)")
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ggt-bench-synth-")
    print(f"{'concurrency':>11} {'images':>6} {'seconds':>8} {'rate/s':>8} {'ideal/s':>8} {'ratio':>6}"
          f" {'calls ratio':>11}")
    try:
        with ServerProcess(args.latency) as srv:
            for c in args.concurrency:
                n = args.images or max(16, 8 * c)
                lq = os.path.join(tmp, f"lq-{n}")
                if not os.path.isdir(lq):
                    make_lq(lq, n, args.size)
                seconds, done, calling = run_point(lq, os.path.join(tmp, "out"), srv.base_url, c)
                rate, ideal = done / seconds, c / args.latency
                print(f"{c:>11} {done:>6} {seconds:>8.2f} {rate:>8.1f} {ideal:>8.1f} {rate / ideal:>6.2f}"
                      f" {done / calling / ideal:>11.2f}", flush=True)
        with ServerProcess(0.0) as srv:
            seconds, done, _ = run_point(lq, os.path.join(tmp, "out"), srv.base_url, max(args.concurrency))
            print(f"latency 0: {1000 * seconds / done:.1f} ms of engine + SDK + server per image "
                  f"(a ceiling of {done / seconds:.0f} images/s on this machine)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("goal: ratio >= 0.80 (rate / (concurrency / latency)). ratio: the whole run (scan, calls, QC, "
          "release); calls ratio: first request to last answer")


if __name__ == "__main__":
    main()
