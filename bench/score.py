"""`ggt score` against pyiqa's own way, and against the metric compute alone, in one run.

    python bench/score.py --device cuda --pairs 500 --size 1024   # issue 13's figures on one GPU
    python bench/score.py                           # no GPU: 24 pairs of 256x256, psnr + ssim, CPU
    python bench/score.py --pairs 200 --size 512 --device cpu     # the CPU figures of issue 3
    python bench/score.py --pairs 1 --size 3840x2160 --rss-only   # peak RSS of a 4K pair
    python bench/score.py --pairs 8 --ssim-only     # SSIM alone, pyiqa's kernel vs ours, one batch
    python bench/score.py --submissions 5           # 5 checkpoints in one `ggt score` vs 5 separate runs
    bash bench/gpu_check.sh                         # on a lent GPU: install, CUDA tests, this bench

(a) pyiqa's own way: one metric at a time over the files, batch 1, pyiqa reading
    each file itself (what its command and most lab scripts do), timed on --pyiqa-pairs
    pairs and scaled to all;
(b) the run as `ggt score` does it (decode pool, batches, uploads, every metric, summary,
    report writing);
(c) the metric compute alone: the same metrics on batches already on the device, batched
    as (b) batches them; each metric's time is printed.
On a GPU every metric of the `ggt` protocol runs; those whose weight files are not here (no
network) run pyiqa's real architecture with random weights (random_weights.py), labelled
"random weights, timing only", and never reach a report. Also printed: the peak GPU memory
per batch size. Without a GPU the same command prints the CPU figures, and says so.
Goals (issue 13, one H200, 500 pairs of 1024^2): (b) at most 1.15x (c); the whole ggt protocol
in at most 60 s wall; (b) at least 5x faster than (a) with the same scores; GPU memory bounded
by the batch. Issue 3 and 13 on the CPU: (b) at least 5x faster than (a) for psnr + ssim,
scores within 1e-10; a 4K pair scored in at most 2 GB peak RSS.
--submissions N (issue 13.3): N prediction folders scored by one `ggt score A/ B/ ... --out DIR`
against N separate runs, in this process (api.score_many vs api.score) and as commands (each
paying its own start-up); goal: at most 0.5x their total, every per-image table identical.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

CATS = ("mixed", "rain", "haze", "snow", "low_light", "old_photo")
# Without a GPU: fewer, smaller pairs and the offline metrics, so the CPU figures take a minute.
CPU_PAIRS, CPU_SIDE, CPU_METRICS = 24, 256, ("psnr", "ssim")


def make_raw(root: str, n: int, size: tuple[int, int]) -> None:
    """n test pairs of size (width, height): a photo-like HQ (PNG) and a noisy, darkened LQ (PNG),
    written on a thread per core (500 pairs of 1024^2: about a minute on one)."""
    from concurrent.futures import ThreadPoolExecutor

    from skimage import data

    photos = [np.asarray(Image.fromarray(getattr(data, p)()[..., :3]).resize(size, Image.BICUBIC))
              for p in ("astronaut", "coffee", "chelsea", "rocket")]

    def pair(i: int) -> None:
        cat = CATS[i % len(CATS)]
        hq = np.roll(photos[i % len(photos)], shift=i * 7, axis=1)
        noise = np.random.default_rng([0, i]).normal(0, 12, hq.shape)      # per pair: any order
        lq = np.clip(hq * 0.8 + noise, 0, 255).astype(np.uint8)
        for role, img in (("LQ", lq), ("GT", hq)):
            path = os.path.join(root, role, "test", cat, f"p{i:05d}.png")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(img).save(path, compress_level=1)

    with ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        list(pool.map(pair, range(n)))


def ssim_kernels(n: int, size: tuple[int, int], reps: int = 2) -> None:
    """SSIM alone on one in-memory batch of n random pairs: pyiqa's conv2d vs eval/ssim.py."""
    import torch
    from ggt_dataset.eval.metrics import Scorer
    from ggt_dataset.eval.protocol import load

    rng = np.random.default_rng(1)
    x, y = (torch.from_numpy(rng.integers(0, 256, (n, 3, size[1], size[0]), dtype=np.uint8)).float().div_(255)
            for _ in range(2))
    scorers = {k: Scorer(load("ggt").metric("ssim"), "cpu", kernel=k) for k in ("pyiqa", "fast")}
    for s in scorers.values():
        s(x[:1], y[:1])               # imports and first-call set-up outside the clock
    for _ in range(reps):
        t = {}
        for k, s in scorers.items():
            t0 = time.perf_counter()
            s(x, y)
            t[k] = time.perf_counter() - t0
        print(f"SSIM of {n} pairs of {size[0]}x{size[1]}: pyiqa {t['pyiqa']:.2f} s, ours {t['fast']:.2f} s: "
              f"{t['pyiqa'] / t['fast']:.1f}x (1-min load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores)")


def _command(argv: list[str]) -> float:
    """Seconds one `ggt` command takes in a fresh process (imports included, as a user pays them)."""
    import subprocess

    t = time.perf_counter()
    code = "import sys\nfrom ggt_dataset.cli.main import main\nsys.exit(main(sys.argv[1:]))"
    subprocess.run([sys.executable, "-c", code, *argv], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def many_vs_separate(tmp: str, preds: str, ds: str, n: int, names: list[str], device: str, batch: int,
                     kernel: str) -> None:
    """N checkpoints (copies of the predictions) in one call against N separate calls."""
    import shutil

    import pyarrow.parquet as pq
    from ggt_dataset.eval import api

    folders = [shutil.copytree(preds, os.path.join(tmp, "subs", f"ckpt-{k}")) for k in range(n)]
    kw = {"metrics": names, "device": device, "batch_size": batch, "kernel": kernel}
    t0 = time.perf_counter()
    for f in folders:
        api.score(f, ds, out=os.path.join(tmp, "sep", os.path.basename(f)), cache_dir=os.path.join(tmp, "c1"), **kw)
    t_sep = time.perf_counter() - t0
    t0 = time.perf_counter()
    api.score_many(folders, ds, out=os.path.join(tmp, "many"), cache_dir=os.path.join(tmp, "c2"), **kw)
    t_many = time.perf_counter() - t0
    table = lambda where, f: pq.read_table(os.path.join(tmp, where, os.path.basename(f), "per_image.parquet"))
    same = all(table("many", f).equals(table("sep", f)) for f in folders)
    common = ["--reference", ds, "--metrics", ",".join(names), "--device", device, "--kernel", kernel,
              "--batch-size", str(batch), "-q"]
    c_sep = sum(_command(["score", f, "--out", os.path.join(tmp, "csep", os.path.basename(f)), *common])
                for f in folders)
    c_many = _command(["score", *folders, "--out", os.path.join(tmp, "cmany"), *common])
    print(f"{n} submissions: separate api.score {t_sep:.2f} s, one api.score_many {t_many:.2f} s: "
          f"{t_many / t_sep:.2f}x; as commands: {n} x `ggt score` {c_sep:.2f} s, one `ggt score` "
          f"{c_many:.2f} s: {c_many / c_sep:.2f}x (goal <= 0.5x); per-image tables identical: {same}; "
          f"1-min load average at end {os.getloadavg()[0]:.1f}")


def peak_rss_of_cli(preds: str, ds: str, out: str, names: list[str], device: str, kernel: str) -> float:
    """Run the real command in a child process and have it report its own peak RSS (VmHWM).

    (RUSAGE_CHILDREN would count the pages a forked child shares with this big parent, and the
    child's own ru_maxrss keeps the forking parent's peak across exec; VmHWM is the child's.)
    """
    import subprocess

    code = ("import sys\nfrom ggt_dataset.cli.main import main\nrc = main(sys.argv[1:])\n"
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')),"
            " file=sys.stderr)\nsys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, "score", preds, "--reference", ds, "--out", out,
                           "--metrics", ",".join(names), "--device", device, "--kernel", kernel, "-q"],
                          check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return int(done.stderr.strip().splitlines()[-1]) / 1024


def protocol_figures(args, tmp: str, preds: str, gts: str, ds: str, names: list[str] | None,
                     device: str, size: tuple[int, int]) -> dict:
    """Issue #13.2's figures: each metric timed, the run against its compute alone and pyiqa's way,
    peak GPU memory per batch size."""
    import protocol_timing as pt
    from ggt_dataset.eval.scoring import default_workers

    t0 = time.perf_counter()
    proto, scorers = pt.build(names, device, args.kernel)
    t_build = time.perf_counter() - t0
    ids = sorted(os.path.relpath(os.path.join(r, f), preds)[:-4] for r, _, fs in os.walk(preds) for f in fs)
    pairs = pt.decode_all(preds, gts, ids)
    pt.compute_alone(scorers, pairs[:args.batch_size], args.batch_size, device)   # warm-up, untimed
    alone = pt.compute_alone(scorers, pairs, args.batch_size, device, proto.crop_border)
    del pairs
    t_run, t_report, result = pt.run_and_report(proto, scorers, preds, ds, tmp, args.batch_size, device)
    n_a = min(args.pyiqa_pairs, len(ids))
    t_a, scores_a = pt.pyiqa_way(scorers, preds, gts, ids[:n_a], device)
    rows = {r["id"]: r for r in result.rows}
    diffs = {s.name: max(abs(rows[i][s.name] - v) for i, v in scores_a[s.name].items()) for s in scorers}
    t_c, t_b, t_a_all = sum(alone.values()), t_run + t_report, t_a * len(ids) / n_a
    fig = {"pairs": len(ids), "size": f"{size[0]}x{size[1]}", "device": device, "batch": args.batch_size,
           "workers": default_workers(), "random_weights": [s.name for s in scorers if s.unweighted],
           "build_s": round(t_build, 2), "compute_alone_s": {k: round(v, 3) for k, v in alone.items()},
           "run_s": round(t_run, 3), "report_s": round(t_report, 3), "overhead_vs_compute": round(t_b / t_c, 3),
           "pyiqa_way_s": round(t_a, 3), "pyiqa_way_pairs": n_a, "speedup_vs_pyiqa": round(t_a_all / t_b, 2),
           "max_abs_score_diff": diffs}
    print(f"metrics built in {t_build:.1f} s ({len(fig['random_weights'])} with random weights)")
    print("metric compute alone, batched as the run batches them, on batches already on the device "
          "(no-reference metrics score the prediction and the ground truth, as a first run does):")
    for s in scorers:
        print(f"  {pt.label(s):48s} {alone[s.name]:8.2f} s")
    print(f"  {'(c) all ' + str(len(scorers)) + ' metrics':48s} {t_c:8.2f} s")
    print(f"(b) the whole run as `ggt score` does it: {t_run:.2f} s scoring + {t_report:.2f} s writing the report "
          f"(of the metrics with real weights: {', '.join(s.name for s in scorers if not s.unweighted) or 'none'})"
          f" = {t_b:.2f} s wall (goal for the ggt protocol on one H200: <= 60 s)")
    print(f"(b)/(c) = {fig['overhead_vs_compute']}x the metric compute alone (goal <= 1.15x)")
    print(f"(a) pyiqa's way (one metric at a time, batch 1, its own file reads): {t_a:.2f} s for {n_a} pairs"
          + (f", {t_a_all:.2f} s scaled to {len(ids)}" if n_a < len(ids) else "")
          + f"; (a)/(b) = {fig['speedup_vs_pyiqa']}x (goal >= 5x)")
    print(f"max |(b) - (a)| per image over those {n_a} pairs: "
          + ", ".join(f"{pt.label(s)} {diffs[s.name]:.1e}" for s in scorers))
    if device.startswith("cuda"):
        sizes = [int(b) for b in args.peak_batches.split(",")]
        fig["peak_gib"] = pt.peak_memory(proto, scorers, preds, ds, tmp, sizes, device)
        print("peak GPU memory (torch.cuda.max_memory_allocated, a run of 2 batches, every metric, weights "
              "included): " + ", ".join(f"batch {b}{pt.capped(b, size, device)}: {g:.2f} GiB"
                                       for b, g in fig["peak_gib"].items()))
    return fig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=None, help=f"default: 500 on a GPU, {CPU_PAIRS} on the CPU")
    ap.add_argument("--size", default=None, help="side, or WIDTHxHEIGHT (3840x2160); default: 1024 on a GPU, "
                    f"{CPU_SIDE} on the CPU")
    ap.add_argument("--kernel", default="fast", help="ggt score's --kernel for (b): fast (default) or pyiqa")
    ap.add_argument("--ssim-only", action="store_true", help="only SSIM's two kernels on in-memory pairs")
    ap.add_argument("--rss-only", action="store_true", help="only the command's peak RSS (no timings)")
    ap.add_argument("--device", default="auto", help="auto (default), cuda or cpu; cuda without a GPU: the "
                    "CPU figures, said so")
    ap.add_argument("--metrics", default=None, help="comma-separated ggt metrics; default: all of them on a "
                    f"GPU, {','.join(CPU_METRICS)} on the CPU (the learned ones take seconds per image there)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--pyiqa-pairs", type=int, default=50, help="pairs pyiqa's way is timed on (then scaled)")
    ap.add_argument("--peak-batches", default="1,4,8,16", help="batch sizes whose peak GPU memory is printed")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--submissions", type=int, default=0,
                    help="score N copies of the predictions in one call vs N calls (issue 13.3), only that")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    gpu = torch.cuda.is_available()
    device = ("cuda" if gpu else "cpu") if args.device == "auto" else args.device
    if device.startswith("cuda") and not gpu:
        print(f"no GPU here (torch {torch.__version__}: torch.cuda.is_available() is False): the CPU figures")
        device = "cpu"
    on_cpu = device == "cpu"
    args.pairs = args.pairs or (CPU_PAIRS if on_cpu else 500)
    if on_cpu and args.size is None:
        args.size = str(CPU_SIDE)
    names = args.metrics.split(",") if args.metrics else (list(CPU_METRICS) if on_cpu else None)
    load0 = os.getloadavg()[0]      # other work on the machine slows both ways; say how much there was
    w, _, h = (args.size or "1024").partition("x")
    size = (int(w), int(h or w))
    if args.ssim_only:
        ssim_kernels(args.pairs, size)
        return 0
    from ggt_dataset.eval.scoring import default_workers

    from ggt_dataset.build import build

    with tempfile.TemporaryDirectory(prefix="ggt-bench-score-") as tmp:
        make_raw(os.path.join(tmp, "raw"), args.pairs, size)
        build(os.path.join(tmp, "raw"), os.path.join(tmp, "ds"), progress=False)
        preds, gts = os.path.join(tmp, "raw", "LQ", "test"), os.path.join(tmp, "raw", "GT", "test")
        ds = os.path.join(tmp, "ds")
        where = torch.cuda.get_device_name(0) if not on_cpu else "CPU"
        print(f"{args.pairs} pairs of {size[0]}x{size[1]} PNG, device {device} ({where}), "
              f"metrics {', '.join(names) if names else 'every ggt metric'}, batch {args.batch_size}, "
              f"{default_workers()} decode threads; 1-min load average {load0:.1f} on "
              f"{len(os.sched_getaffinity(0))} cores")
        if args.submissions:
            many_vs_separate(tmp, preds, ds, args.submissions, names or ["psnr", "ssim"], device,
                             args.batch_size, args.kernel)
            return 0
        if args.rss_only:
            names = names or ["psnr", "ssim"]
            rss_mb = peak_rss_of_cli(preds, ds, os.path.join(tmp, "r"), names, device, args.kernel)
            print(f"peak RSS of `ggt score` as a command: {rss_mb:.0f} MB")
            return 0
        import pyiqa  # noqa: F401  (import time is paid once, outside the clocks)

        fig = protocol_figures(args, tmp, preds, gts, ds, names, device, size)
    print(f"1-min load average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(fig, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
