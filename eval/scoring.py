"""Score predictions against references: decode each image once, run every metric on it, batched.

The pipeline, with memory bounded by constants (never by the test-set size):
  producer thread   reads ground-truth bytes in dataset order and submits each pair
                    to a thread pool (at most ``window`` pairs in flight)
  decode pool       reads the prediction, decodes both images (Pillow and zlib release
                    the GIL), applies the protocol's size policy
  main thread       groups decoded pairs by shape; when a group is full, uploads it
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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from . import cache, precheck
from .batches import Upload, side_stream
from .decode import (
    JPEG_DECODERS,
    Decoded,
    ImageDecodeError,
    decode,
    decode_on,
    host_pixels,
)
from .fid import FIDScorer, Moments, clean_resize
from .metrics import Scorer
from .precheck import Match, ScoreError, match, problems
from .predictions import Predictions
from .protocol import Protocol
from .references import References
from .summary import absdiff_name

DEFAULT_BATCH = 8
# A batch holds at most this many pixels. On the CPU, pyiqa's float64 SSIM is no faster per
# image in batches (measured: 125-131 ms per 256^2 image at 1 to 8 per batch, 16% slower at
# 8 x 512^2) and its im2col convolution holds about 1 KB per pixel, so CPU batches stay small.
BATCH_PIXELS = {"cuda": 8 * 1024 * 1024, "cpu": 512 * 512}
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
class Pair:
    id: str
    category: str
    pred: Decoded
    gt: Decoded
    fid_pred: np.ndarray | None = None      # clean-resized 299x299 copies, when FID runs
    fid_gt: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.pred.pixels.shape[:2]


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


def _align(pred: Decoded, gt: Decoded, protocol: Protocol) -> tuple[Decoded, Decoded]:
    """Apply the protocol's size policy (sizes already checked by ``pair_problem``): the
    prediction, cropped or resized, and the ground truth, cropped with it. ``gt`` itself is
    left alone: other submissions' predictions are aligned with the same decoded image."""
    (ph, pw), (gh, gw) = pred.pixels.shape[:2], gt.pixels.shape[:2]
    if (ph, pw) == (gh, gw):
        return pred, gt
    if protocol.size.policy == "resize":
        import cv2

        pixels = cv2.resize(host_pixels(pred), (gw, gh), interpolation=cv2.INTER_CUBIC)
        return Decoded(pixels, pred.scale, ", ".join(filter(None, [pred.note, f"resized from {pw}x{ph}"]))), gt
    h, w = min(ph, gh), min(pw, gw)
    return (Decoded(pred.pixels[:h, :w], pred.scale,
                    ", ".join(filter(None, [pred.note, f"cropped to {w}x{h} (top-left)"]))),
            Decoded(gt.pixels[:h, :w], gt.scale, gt.note))


def _prepare(pair_id: str, category: str, gt_bytes: bytes, subs: list[tuple[int, Predictions, bool]],
             refs: References, protocol: Protocol, fid_gt: bool, read=decode) -> list[tuple[int, Pair | ImageDecodeError]]:
    """Decode (with ``read``) one ground truth once, then each submission's prediction of it: per
    submission index ``k`` (``subs``: k, predictions, whether FID runs on them), its Pair or why not."""
    try:
        gt = read(gt_bytes, f"{refs.source} (ground truth {pair_id})")
    except ImageDecodeError as e:
        return [(k, e) for k, _, _ in subs]
    # FID sees each whole image, before the size policy crops the pair.
    fid_gt_pixels = clean_resize(gt) if fid_gt else None
    out: list[tuple[int, Pair | ImageDecodeError]] = []
    for k, preds, fid_pred in subs:
        name = preds.names[pair_id]
        try:
            raw_pred = read(preds.read(pair_id), name)
            # Per pair, before any metric: one image too small for a metric failed its whole batch, unnamed.
            problem = protocol.pair_problem(raw_pred.size, gt.size)
            if problem:
                raise ImageDecodeError(f"{name}: {problem}")
            pred, gt_k = _align(raw_pred, gt, protocol)
            out.append((k, Pair(pair_id, category, pred, gt_k, clean_resize(raw_pred) if fid_pred else None,
                                fid_gt_pixels)))
        except ImageDecodeError as e:
            out.append((k, e))
    return out


class GroundTruthScores:
    """What the ground truth side computes, once per image for every submission scored against it:
    a no-reference metric's score of each ground truth (keyed by its shape too: the crop size
    policy can crop it with one submission's prediction), each ground truth's FID features,
    and the last ground-truth batch uploaded (each submission batches the same ids alike, one
    after another, so the next submission's batch of them finds it on the device)."""

    def __init__(self) -> None:
        self.nr: dict[tuple[str, str, tuple[int, int]], float] = {}
        self.features: dict[str, np.ndarray] = {}
        self.last_gt: tuple[tuple, Upload] | None = None

    def gt_upload(self, pairs: list[Pair], device: str, stream) -> Upload:
        # The same ids at the same shape are the same pixels: the size policy crops a ground
        # truth only from the top-left, to the shape that is part of the key.
        key = (tuple(p.id for p in pairs), pairs[0].shape)
        if self.last_gt is None or self.last_gt[0] != key:
            self.last_gt = (key, Upload([p.gt for p in pairs], device, stream))
        return self.last_gt[1]


class _Batcher:
    """Groups pairs by shape and runs every metric on each full group."""

    def __init__(self, protocol: Protocol, scorers: list[Scorer], batch_size: int, gt_nr: list[Scorer],
                 fid: FIDScorer | None = None, fid_gt: bool = False, shared: GroundTruthScores | None = None,
                 device: str = "cpu"):
        self.protocol, self.scorers, self.batch_size, self.gt_nr = protocol, scorers, batch_size, gt_nr
        self.batch_pixels = BATCH_PIXELS["cuda" if device.startswith("cuda") else "cpu"]
        self.device, self.stream = device, side_stream(device)
        self.uploaded: tuple[list[Pair], Upload, Upload] | None = None    # the batch to run next
        self.fid, self.moments = fid, (Moments(), Moments() if fid_gt else None)
        self.shared = shared or GroundTruthScores()
        self.groups: dict[tuple[int, int], list[Pair]] = {}
        self.rows: list[dict] = []
        self.reference: dict[str, dict[str, float]] = {s.name: {} for s in gt_nr}
        self.compute_s = 0.0

    def add(self, pair: Pair) -> None:
        group = self.groups.setdefault(pair.shape, [])
        group.append(pair)
        h, w = pair.shape
        if len(group) >= max(1, min(self.batch_size, self.batch_pixels // (h * w))):
            self.flush(pair.shape)
        # Many distinct sizes would keep many part-filled groups: bound what waits.
        while self.pending_pixels() > 2 * self.batch_pixels:
            self.flush(max(self.groups, key=lambda k: len(self.groups[k]) * k[0] * k[1]))

    def pending_pixels(self) -> int:
        return sum(len(g) * k[0] * k[1] for k, g in self.groups.items())

    def flush(self, shape=None) -> None:
        """Upload the group of ``shape``, or every group and then run what waits (the run's end)."""
        for key in [shape] if shape else list(self.groups):
            pairs = self.groups.pop(key, [])
            if pairs:
                self._upload(pairs)
        if shape is None and self.uploaded:
            self._run(*self.uploaded)
            self.uploaded = None

    def _upload(self, pairs: list[Pair]) -> None:
        """Send this batch to the device, then run the one sent before it: its metrics compute
        while this copy is under way (on CUDA; on the CPU the order alone is the same)."""
        t0 = time.perf_counter()
        ready = self.uploaded
        self.uploaded = (pairs, Upload([p.pred for p in pairs], self.device, self.stream),
                         self.shared.gt_upload(pairs, self.device, self.stream))
        self.compute_s += time.perf_counter() - t0
        if ready:
            self._run(*ready)

    def _run(self, pairs: list[Pair], pred: Upload, gt: Upload) -> None:
        t0 = time.perf_counter()
        sides = {"pred": pred, "gt": gt}

        def get(side: str, dtype, fr: bool, among: list[Pair] = pairs):
            if among is not pairs:          # a part of the batch: not kept
                return Upload([getattr(p, side) for p in among], self.device).tensor(dtype)
            return sides[side].tensor(dtype, self.protocol.crop_border if fr else 0)

        rows = [{"id": p.id, "category": p.category} for p in pairs]
        for s in self.scorers:
            fr = s.spec.kind == "FR"
            scores = s(get("pred", s.dtype, fr), get("gt", s.dtype, fr) if fr else None)
            for row, v in zip(rows, scores):
                row[s.name] = float(v)
        nr = self.shared.nr
        for s in self.gt_nr:
            # A ground truth another submission's batch scored already is not scored again.
            todo = [p for p in pairs if (s.name, p.id, p.shape) not in nr]
            if todo:
                for p, v in zip(todo, s(get("gt", s.dtype, False, todo if len(todo) < len(pairs) else pairs))):
                    nr[(s.name, p.id, p.shape)] = float(v)
            for p in pairs:
                self.reference[s.name][p.id] = nr[(s.name, p.id, p.shape)]
        if self.fid:
            self.moments[0].update(self.fid.features([p.fid_pred for p in pairs]))
            if self.moments[1] is not None:
                self.moments[1].update(self._gt_features(pairs))
        for row, p in zip(rows, pairs):
            row["note"] = p.pred.note
        self.rows += rows
        self.compute_s += time.perf_counter() - t0

    def _gt_features(self, pairs: list[Pair]) -> np.ndarray:
        feats = self.shared.features
        todo = [p for p in pairs if p.id not in feats]
        if todo:
            feats.update(zip([p.id for p in todo], self.fid.features([p.fid_gt for p in todo])))
        return np.stack([feats[p.id] for p in pairs])


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
    batcher: _Batcher | None = None
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
            out.put(pool.submit(_prepare, pair_id, refs.categories[pair_id], gt_bytes, which, refs,
                                protocol, needs_gt, read))
    except BaseException as e:  # noqa: BLE001 (surfaced by the consumer, in order)
        f: Future = Future()
        f.set_exception(e)
        out.put(f)
    finally:
        out.put(None)


def run(preds: Predictions, refs: References, protocol: Protocol, scorers: list[Scorer], *,
        allow_partial: bool = False, batch_size: int = DEFAULT_BATCH, workers: int | None = None,
        cache_dir: str | None = None, progress: bool = True,
        partial_option: str = "--allow-partial", jpeg_decoder: str = "pillow") -> Result:
    """Score ``preds`` against ``refs`` with ``scorers`` (built from ``protocol``).

    ``partial_option`` is how the caller spells ``allow_partial`` in its error messages."""
    return run_many([preds], refs, protocol, scorers, allow_partial=allow_partial, batch_size=batch_size,
                    workers=workers, cache_dir=cache_dir, progress=progress, partial_option=partial_option,
                    jpeg_decoder=jpeg_decoder)[0]


def run_many(submissions: list[Predictions], refs: References, protocol: Protocol, scorers: list[Scorer], *,
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
    fid = next((s for s in scorers if s.spec.kind == "SET"), None)
    scorers = [s for s in scorers if s.spec.kind != "SET"]
    shared = GroundTruthScores()
    cached = jpeg_decoder == "pillow"       # the cache holds scores of Pillow-decoded ground truths
    device = next((str(x.device) for x in scorers + [fid] if x is not None), "cpu")
    for sub in subs:
        ids = sub.match.scored
        sub.fid_gt_cached = cache.load_moments(cache_dir, fid, refs, ids) if fid and cached else None
        gt_nr = []
        for s in (s for s in scorers if s.spec.kind == "NR" and protocol.reference_scores):
            hit = cache.load_reference(cache_dir, s, refs, ids) if cached else None
            sub.cache_state[s.name] = "hit" if hit is not None else "miss"
            if hit is None:
                gt_nr.append(s)
            else:
                sub.reference[s.name] = hit
        sub.batcher = _Batcher(protocol, scorers, batch_size, gt_nr, fid,
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
