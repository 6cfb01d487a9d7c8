"""How fast `ggt leaderboard build` runs and the page renders and re-sorts, for 200 records.

    python bench/leaderboard.py [--records 200] [--pairs 500] [--runs 5] [--work DIR]

Writes --records records (each of --pairs pairs: every ggt metric, six categories, the
sha256 of every output, some NaN and +inf means, all four statuses; a fifth under ntire,
with its derived score: a second table) with the real schema (tests/leaderboard_records.py), then in one run:
  (a) `ggt leaderboard build RESULTS --out SITE` as a user runs it (a fresh interpreter),
      the median wall and CPU time of 3 runs;
  (b) in Debian's Chromium, over http.server: the page's first render (data.json parsed ->
      every table built and laid out) and a re-sort (a header clicked -> rows reordered and
      laid out), each timed in the page with performance.now() (body[data-render-ms],
      body[data-sort-ms]); median over --runs page loads and 6 sorts per load (the larger
      table), each value printed too.
Prints each against its budget (issue #10: build <= 5 s; render and re-sort < 100 ms).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

BUDGET = {"build_s": 5.0, "render_ms": 100.0, "sort_ms": 100.0}
GGT_MEANS = {"psnr": 22.0, "ssim": 0.7, "lpips": 0.25, "dists": 0.18, "musiq": 55.0, "maniqa": 0.35,
             "clipiqa": 0.5, "topiq_nr": 0.5, "niqe": 5.0}
STATUSES = ("self-reported", "verified", "self-reported", "mismatch", "pending")


def make_results(folder: str, n: int, pairs: int) -> None:
    from leaderboard_records import make_record, mean, write

    shutil.rmtree(folder, ignore_errors=True)
    for i in range(n):
        means = {k: v * (1 + 0.001 * ((i * 37) % 101)) for k, v in GGT_MEANS.items()}
        if i % 17 == 0:
            means["psnr"] = mean(means["psnr"], pairs - 1, nan=1)
        elif i % 23 == 0:
            means["psnr"] = mean(means["psnr"], pairs - 2, posinf=2)
        status = STATUSES[i % len(STATUSES)]
        proto = "ntire" if i % 5 == 2 else "ggt"        # 40 of the 200: a second table, a derived column
        write(folder, make_record(f"org{i % 40}/model-{i}", {} if status == "pending" else means, proto=proto,
                                  status=status, name=f"Model {i}", paper=f"https://arxiv.org/abs/2605.{i:05d}",
                                  pairs=pairs, outputs=pairs))


def time_build(results: str, site: str, runs: int) -> tuple[float, float]:
    """Median wall and CPU (user + system) seconds of the real CLI; CPU time says what a
    loaded machine (2 cores shared by several jobs here) adds to the wall time."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ggt_dataset.cli.main", "leaderboard", "build", results,
                        "--out", site], check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def time_page(site: str, runs: int) -> tuple[list[float], list[float], int]:
    from playwright.sync_api import sync_playwright
    from test_leaderboard_site import static_server
    from test_view_browser import CHROMIUM, FLAGS

    renders, sorts = [], []
    with static_server(site) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
            page.goto(url + "/")
            page.wait_for_selector("body[data-loaded='1']")
            renders.append(float(page.evaluate("document.body.dataset.renderMs")))
            table = page.locator("table").first.get_attribute("data-protocol")
            for col in ("ssim", "niqe", "model", "psnr", "lpips", "status"):
                page.evaluate("delete document.body.dataset.sortMs")
                page.click(f'table[data-protocol="{table}"] th[data-col="{col}"]')
                page.wait_for_function("document.body.dataset.sortMs !== undefined")
                sorts.append(float(page.evaluate("document.body.dataset.sortMs")))
            rows = page.locator("tbody tr").count()
            page.close()
        browser.close()
    return renders, sorts, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", default=os.path.join(HERE, "out", "leaderboard"))
    args = ap.parse_args()
    results, site = os.path.join(args.work, "results"), os.path.join(args.work, "site")
    make_results(results, args.records, args.pairs)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(results) for f in fs)
    build_s, build_cpu = time_build(results, site, 3)
    data_mb = os.path.getsize(os.path.join(site, "data.json")) / 2**20
    renders, sorts, rows = time_page(site, args.runs)
    render_ms, sort_ms = statistics.median(renders), statistics.median(sorts)
    print(f"{args.records} records of {args.pairs} pairs ({size / 2**20:.1f} MB of JSON; data.json "
          f"{data_mb:.2f} MB; {rows} table rows)")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; build CPU time {build_cpu:.2f} s")
    for name, value, unit in (("build_s", build_s, "s"), ("render_ms", render_ms, "ms"), ("sort_ms", sort_ms, "ms")):
        print(f"  {name:10s} {value:8.2f} {unit:2s}  budget {BUDGET[name]:g} {unit}: {value / BUDGET[name]:.2f}x")
    print(f"  every render (ms): {' '.join(f'{v:.0f}' for v in renders)}; "
          f"every sort (ms): {' '.join(f'{v:.0f}' for v in sorts)}")


if __name__ == "__main__":
    main()
