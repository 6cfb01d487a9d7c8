"""`ggt view` on photo-sized pairs: what a worst-first page of thumbnails costs.

    python bench/view_photos.py [--pairs 300] [--width 1536] [--height 1024] [--work DIR]

bench/view.py measures paging over 104K tiny pairs; this measures the images. It
builds (once, kept in --work) a test split of photo-sized pairs the way GGT-100K
stores them (LQ: JPEG photos; HQ: PNG), with `ggt build` and its default 32 MiB
row groups, plus a report that scores every pair with a random metric. Then, in the
same run:
  (a) baseline: the same 96 thumbnails made straight from the raw files, no Parquet,
      on the same number of threads the browser uses (6);
  (b) the worst-first page's 96 thumbnails through the server, cold: scattered over the
      row groups, as a browser fetches them (6 at a time);
  (c) the same page again in the same server (memory caches warm);
  (d) the same page after a restart of the server (thumbnails from the disk cache);
and prints (b)/(a), (c)/(a) and (d)/(a).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from view import fake_report, fetch, page_with_thumbs, serve, timed

from ggt_dataset.schema import CATEGORIES
from ggt_dataset.view import thumbs


def _sources() -> list[np.ndarray]:
    import skimage.data as d

    return [getattr(d, n)() for n in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field")]


def make_raw(root: str, n: int, size: tuple[int, int]) -> None:
    """``n`` test pairs: a skimage photo resized to ``size`` with per-pair noise (so no two compress alike)."""
    rng = np.random.default_rng(0)
    srcs = [np.asarray(Image.fromarray(s).resize(size, Image.Resampling.BICUBIC), np.int16) for s in _sources()]
    for i in range(n):
        cat = CATEGORIES[i % len(CATEGORIES)]
        hq = np.clip(srcs[i % len(srcs)] + rng.normal(0, 4, srcs[0].shape), 0, 255).astype(np.uint8)
        lq = np.clip(hq * 0.6 + 40 + rng.normal(0, 8, hq.shape), 0, 255).astype(np.uint8)
        for role, arr, fmt, ext in (("LQ", lq, "JPEG", "jpg"), ("GT", hq, "PNG", "png")):
            folder = os.path.join(root, "test", role, cat)
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(arr).save(os.path.join(folder, f"{i:05d}.{ext}"), format=fmt, quality=90)


def ensure_build(work: str, n: int, size: tuple[int, int]) -> tuple[str, str]:
    base = os.path.join(work, f"{n}-{size[0]}x{size[1]}")
    raw, built = os.path.join(base, "raw"), os.path.join(base, "built")
    if not os.path.isfile(os.path.join(built, "ggt_manifest.json")):
        print(f"making {n} photo-sized pairs in {base} (once) ...", flush=True)
        make_raw(raw, n, size)
        subprocess.run([sys.executable, "-m", "ggt_dataset.cli.main", "build", raw, built, "-q"], check=True)
    return raw, built


def baseline(raw: str, url: str, query: str) -> float:
    """The page's thumbnails made from the raw files, 6 threads: decode + resize + encode, nothing else."""
    rows = json.loads(fetch(f"{url}/api/rows?{query}"))["rows"]
    paths = [os.path.join(raw, "test", folder, r["id"] + ext) for r in rows
             for folder, ext in (("LQ", ".jpg"), ("GT", ".png"))]

    def one(path: str) -> bytes:
        with open(path, "rb") as f:
            return thumbs.thumbnail(f.read())

    def run():
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(one, paths))
    return timed(run)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--width", type=int, default=1536)
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--work", default=os.path.join(os.path.dirname(__file__), "out", "view_photos"))
    args = ap.parse_args()
    raw, built = ensure_build(args.work, args.pairs, (args.width, args.height))
    report = fake_report(built, "test")
    query = "sort=-lpips&page=2"
    with tempfile.TemporaryDirectory() as cache:
        env_cache = ["--thumb-cache", cache]      # a new one: the user's own cache would make (b) warm
        with serve(built, "--report", report, *env_cache) as (_, url, _):
            base = baseline(raw, url, query)
            cold = page_with_thumbs(url, query)
            warm = page_with_thumbs(url, query)
        with serve(built, "--report", report, *env_cache) as (_, url, _):
            restarted = page_with_thumbs(url, query)
    shard_mb = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(os.path.join(built, "data"))
                   for f in fs) / 2**20
    print(f"\n{args.pairs} pairs of {args.width}x{args.height} (LQ JPEG, HQ PNG), {shard_mb:.0f} MB of shards; "
          f"worst-first page 2: 96 thumbnails")
    print(f"  (a) from the raw files (baseline) {base * 1000:8.0f} ms")
    for name, t in (("(b) server, cold", cold), ("(c) server, same page again", warm),
                    ("(d) server restarted", restarted)):
        print(f"  {name:<32}  {t * 1000:8.0f} ms   ratio to (a) {t / base:5.2f}x")


if __name__ == "__main__":
    main()
