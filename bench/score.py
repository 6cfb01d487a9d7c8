"""`ggt score` against pyiqa's own way, and against the metric compute alone, in one run.

    python bench/score.py                           # 200 pairs of 512x512, psnr + ssim, CPU
    python bench/score.py --pairs 500 --size 1024 --device cuda
    python bench/score.py --pairs 1 --size 3840x2160 --rss-only   # peak RSS of a 4K pair
    python bench/score.py --pairs 8 --ssim-only     # SSIM alone, pyiqa's kernel vs ours, one batch
    python bench/score.py --submissions 5           # 5 checkpoints in one `ggt score` vs 5 separate runs

(a) pyiqa's own way: one metric at a time over the files, batch 1, pyiqa reading
    each file itself (what its command and most lab scripts do);
(b) `ggt score` (the library call behind the command, report writing included);
(c) the metric compute alone: the same metrics on tensors already in memory,
    batched as (b) batches them.
Goals (issue 3): (b) at least 3x faster than (a) with identical scores; (b) at
most 1.15x (c). Issue 13: (b), with SSIM on eval/ssim.py's kernel, at least 5x faster
than (a), scores within 1e-10; a 4K pair scored in at most 2 GB peak RSS. Metrics:
those of the `ggt` protocol that run offline (psnr, ssim).
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
from pathlib import Path

import numpy as np
from PIL import Image

CATS = ("mixed", "rain", "haze", "snow", "low_light", "old_photo")


def make_raw(root: str, n: int, size: tuple[int, int]) -> None:
    """n test pairs of size (width, height): a photo-like HQ (PNG) and a noisy, darkened LQ (PNG)."""
    from skimage import data

    rng = np.random.default_rng(0)
    photos = [np.asarray(Image.fromarray(getattr(data, p)()[..., :3]).resize(size, Image.BICUBIC))
              for p in ("astronaut", "coffee", "chelsea", "rocket")]
    for i in range(n):
        cat = CATS[i % len(CATS)]
        hq = np.roll(photos[i % len(photos)], shift=i * 7, axis=1)
        lq = np.clip(hq * 0.8 + rng.normal(0, 12, hq.shape), 0, 255).astype(np.uint8)
        for role, img in (("LQ", lq), ("GT", hq)):
            path = os.path.join(root, role, "test", cat, f"p{i:05d}.png")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(img).save(path, compress_level=1)


def pyiqa_way(preds: str, gts: str, ids: list[str], names: list[str], device: str) -> tuple[float, dict]:
    import pyiqa
    from ggt_dataset.eval.protocol import load

    proto = load("ggt")
    scores = {}
    t = time.perf_counter()
    for name in names:
        spec = proto.metric(name)
        m = pyiqa.create_metric(spec.pyiqa, device=device, **spec.pyiqa_options())
        scores[name] = {i: float(m(os.path.join(preds, i + ".png"), os.path.join(gts, i + ".png")))
                        for i in ids}
    return time.perf_counter() - t, scores


def compute_alone(preds: str, gts: str, ids: list[str], names: list[str], device: str, batch: int,
                  kernel: str) -> float:
    """The metrics on pre-decoded tensors, batched like ggt score: the floor for (b)."""
    from ggt_dataset.eval.decode import decode
    from ggt_dataset.eval.metrics import Scorer
    from ggt_dataset.eval.protocol import load
    from ggt_dataset.eval.scoring import _tensor

    proto = load("ggt")
    scorers = [Scorer(proto.metric(n), device, kernel=kernel) for n in names]
    pairs = [(decode(Path(os.path.join(preds, i + ".png")).read_bytes(), i),
              decode(Path(os.path.join(gts, i + ".png")).read_bytes(), i)) for i in ids]
    t = time.perf_counter()
    for k in range(0, len(pairs), batch):
        chunk = pairs[k:k + batch]
        tensors = {}
        for s in scorers:
            if s.dtype not in tensors:
                tensors[s.dtype] = (_tensor([p for p, _ in chunk], s.dtype), _tensor([g for _, g in chunk], s.dtype))
            s(*tensors[s.dtype])
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - t


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--size", default="512", help="side, or WIDTHxHEIGHT (3840x2160)")
    ap.add_argument("--kernel", default="fast", help="ggt score's --kernel for (b): fast (default) or pyiqa")
    ap.add_argument("--ssim-only", action="store_true", help="only SSIM's two kernels on in-memory pairs")
    ap.add_argument("--rss-only", action="store_true", help="only the command's peak RSS (no timings)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--metrics", default="psnr,ssim")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--submissions", type=int, default=0,
                    help="score N copies of the predictions in one call vs N calls (issue 13.3), only that")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = args.metrics.split(",")
    load0 = os.getloadavg()[0]      # other work on the machine slows both ways; say how much there was
    w, _, h = args.size.partition("x")
    size = (int(w), int(h or w))
    if args.ssim_only:
        ssim_kernels(args.pairs, size)
        return 0
    from ggt_dataset.eval import api

    from ggt_dataset.build import build

    with tempfile.TemporaryDirectory(prefix="ggt-bench-score-") as tmp:
        make_raw(os.path.join(tmp, "raw"), args.pairs, size)
        build(os.path.join(tmp, "raw"), os.path.join(tmp, "ds"), progress=False)
        preds, gts = os.path.join(tmp, "raw", "LQ", "test"), os.path.join(tmp, "raw", "GT", "test")
        if args.submissions:
            print(f"{args.pairs} pairs of {size[0]}x{size[1]}, metrics {', '.join(names)}, device {args.device}; "
                  f"1-min load average {load0:.1f} on {os.cpu_count()} cores")
            many_vs_separate(tmp, preds, os.path.join(tmp, "ds"), args.submissions, names, args.device,
                             args.batch_size, args.kernel)
            return 0
        if args.rss_only:
            rss_mb = peak_rss_of_cli(preds, os.path.join(tmp, "ds"), os.path.join(tmp, "r"), names, args.device,
                                     args.kernel)
            print(f"{args.pairs} pair(s) of {size[0]}x{size[1]}, metrics {', '.join(names)}: "
                  f"peak RSS of `ggt score` as a command: {rss_mb:.0f} MB")
            return 0
        ids = sorted(os.path.relpath(os.path.join(r, f), preds)[:-4] for r, _, fs in os.walk(preds) for f in fs)
        import pyiqa  # noqa: F401  (import time is paid once by both ways, outside the clocks)

        t_a, scores_a = pyiqa_way(preds, gts, ids, names, args.device)
        t0 = time.perf_counter()
        summary = api.score(preds, os.path.join(tmp, "ds"), out=os.path.join(tmp, "report"), metrics=names,
                            device=args.device, batch_size=args.batch_size, cache_dir=os.path.join(tmp, "c"),
                            kernel=args.kernel)
        t_b = time.perf_counter() - t0
        t_c = compute_alone(preds, gts, ids, names, args.device, args.batch_size, args.kernel)
        import pyarrow.parquet as pq

        rows = pq.read_table(os.path.join(tmp, "report", "per_image.parquet")).to_pylist()
        rss_mb = peak_rss_of_cli(preds, os.path.join(tmp, "ds"), os.path.join(tmp, "report-cli"), names,
                                 args.device, args.kernel)
        diffs = {n: max(abs(r[n] - scores_a[n][r["id"]]) for r in rows) for n in names}
    fig = {"pairs": args.pairs, "size": args.size, "device": summary["fingerprint"]["device"],
           "kernels": summary["fingerprint"]["kernels"], "metrics": names, "pyiqa_way_s": round(t_a, 3), "ggt_score_s": round(t_b, 3),
           "compute_alone_s": round(t_c, 3), "speedup_vs_pyiqa": round(t_a / t_b, 2),
           "overhead_vs_compute": round(t_b / t_c, 3), "images_per_s": round(args.pairs / t_b, 1),
           "max_abs_score_diff": diffs, "cli_peak_rss_mb": rss_mb}
    print(f"{args.pairs} pairs of {size[0]}x{size[1]}, metrics {', '.join(names)}, device {fig['device']}, "
          f"kernels {fig['kernels']}; 1-min load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end "
          f"on {os.cpu_count()} cores")
    print(f"(a) pyiqa one metric at a time, batch 1, its own file reads: {t_a:8.2f} s")
    print(f"(b) ggt score (decode once, batched, report written):       {t_b:8.2f} s  "
          f"({fig['images_per_s']} pairs/s)")
    print(f"(c) metric compute alone on in-memory tensors:               {t_c:8.2f} s")
    print(f"peak RSS of `ggt score` as a command (its own process): {rss_mb:.0f} MB")
    print(f"speed-up (a)/(b) = {fig['speedup_vs_pyiqa']}x (goal >= 5x); "
          f"overhead (b)/(c) = {fig['overhead_vs_compute']}x (goal <= 1.15x); "
          "max |score difference| " + ", ".join(f"{n} {d:.1e}" for n, d in diffs.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(fig, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
