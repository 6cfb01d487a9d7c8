"""Score predictions against references: decode each image once, run every metric on it, batched.

The pipeline, with memory bounded by constants (never by the test-set size):
  producer thread   reads ground-truth bytes in dataset order and submits each pair
                    to a thread pool (at most ``window`` pairs in flight)
  decode pool       reads the prediction, decodes both images (Pillow and zlib release
                    the GIL), applies the protocol's size policy (pairs.py)
  main thread       groups decoded pairs by shape (batcher.py); when a group is full, uploads it
                    (batches.py: pinned memory and a side stream on CUDA) and then runs
                    every metric of the protocol on the group uploaded before it, so the
                    next batch's copy overlaps this batch's metrics
Each side of a batch is uploaded and converted once for all metrics, and a ground-truth
batch once for all submissions. Results do not depend on batch size or worker count
(tests check that).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from . import cache, precheck
from .batcher import Batcher, GroundTruthScores
from .decode import (
    JPEG_DECODERS,
    ImageDecodeError,
    decode,
    decode_on,
)
from .fid import FIDScorer, Moments
from .metrics import Scorer
from .pairs import prepare
from .precheck import Match, ScoreError, match, problems
from .predictions import Predictions
from .protocol import Protocol
from .references import References
from .summary import absdiff_name

DEFAULT_BATCH = 8
# What one decode worker keeps in flight, sized for 4K: its share of the window (4 pairs per
# worker, _score) at two 8-bit 3840x2160 images each, about 200 MB.
WORKER_BYTES = 4 * 2 * 3840 * 2160 * 3


def default_workers() -> int:
    """Decode threads: one per core this process may run on (its affinity, not the machine's
    count, which in a container can be far more), fewer where half the available memory
    would not hold every worker's WORKER_BYTES."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    free = _available_bytes()
    return max(1, min(cores, free // 2 // WORKER_BYTES)) if free is not None else cores


def _available_bytes() -> int | None:
    """The memory the kernel says can be had without swapping (MemAvailable); None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return None


@dataclass
class Result:
    rows: list[dict]                            # one per scored pair: id, category, metrics, note,
                                                # and absdiff_name(m) for each NR metric in reference
    reference: dict[str, dict[str, float]]      # NR metric -> id -> score on the ground truth
    match: Match
    failed: list[str] = field(default_factory=list)   # unscorable predictions (allow_partial)
    seconds: dict[str, float] = field(default_factory=dict)
    reference_cache: dict[str, str] = field(default_factory=dict)  # metric -> hit/miss
    sets: dict[str, dict] = field(default_factory=dict)   # SET metric -> value, n, cache


def _warm_imports() -> None:
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401


@dataclass
class _Submission:
    """One submission's state through a run: checked inputs, then its batcher and failures."""
    preds: Predictions
    label: str
    match: Match
    todo: list[str]
    failed: list[str]
    batcher: Batcher = field(init=False)          # made once the reference cache is read
    fid_gt_cached: Moments | None = None
    reference: dict[str, dict[str, float]] = field(default_factory=dict)
    cache_state: dict[str, str] = field(default_factory=dict)


def _check(preds: Predictions, label: str | None, refs: References, protocol: Protocol, workers: int,
           allow_partial: bool, partial_option: str) -> tuple[_Submission | None, str | None]:
    """The submission's cheap checks (precheck.py), or what is wrong, named by ``label`` if given."""
    m = match(preds, refs)
    early: dict[str, str] = {}
    if not m.scored and m.complete:
        problem: str | None = f"{preds.source}: nothing to score"
    else:
        # Every cheap problem at once, before any pixel is decoded (precheck.py).
        early = precheck.check(preds, refs, protocol, m.scored, workers)
        todo = [i for i in m.scored if i not in early]
        problem = None
        if not todo or ((early or not m.complete) and not allow_partial):
            problem = problems(m, preds.source, list(early.values()), protocol, partial_option, rest=bool(todo))
    if problem:
        return None, (f"submission {label!r} ({preds.source}):\n{problem}" if label else problem)
    return _Submission(preds, label or preds.source, m, todo, list(early.values())), None


def _produce(subs: list[_Submission], refs, protocol, fid: bool, fid_gt: bool, pool, out: queue.Queue,
             stop: threading.Event, read=decode) -> None:
    """The ground truth in dataset order, read once; per image, one job for every submission."""
    todo = [set(s.todo) for s in subs]
    try:
        for pair_id, gt_bytes in refs.iter_hq(set().union(*todo)):
            if stop.is_set():
                return
            which = [(k, s.preds, fid) for k, s in enumerate(subs) if pair_id in todo[k]]
            needs_gt = fid_gt and any(subs[k].batcher.moments[1] is not None for k, _, _ in which)
            out.put(pool.submit(prepare, pair_id, refs.categories[pair_id], gt_bytes, which, refs,
                                protocol, needs_gt, read))
    except BaseException as e:  # noqa: BLE001 (surfaced by the consumer, in order)
        f: Future = Future()
        f.set_exception(e)
        out.put(f)
    finally:
        out.put(None)


def run(preds: Predictions, refs: References, protocol: Protocol, scorers: Sequence[Scorer | FIDScorer], *,
        allow_partial: bool = False, batch_size: int = DEFAULT_BATCH, workers: int | None = None,
        cache_dir: str | None = None, progress: bool = True,
        partial_option: str = "--allow-partial", jpeg_decoder: str = "pillow") -> Result:
    """Score ``preds`` against ``refs`` with ``scorers`` (built from ``protocol``).

    ``partial_option`` is how the caller spells ``allow_partial`` in its error messages."""
    return run_many([preds], refs, protocol, scorers, allow_partial=allow_partial, batch_size=batch_size,
                    workers=workers, cache_dir=cache_dir, progress=progress, partial_option=partial_option,
                    jpeg_decoder=jpeg_decoder)[0]


def run_many(submissions: list[Predictions], refs: References, protocol: Protocol,
             scorers: Sequence[Scorer | FIDScorer], *,
             labels: list[str] | None = None, allow_partial: bool = False, batch_size: int = DEFAULT_BATCH,
             workers: int | None = None, cache_dir: str | None = None, progress: bool = True,
             partial_option: str = "--allow-partial", jpeg_decoder: str = "pillow") -> list[Result]:
    """Score several submissions against ``refs`` in one pass over the ground truth: each
    reference image is read and decoded once, its no-reference scores and FID features computed
    once, and every submission's prediction of it is scored beside it. Each submission's pairs
    are batched as a run of it alone would batch them, so its Result is that run's.
    ``workers``: decode threads, None for ``default_workers()``. ``jpeg_decoder``: ``pillow``, or
    ``device`` for torchvision's on the scorers' device (decode.py: opt-in, its scores can differ,
    so the reference cache is neither read nor written).

    Every submission's inputs are checked before any is scored; problems in any raise one
    ScoreError naming each submission (by ``labels``, when given) and nothing is scored."""
    t_start = time.perf_counter()
    if jpeg_decoder not in JPEG_DECODERS:
        raise ScoreError(f"--jpeg-decoder must be one of {', '.join(JPEG_DECODERS)}, got {jpeg_decoder!r}")
    workers = workers or default_workers()
    named = labels if labels is not None else [None] * len(submissions)
    checked = [_check(p, lb, refs, protocol, workers, allow_partial, partial_option)
               for p, lb in zip(submissions, named)]
    errors = [e for _, e in checked if e]
    if errors:
        raise ScoreError("\n\n".join(errors))
    subs = [s for s, _ in checked if s is not None]
    fid = next((s for s in scorers if isinstance(s, FIDScorer)), None)     # the protocol's SET metric
    per_image = [s for s in scorers if not isinstance(s, FIDScorer)]
    shared = GroundTruthScores()
    cached = jpeg_decoder == "pillow"       # the cache holds scores of Pillow-decoded ground truths
    device = next((str(x.device) for x in [*per_image, fid] if x is not None), "cpu")
    for sub in subs:
        ids = sub.match.scored
        sub.fid_gt_cached = cache.load_moments(cache_dir, fid, refs, ids) if fid and cached else None
        gt_nr = []
        for s in (s for s in per_image if s.spec.kind == "NR" and protocol.reference_scores):
            hit = cache.load_reference(cache_dir, s, refs, ids) if cached else None
            sub.cache_state[s.name] = "hit" if hit is not None else "miss"
            if hit is None:
                gt_nr.append(s)
            else:
                sub.reference[s.name] = hit
        sub.batcher = Batcher(protocol, per_image, batch_size, gt_nr, fid,
                               fid is not None and sub.fid_gt_cached is None, shared, device)
    _score(subs, refs, protocol, fid, workers, progress, decode if cached else decode_on(device))
    late = [(f"submission {s.label!r} ({s.preds.source}):\n" if labels is not None else "")
            + problems(s.match, s.preds.source, s.failed, protocol, partial_option)
            for s in subs if s.failed and not allow_partial]
    if late:
        raise ScoreError("\n\n".join(late))
    total = time.perf_counter() - t_start
    return [_result(s, refs, fid, cache_dir, total, cached) for s in subs]


def _score(subs: list[_Submission], refs: References, protocol: Protocol, fid, workers: int,
           progress: bool, read=decode) -> None:
    """Decode on a thread pool, score on this thread; each submission's pairs go to its batcher."""
    # A job holds one pair per submission: fewer jobs in flight keep memory where one submission's was.
    window = max(2, max(4, 4 * workers) // len(subs))
    futures: queue.Queue = queue.Queue(maxsize=window)
    stop = threading.Event()
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(len(s.todo) for s in subs), desc="scoring", unit="pair", disable=not progress)
    # Import the plotting library while the metrics run (half a second otherwise, later).
    threading.Thread(target=_warm_imports, daemon=True).start()
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="ggt-decode") as pool:
        producer = threading.Thread(target=_produce, daemon=True,
                                    args=(subs, refs, protocol, fid is not None,
                                          any(s.batcher.moments[1] is not None for s in subs),
                                          pool, futures, stop, read))
        producer.start()
        try:
            while (fut := futures.get()) is not None:
                for k, pair in fut.result():
                    if isinstance(pair, ImageDecodeError):
                        subs[k].failed.append(str(pair))
                    else:
                        subs[k].batcher.add(pair)
                    bar.update(1)
            for s in subs:
                s.batcher.flush()
        finally:
            stop.set()
            while producer.is_alive():        # unblock a producer waiting on a full queue
                try:
                    futures.get_nowait()
                except queue.Empty:
                    producer.join(0.05)
            bar.close()


def _result(sub: _Submission, refs: References, fid, cache_dir: str | None, total: float,
            cached: bool = True) -> Result:
    batcher, m, failed, reference = sub.batcher, sub.match, sub.failed, sub.reference
    for name, scores in batcher.reference.items():
        reference[name] = scores
        if not failed and cached:     # a complete set of ground-truth scores is worth keeping
            cache.save_reference(cache_dir, next(s for s in batcher.gt_nr if s.name == name), refs, scores)
    sets = {}
    if fid:
        gt_moments = sub.fid_gt_cached if sub.fid_gt_cached is not None else batcher.moments[1]
        assert gt_moments is not None       # the batcher gathers them whenever the cache had none
        if sub.fid_gt_cached is None and not failed and cached:
            cache.save_moments(cache_dir, fid, refs, m.scored, gt_moments)
        # n and n_reference differ only in a partial run whose unreadable predictions had
        # cached ground-truth statistics; both are reported.
        sets[fid.name] = {"value": FIDScorer.distance(batcher.moments[0], gt_moments),
                          "n": batcher.moments[0].n, "n_reference": gt_moments.n,
                          "cache": "hit" if sub.fid_gt_cached is not None else "miss"}
    # The protocol's order, whichever metrics the cache had: report.md's columns follow it.
    reference = {mm.name: reference[mm.name] for mm in batcher.protocol.metrics if mm.name in reference}
    order = {i: k for k, i in enumerate(refs.ids)}
    rows = sorted(batcher.rows, key=lambda r: order[r["id"]])
    for row in rows:
        # Hallucination raises a no-reference score above the ground truth's own; closeness
        # to it (|prediction - ground truth|, lower is closer) is what resists that.
        for name, scores in reference.items():
            row[absdiff_name(name)] = abs(row[name] - scores[row["id"]])
    # total: the whole run's time, shared by its submissions; metric_compute: this one's.
    return Result(rows, reference, m, failed, {"total": total, "metric_compute": batcher.compute_s},
                  sub.cache_state, sets)
