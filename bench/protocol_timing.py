"""The figures of issue #13.2 for `python bench/score.py`: every metric of the ggt protocol timed,
the whole protocol's run against its metric compute alone and against pyiqa's way, and the peak
GPU memory per batch size.

Metrics whose weight files are not here (no network on the test machines or a lent GPU) run
pyiqa's real architecture with random weights (random_weights.py): the same work, meaningless
scores. Such a metric is labelled "random weights, timing only" wherever it is printed, and
its scores are never written (the report timed is that of the metrics with real weights).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

RANDOM = "random weights, timing only"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def build(names: list[str] | None, device: str, kernel: str):
    """The protocol (restricted to ``names``) and a Scorer per metric; random weights where the
    weight files are missing (``scorer.unweighted`` True)."""
    from ggt_dataset.eval import weights
    from ggt_dataset.eval.metrics import MetricError, Scorer
    from ggt_dataset.eval.protocol import load
    from random_weights import random_weights

    proto = load("ggt")
    proto = proto.subset(names) if names else proto.subset([m.name for m in proto.metrics if m.kind != "SET"])
    scorers = []
    for spec in proto.metrics:
        if not weights.resolve(spec)[1]:
            scorers.append(Scorer(spec, device, kernel=kernel))
            continue
        with random_weights():
            try:
                s = Scorer(spec, device, unweighted=True, kernel=kernel)
            except MetricError:       # NIQE takes no `pretrained`; its parameters file is what is random
                s = Scorer(spec, device, kernel=kernel)
        s.unweighted = True
        scorers.append(s)
    return proto, scorers


def label(s) -> str:
    return f"{s.name} ({RANDOM})" if s.unweighted else s.name


def decode_all(preds: str, gts: str, ids: list[str]):
    """Every pair decoded, on the run's decode threads (1,000 images of 1024^2 on one take ~20 s)."""
    from concurrent.futures import ThreadPoolExecutor

    from ggt_dataset.eval.decode import decode
    from ggt_dataset.eval.scoring import default_workers

    def pair(i: str):
        return decode(Path(preds, i + ".png").read_bytes(), i), decode(Path(gts, i + ".png").read_bytes(), i)

    with ThreadPoolExecutor(default_workers()) as pool:
        return list(pool.map(pair, ids))


def compute_alone(scorers, pairs, batch: int, device: str, border: int = 0) -> dict[str, float]:
    """Seconds per metric on batches already on the device (uploaded and converted outside the
    clock), batched as the run batches them (``batch``, fewer where BATCH_PIXELS says); no-reference metrics also score the ground truth,
    as a run with an empty reference cache does."""
    from ggt_dataset.eval.batcher import BATCH_PIXELS
    from ggt_dataset.eval.batches import Upload

    h, w = pairs[0][0].pixels.shape[:2]        # the run's rule: at most BATCH_PIXELS per batch
    batch = max(1, min(batch, BATCH_PIXELS["cuda" if device.startswith("cuda") else "cpu"] // (h * w)))
    took = {s.name: 0.0 for s in scorers}
    for k in range(0, len(pairs), batch):
        chunk = pairs[k:k + batch]
        up = Upload([p for p, _ in chunk], device), Upload([g for _, g in chunk], device)
        views = {(side, s.dtype, fr): up[side].tensor(s.dtype, border if fr else 0)
                 for s in scorers for fr in (s.spec.kind == "FR",) for side in (0, 1)}
        sync(device)
        for s in scorers:
            fr = s.spec.kind == "FR"
            t = time.perf_counter()
            if fr:
                s(views[(0, s.dtype, True)], views[(1, s.dtype, True)])
            else:
                s(views[(0, s.dtype, False)])
                s(views[(1, s.dtype, False)])
            took[s.name] += time.perf_counter() - t      # the scores come back to the host: synced
    return took


def pyiqa_way(scorers, preds: str, gts: str, ids: list[str], device: str) -> tuple[float, dict]:
    """pyiqa's own way: one metric at a time over the files, batch 1, pyiqa reading each file
    (what its command and most lab scripts do); the same model objects as the run's where the
    run uses pyiqa's code (so random weights are the same weights), pyiqa's SSIM for ours."""
    from ggt_dataset.eval.metrics import build_pyiqa
    from random_weights import random_weights

    scores, t = {}, time.perf_counter()
    for s in scorers:
        if s.kernel == "pyiqa":
            m = s.model
        else:
            with random_weights() if s.unweighted else _nothing():
                m = build_pyiqa(s.spec, device)
        p, g = (lambda i: os.path.join(preds, i + ".png")), (lambda i: os.path.join(gts, i + ".png"))
        if s.spec.kind == "FR":
            scores[s.name] = {i: float(m(p(i), g(i))) for i in ids}
        else:
            scores[s.name] = {i: float(m(p(i))) for i in ids}
            for i in ids:
                m(g(i))                # the ground truth's own score, as the run computes it
    sync(device)
    return time.perf_counter() - t, scores


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def run_and_report(proto, scorers, preds: str, ds: str, tmp: str, batch: int, device: str):
    """The run as `ggt score` does it (decode pool, batches, uploads, every metric, summary), then
    the report of the metrics with real weights written: (seconds of each, result)."""
    from ggt_dataset.eval import report, scoring
    from ggt_dataset.eval.api import device_label
    from ggt_dataset.eval.metrics import kernels
    from ggt_dataset.eval.predictions import open_predictions
    from ggt_dataset.eval.references import open_references
    from ggt_dataset.eval.summary import absdiff_name

    t0 = time.perf_counter()
    p, refs = open_predictions(preds), open_references(ds)
    result = scoring.run(p, refs, proto, scorers, batch_size=batch, cache_dir=os.path.join(tmp, "cache"),
                         progress=False)
    t_run = time.perf_counter() - t0
    real = [s.name for s in scorers if not s.unweighted]
    t1 = time.perf_counter()
    if real:
        drop = {s.name for s in scorers if s.unweighted}
        drop |= {absdiff_name(n) for n in drop}
        shown = dataclasses.replace(result, rows=[{k: v for k, v in r.items() if k not in drop} for r in result.rows],
                                    reference={k: v for k, v in result.reference.items() if k not in drop})
        summary = report.summarize(shown, proto.subset(real), refs=refs, preds=p, device=device_label(device),
                                   weight_files={}, label="bench", kernels=kernels(scorers))
        report.write(os.path.join(tmp, "report"), summary, shown.rows)
    return t_run, time.perf_counter() - t1, result


def capped(batch: int, size: tuple[int, int], device: str) -> str:
    """The suffix " (N after the pixel cap)" where batcher.BATCH_PIXELS makes the run's batches smaller."""
    from ggt_dataset.eval.batcher import BATCH_PIXELS

    n = max(1, min(batch, BATCH_PIXELS["cuda" if device.startswith("cuda") else "cpu"] // (size[0] * size[1])))
    return f" ({n} after the pixel cap)" if n < batch else ""


def peak_memory(proto, scorers, preds: str, ds: str, tmp: str, sizes: list[int], device: str) -> dict[int, float]:
    """Peak GPU memory (GiB, torch.cuda.max_memory_allocated) of a run of 2 batches per batch size."""
    import torch
    from ggt_dataset.eval import scoring
    from ggt_dataset.eval.predictions import open_predictions
    from ggt_dataset.eval.references import open_references

    ids = sorted(os.path.relpath(os.path.join(r, f), preds) for r, _, fs in os.walk(preds) for f in fs)
    out = {}
    for bs in sizes:
        sub = os.path.join(tmp, f"peak-{bs}")
        for rel in ids[:2 * bs]:
            os.makedirs(os.path.dirname(os.path.join(sub, rel)), exist_ok=True)
            os.symlink(os.path.join(preds, rel), os.path.join(sub, rel))
        sync(device)
        torch.cuda.reset_peak_memory_stats()
        scoring.run(open_predictions(sub), open_references(ds), proto, scorers, batch_size=bs,
                    allow_partial=True, progress=False, cache_dir=os.path.join(tmp, f"peak-cache-{bs}"))
        out[bs] = torch.cuda.max_memory_allocated() / 2**30
    return out
