"""The real size: 103,707 train + 500 test small pairs through build, verify and load.

    python bench/scale.py [--train 103707] [--test 500] [--work DIR]

Prints, per step, wall time and the step's own peak RSS (each step is a child
process), and checks exact counts. Images are 24x24 PNG/JPEG with per-pair noise,
so every pair's bytes differ and every step does its full per-file work.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

CATS = ("mixed", "rain", "haze", "snow", "low_light", "old_photo")

LOAD = """
import sys, collections, datasets, ggt_dataset
out = sys.argv[1]
ds = datasets.load_dataset(out)
counts = {s: len(d) for s, d in ds.items()}
cats = collections.Counter(ds["test"].with_format("arrow")["category"].to_pylist())
stream = datasets.load_dataset(out, split="test", streaming=True)
n_stream = sum(1 for row in stream if row["lq"].size == (24, 24))
# A stream left after its first row: this process must still exit 0 (see ggt_dataset/loading.py).
rain = ggt_dataset.load(out, "rain", split="train", streaming=True)
first = next(iter(rain))
print({"counts": counts, "test_categories": dict(sorted(cats.items())), "streamed_test_pairs": n_stream,
       "first_rain": first["id"]})
"""


def make_raw(root: str, n_train: int, n_test: int) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for role in ("LQ", "GT"):
            for cat in CATS:
                os.makedirs(os.path.join(root, split, role, cat), exist_ok=True)
    for i in range(n_train + n_test):
        split = "train" if i < n_train else "test"
        cat = CATS[i % len(CATS)]
        arr = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        for role, fmt, ext in (("LQ", "JPEG", "jpg"), ("GT", "PNG", "png")):
            d = os.path.join(root, split, role, cat)
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format=fmt)
            with open(os.path.join(d, f"{i:07d}.{ext}"), "wb") as f:
                f.write(buf.getvalue())


def step(name: str, cmd: list[str]) -> str:
    """Run one step as a child; print its wall time and its own peak RSS (wait4's rusage)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        rc = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read()
        print(json.dumps({"step": name, "seconds": round(elapsed, 1),
                          "peak_rss_MB": round(usage.ru_maxrss / 1024), "rc": rc}), flush=True)
        if rc != 0:
            raise SystemExit(f"{name} failed:\n{text}\n{err.read()[-3000:]}")
        return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--train", type=int, default=103_707)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        raw, out = os.path.join(work, "raw"), os.path.join(work, "ggt-100k")
        t0 = time.perf_counter()
        make_raw(raw, args.train, args.test)
        print(json.dumps({"step": "make raw", "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
        ggt = [sys.executable, "-m", "ggt_dataset.cli.main"]
        os.sync()
        step("cp -r raw + sync (baseline)", ["sh", "-c", f"cp -r '{raw}' '{work}/copy' && sync"])
        subprocess.run(["rm", "-rf", f"{work}/copy"], check=True)
        os.sync()
        print(step("build", [*ggt, "build", raw, out, "-q"]), flush=True)
        print(step("rebuild (all reused)", [*ggt, "build", raw, out, "-q"]).splitlines()[0], flush=True)
        print(step("verify --full", [*ggt, "verify", out, "--full"]), flush=True)
        env_cache = os.path.join(work, "hf")
        os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=env_cache)
        result = step("load_dataset + streaming", [sys.executable, "-c", LOAD, out])
        print(result, flush=True)
        manifest = json.loads(Path(os.path.join(out, "ggt_manifest.json")).read_text())
        expected = {"train": args.train, "test": args.test}
        got = eval(result.strip().splitlines()[-1])  # our own child's repr of a dict
        ok = got["counts"] == expected and got["streamed_test_pairs"] == args.test
        print(f"exact counts: {'yes' if ok else 'NO'} (expected {expected}, load_dataset gave "
              f"{got['counts']}; manifest {manifest['totals']})")


if __name__ == "__main__":
    main()
