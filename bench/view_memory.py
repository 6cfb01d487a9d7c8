"""`ggt view`'s memory under a sweep of every image: does it stay near its cache budget?

    python bench/view_memory.py [--pairs 1000] [--width 768] [--height 512] [--work DIR] [--sizes thumb,full]

Builds (once, kept in --work, shared with bench/view_photos.py) a test split of
photo-sized pairs, starts `ggt view` with a report (worst first: the images are
scattered over the row groups) and no disk cache, then asks for every pair's LQ
and HQ in that order, 6 requests at a time as a browser does, and samples the
server's RSS after each page of 48 pairs. Prints RSS after start, the peak, the
last sample, and the growth over the start against the configured in-memory
budget (the metadata, image and thumbnail LRUs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import psutil

sys.path.insert(0, os.path.dirname(__file__))
from view import fake_report, fetch, serve
from view_photos import ensure_build

from ggt_dataset.view import index, viewer

BUDGET = index.ROW_CACHE_BYTES + index.IMAGE_CACHE_BYTES + viewer.THUMB_CACHE_BYTES


def sweep(url: str, sizes: list[str], proc) -> list[int]:
    ps = psutil.Process(proc.pid)
    first = json.loads(fetch(f"{url}/api/rows?sort=-lpips"))
    samples = [ps.memory_info().rss]
    with ThreadPoolExecutor(6) as pool:
        for page in range(1, first["pages"] + 1):
            rows = json.loads(fetch(f"{url}/api/rows?sort=-lpips&page={page}"))["rows"]
            urls = [f"{url}/api/image?key={urllib.parse.quote(r['key'])}&role={role}&size={size}"
                    for r in rows for role in ("lq", "hq") for size in sizes]
            list(pool.map(fetch, urls))
            samples.append(ps.memory_info().rss)
    return samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--sizes", default="thumb", help="comma-separated: thumb, full")
    ap.add_argument("--work", default=os.path.join(os.path.dirname(__file__), "out", "view_photos"))
    args = ap.parse_args()
    _, built = ensure_build(args.work, args.pairs, (args.width, args.height))
    with serve(built, "--report", fake_report(built, "test")) as (proc, url, _):
        samples = sweep(url, args.sizes.split(","), proc)
    mb = lambda b: f"{b / 2**20:.0f} MB"
    start, peak, last = samples[0], max(samples), samples[-1]
    print(f"{args.pairs} pairs of {args.width}x{args.height}: {2 * args.pairs} images ({args.sizes}), worst first")
    print(f"  RSS after start {mb(start)}; peak {mb(peak)}; at the end {mb(last)}")
    print(f"  growth over start: peak {mb(peak - start)}, end {mb(last - start)}; "
          f"cache budget {mb(BUDGET)}: {(peak - start) / BUDGET:.2f}x at peak")
    print("  samples (MB, one per page of 48 pairs):", " ".join(str(s >> 20) for s in samples))


if __name__ == "__main__":
    main()
