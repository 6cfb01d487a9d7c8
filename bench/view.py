"""How fast `ggt view` serves a page of a 100K-pair dataset, and whether its memory grows with it.

    python bench/view.py [--train 103707] [--test 500] [--small-train 10000] [--work DIR] [--pages 8]

Builds (once, kept in --work) two datasets of small pairs with `ggt build`, the
full size and a small one. For each, starts `ggt view` in its own process and
times, in the same run:
  (a) reading one row group (all columns, images included) with pyarrow: the baseline;
  (b) the first page: GET /api/rows, the server's first request (what the grid draws from);
  (c) a filtered page: category and a numeric condition, each category once (median);
  (d) pages in dataset order and filtered, median over distinct pages (warm server);
  (e) a page with all its thumbnails fetched 6 at a time, as a browser does;
  (f) an id search (a scan of the id column);
  (g) with a report of a random metric on every train pair: worst first, the first page,
      then its 96 thumbnails, which are scattered over the shards (the worst case for reads).
Then prints (b)/(a), (c)/(a) (goal: within 3x) and the server's RSS for both sizes
(goal: flat in dataset size).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
import scale


def ensure_build(work: str, n_train: int, n_test: int) -> str:
    base = os.path.join(work, f"{n_train}+{n_test}")
    built = os.path.join(base, "built")
    if os.path.isfile(os.path.join(built, "ggt_manifest.json")):
        return built
    print(f"building {n_train + n_test:,} pairs in {base} (once) ...", flush=True)
    scale.make_raw(os.path.join(base, "raw"), n_train, n_test)
    subprocess.run([sys.executable, "-m", "ggt_dataset.cli.main", "build", os.path.join(base, "raw"), built, "-q"],
                   check=True)
    return built


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def row_group_read(built: str, repeat: int) -> float:
    files = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(built, "data")) for f in fs]
    shard = max(sorted(files), key=os.path.getsize)          # a train shard: many full row groups
    pf = pq.ParquetFile(shard)
    times = [timed(lambda g=g: pq.ParquetFile(shard).read_row_group(g))[0]
             for g in range(1, min(pf.num_row_groups, repeat + 1))]     # opened anew each time, as a cold reader
    return statistics.median(times)


def fake_report(built: str, split: str = "train") -> str:
    """A `ggt score`-shaped report with a random lower-is-better metric for every pair of ``split``."""
    folder = os.path.join(os.path.dirname(built), "report")
    if os.path.isfile(os.path.join(folder, "per_image.parquet")):
        return folder
    os.makedirs(folder, exist_ok=True)
    ids = [i for f in sorted(glob.glob(os.path.join(built, "data", "*", f"{split}-*.parquet")))
           for i in pq.read_table(f, columns=["id"]).column(0).to_pylist()]
    rng = np.random.default_rng(0)
    pq.write_table(pa.table({"id": ids, "lpips": rng.random(len(ids)).astype(np.float32)}),
                   os.path.join(folder, "per_image.parquet"))
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump({"format": "ggt-score", "label": "random", "metrics": {"lpips": {"better": "lower"}},
                   "fingerprint": {"test_set": {"split": split}}}, f)
    return folder


@contextlib.contextmanager
def serve(built: str, *extra: str) -> Iterator[tuple[subprocess.Popen, str, float]]:
    """`ggt view` on a port the kernel picks (its stderr says which), stopped on leaving."""
    t = time.perf_counter()
    cache = [] if "--thumb-cache" in extra else ["--no-thumb-cache"]     # cold thumbnails on every run
    proc = subprocess.Popen([sys.executable, "-m", "ggt_dataset.cli.main", "view", built, "--port", "0", *cache,
                             *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = re.search(r"open (http://[\d.]+:\d+)/", line)
        if m:
            url = m.group(1)
            break
    else:
        raise SystemExit(f"ggt view exited with {proc.wait()}")
    try:
        while True:
            try:
                fetch(f"{url}/api/info")
                break
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit("ggt view exited") from None
                time.sleep(0.05)
        yield proc, url, time.perf_counter() - t
    finally:
        proc.terminate()
        proc.wait(10)


def page_with_thumbs(url: str, query: str) -> float:
    def run():
        rows = json.loads(fetch(f"{url}/api/rows?{query}"))["rows"]
        images = [f"{url}/api/image?key={urllib.parse.quote(r['key'])}&role={role}&size=thumb"
                  for r in rows for role in ("lq", "hq")]
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(fetch, images))
    return timed(run)[0]


def measure(built: str, pages: int) -> dict:
    baseline = row_group_read(built, 15)
    with serve(built) as (proc, url, startup):
        ps = psutil.Process(proc.pid)
        rss_start = ps.memory_info().rss
        first, body = timed(lambda: fetch(f"{url}/api/rows"))
        total = json.loads(body)["total"]
        # A new filter each time (one per category), so each is computed and its shard opened cold.
        firsts = [timed(lambda c=c: fetch(f"{url}/api/rows?category={c}&where=lq_width>=24&page=5"))
                  for c in scale.CATS]
        filtered = statistics.median(t for t, _ in firsts)
        n_filtered = json.loads(firsts[1][1])["total"]
        filt = "category=rain&where=lq_width>=24"
        step = max(1, total // 48 // pages)
        plain = statistics.median(timed(lambda p=p: fetch(f"{url}/api/rows?page={p}"))[0]
                                  for p in range(2, 2 + pages * step, step))
        filt_pages = statistics.median(timed(lambda p=p: fetch(f"{url}/api/rows?{filt}&page={p}"))[0]
                                       for p in range(10, 10 + pages))
        last = -(-total // 48)
        thumbs = statistics.median(page_with_thumbs(url, f"page={p}") for p in (last // 3, last // 2, 2 * last // 3))
        search = timed(lambda: fetch(f"{url}/api/rows?q=00123"))[0]
        rss_end = ps.memory_info().rss
    with serve(built, "--report", fake_report(built)) as (proc, url, _):
        worst = timed(lambda: fetch(f"{url}/api/rows?sort=-lpips"))[0]
        worst_thumbs = page_with_thumbs(url, "sort=-lpips&page=2")
        rss_report = psutil.Process(proc.pid).memory_info().rss
    return {"pairs": total, "filtered": n_filtered, "baseline": baseline, "startup": startup, "first": first,
            "filtered_page": filtered, "plain_median": plain, "filtered_median": filt_pages, "thumbs": thumbs,
            "search": search, "rss_start": rss_start, "rss_end": rss_end, "worst": worst,
            "worst_thumbs": worst_thumbs, "rss_report": rss_report}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=103_707)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--small-train", type=int, default=10_000)
    ap.add_argument("--work", default=os.path.join(os.path.dirname(__file__), "out", "view"))
    ap.add_argument("--pages", type=int, default=8)
    args = ap.parse_args()
    results = [measure(ensure_build(args.work, n, args.test), args.pages) for n in (args.small_train, args.train)]
    ms = lambda s: f"{s * 1000:8.1f} ms"
    for r in results:
        print(f"\n{r['pairs']:,} pairs ({r['filtered']:,} after the filter)")
        print(f"  (a) one row group, pyarrow     {ms(r['baseline'])}")
        print(f"  server start to first answer   {ms(r['startup'])}  (imports + index)")
        print(f"  (b) first page (/api/rows)     {ms(r['first'])}   ratio to (a) {r['first'] / r['baseline']:5.2f}x")
        print(f"  (c) new filter, first page     {ms(r['filtered_page'])}   ratio to (a) "
              f"{r['filtered_page'] / r['baseline']:5.2f}x")
        print(f"  (d) pages, median              {ms(r['plain_median'])}   filtered {ms(r['filtered_median'])}")
        print(f"  (e) page + 96 thumbnails       {ms(r['thumbs'])}   ratio to (a) {r['thumbs'] / r['baseline']:5.2f}x")
        print(f"  (f) id search (scan)           {ms(r['search'])}")
        print(f"  (g) worst-first page (metric)  {ms(r['worst'])}   ratio to (a) {r['worst'] / r['baseline']:5.2f}x;"
              f" its thumbnails {ms(r['worst_thumbs'])}  (RSS with the report "
              f"{r['rss_report'] / 2**20:.0f} MB)")
        print(f"  server RSS: {r['rss_start'] / 2**20:.0f} MB after start, {r['rss_end'] / 2**20:.0f} MB after the pages")
    small, big = results
    grow = (big["rss_end"] - small["rss_end"]) / (big["pairs"] - small["pairs"])
    print(f"\nRSS {big['pairs']:,} / {small['pairs']:,} pairs: {big['rss_end'] / small['rss_end']:.3f}x "
          f"({grow:.0f} bytes per extra pair)")
    ok = max(big["first"], big["filtered_page"]) / big["baseline"]
    print(f"goal: first and filtered page within 3x of one row-group read: {ok:.2f}x "
          f"({'met' if ok <= 3 else 'NOT met'})")


if __name__ == "__main__":
    main()
