"""Score predictions against references: decode each image once, run every metric on it, batched.

The pipeline, with memory bounded by constants (never by the test-set size):
  producer thread   reads ground-truth bytes in dataset order and submits each pair
                    to a thread pool (at most ``window`` pairs in flight)
  decode pool       reads the prediction, decodes both images (Pillow and zlib release
                    the GIL), applies the protocol's size policy
  main thread       groups decoded pairs by shape, and when a group is full converts it
                    to one tensor and runs every metric of the protocol on it
Results do not depend on batch size or worker count (tests check that).
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from . import cache, precheck
from .decode import Decoded, ImageDecodeError, decode
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


def _align(pred: Decoded, gt: Decoded, protocol: Protocol) -> Decoded:
    """Apply the protocol's size policy (sizes already checked by ``pair_problem``): returns
    the prediction, cropped or resized, and may crop gt."""
    (ph, pw), (gh, gw) = pred.pixels.shape[:2], gt.pixels.shape[:2]
    if (ph, pw) == (gh, gw):
        return pred
    if protocol.size.policy == "resize":
        import cv2

        pixels = cv2.resize(pred.pixels, (gw, gh), interpolation=cv2.INTER_CUBIC)
        return Decoded(pixels, pred.scale, ", ".join(filter(None, [pred.note, f"resized from {pw}x{ph}"])))
    h, w = min(ph, gh), min(pw, gw)
    gt.pixels = gt.pixels[:h, :w]
    return Decoded(pred.pixels[:h, :w], pred.scale,
                   ", ".join(filter(None, [pred.note, f"cropped to {w}x{h} (top-left)"])))


def _prepare(pair_id: str, category: str, gt_bytes: bytes, preds: Predictions,
             refs: References, protocol: Protocol, fid: tuple[bool, bool] = (False, False)) -> Pair:
    name = preds.names[pair_id]
    gt = decode(gt_bytes, f"{refs.source} (ground truth {pair_id})")
    raw_pred = decode(preds.read(pair_id), name)
    # FID sees each whole image, before the size policy crops the pair.
    fid_pred = clean_resize(raw_pred) if fid[0] else None
    fid_gt = clean_resize(gt) if fid[1] else None
    # Per pair, before any metric: one image too small for a metric failed its whole batch, unnamed.
    problem = protocol.pair_problem(raw_pred.size, gt.size)
    if problem:
        raise ImageDecodeError(f"{name}: {problem}")
    pred = _align(raw_pred, gt, protocol)
    return Pair(pair_id, category, pred, gt, fid_pred, fid_gt)


def _tensor(arrays: list[Decoded], dtype, border: int = 0):
    import torch

    scale = arrays[0].scale
    if all(d.scale == scale and d.pixels.dtype == arrays[0].pixels.dtype for d in arrays):
        # The usual case: stack the integers, convert the batch once.
        batch = torch.from_numpy(np.stack([d.pixels for d in arrays])).to(dtype).div_(scale)
    else:                     # 8- and 16-bit images in one batch: each by its own scale
        batch = torch.stack([torch.from_numpy(d.pixels.astype(np.float64)).to(dtype).div_(d.scale)
                             for d in arrays])
    batch = batch.permute(0, 3, 1, 2)
    if border:
        batch = batch[..., border:-border, border:-border]
    return batch.contiguous()


class _Batcher:
    """Groups pairs by shape and runs every metric on each full group."""

    def __init__(self, protocol: Protocol, scorers: list[Scorer], batch_size: int, gt_nr: list[Scorer],
                 fid: FIDScorer | None = None, fid_gt: bool = False):
        self.protocol, self.scorers, self.batch_size, self.gt_nr = protocol, scorers, batch_size, gt_nr
        device = next((str(x.device) for x in scorers + gt_nr + [fid] if x is not None), "cpu")
        self.batch_pixels = BATCH_PIXELS["cuda" if device.startswith("cuda") else "cpu"]
        self.fid, self.moments = fid, (Moments(), Moments() if fid_gt else None)
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
        while sum(len(g) * k[0] * k[1] for k, g in self.groups.items()) > 2 * self.batch_pixels:
            self.flush(max(self.groups, key=lambda k: len(self.groups[k]) * k[0] * k[1]))

    def flush(self, shape=None) -> None:
        for key in [shape] if shape else list(self.groups):
            pairs = self.groups.pop(key, [])
            if pairs:
                self._run(pairs)

    def _run(self, pairs: list[Pair]) -> None:
        t0 = time.perf_counter()
        tensors: dict = {}

        def get(side: str, dtype, fr: bool):
            key = (side, dtype, fr)
            if key not in tensors:
                border = self.protocol.crop_border if fr else 0
                tensors[key] = _tensor([getattr(p, side) for p in pairs], dtype, border)
            return tensors[key]

        rows = [{"id": p.id, "category": p.category} for p in pairs]
        for s in self.scorers:
            fr = s.spec.kind == "FR"
            scores = s(get("pred", s.dtype, fr), get("gt", s.dtype, fr) if fr else None)
            for row, v in zip(rows, scores):
                row[s.name] = float(v)
        for s in self.gt_nr:
            for p, v in zip(pairs, s(get("gt", s.dtype, False))):
                self.reference[s.name][p.id] = float(v)
        if self.fid:
            self.moments[0].update(self.fid.features([p.fid_pred for p in pairs]))
            if self.moments[1] is not None:
                self.moments[1].update(self.fid.features([p.fid_gt for p in pairs]))
        for row, p in zip(rows, pairs):
            row["note"] = p.pred.note
        self.rows += rows
        self.compute_s += time.perf_counter() - t0


def _warm_imports() -> None:
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401


def _produce(ids: list[str], preds, refs, protocol, fid, pool, out: queue.Queue, stop: threading.Event) -> None:
    try:
        for pair_id, gt_bytes in refs.iter_hq(set(ids)):
            if stop.is_set():
                return
            out.put(pool.submit(_prepare, pair_id, refs.categories[pair_id], gt_bytes, preds, refs,
                                protocol, fid))
    except BaseException as e:  # noqa: BLE001 (surfaced by the consumer, in order)
        f: Future = Future()
        f.set_exception(e)
        out.put(f)
    finally:
        out.put(None)


def run(preds: Predictions, refs: References, protocol: Protocol, scorers: list[Scorer], *,
        allow_partial: bool = False, batch_size: int = DEFAULT_BATCH, workers: int = 2,
        cache_dir: str | None = None, progress: bool = True,
        partial_option: str = "--allow-partial") -> Result:
    """Score ``preds`` against ``refs`` with ``scorers`` (built from ``protocol``).

    ``partial_option`` is how the caller spells ``allow_partial`` in its error messages."""
    t_start = time.perf_counter()
    m = match(preds, refs)
    if not m.scored and m.complete:
        raise ScoreError(f"{preds.source}: nothing to score")
    # Every cheap problem at once, before any pixel is decoded (precheck.py).
    early = precheck.check(preds, refs, protocol, m.scored, workers)
    todo = [i for i in m.scored if i not in early]
    if not todo or ((early or not m.complete) and not allow_partial):
        raise ScoreError(problems(m, preds.source, list(early.values()), protocol, partial_option,
                                   rest=bool(todo)))
    fid = next((s for s in scorers if s.spec.kind == "SET"), None)
    scorers = [s for s in scorers if s.spec.kind != "SET"]
    fid_gt_cached = cache.load_moments(cache_dir, fid, refs, m.scored) if fid else None
    gt_nr, reference, cache_state = [], {}, {}
    if protocol.reference_scores:
        for s in scorers:
            if s.spec.kind != "NR":
                continue
            hit = cache.load_reference(cache_dir, s, refs, m.scored)
            cache_state[s.name] = "hit" if hit is not None else "miss"
            if hit is None:
                gt_nr.append(s)
            else:
                reference[s.name] = hit
    batcher = _Batcher(protocol, scorers, batch_size, gt_nr, fid, fid is not None and fid_gt_cached is None)
    failed: list[str] = list(early.values())
    window = max(4, 4 * workers)
    futures: queue.Queue = queue.Queue(maxsize=window)
    stop = threading.Event()
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc="scoring", unit="pair", disable=not progress)
    # Import the plotting library while the metrics run (half a second otherwise, later).
    threading.Thread(target=_warm_imports, daemon=True).start()
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="ggt-decode") as pool:
        producer = threading.Thread(target=_produce, daemon=True,
                                    args=(todo, preds, refs, protocol,
                                          (fid is not None, fid is not None and fid_gt_cached is None),
                                          pool, futures, stop))
        producer.start()
        try:
            while (fut := futures.get()) is not None:
                try:
                    batcher.add(fut.result())
                except ImageDecodeError as e:
                    failed.append(str(e))
                bar.update(1)
            batcher.flush()
        finally:
            stop.set()
            while producer.is_alive():        # unblock a producer waiting on a full queue
                try:
                    futures.get_nowait()
                except queue.Empty:
                    producer.join(0.05)
            bar.close()
    if failed and not allow_partial:
        raise ScoreError(problems(m, preds.source, failed, protocol, partial_option))
    for s in gt_nr:
        reference[s.name] = batcher.reference[s.name]
        if not failed:                # a complete set of ground-truth scores is worth keeping
            cache.save_reference(cache_dir, s, refs, reference[s.name])
    sets = {}
    if fid:
        gt_moments = fid_gt_cached if fid_gt_cached is not None else batcher.moments[1]
        if fid_gt_cached is None and not failed:
            cache.save_moments(cache_dir, fid, refs, m.scored, gt_moments)
        # n and n_reference differ only in a partial run whose unreadable predictions had
        # cached ground-truth statistics; both are reported.
        sets[fid.name] = {"value": FIDScorer.distance(batcher.moments[0], gt_moments),
                          "n": batcher.moments[0].n, "n_reference": gt_moments.n,
                          "cache": "hit" if fid_gt_cached is not None else "miss"}
    order = {i: k for k, i in enumerate(refs.ids)}
    rows = sorted(batcher.rows, key=lambda r: order[r["id"]])
    for row in rows:
        # Hallucination raises a no-reference score above the ground truth's own; closeness
        # to it (|prediction - ground truth|, lower is closer) is what resists that.
        for name, scores in reference.items():
            row[absdiff_name(name)] = abs(row[name] - scores[row["id"]])
    total = time.perf_counter() - t_start
    return Result(rows, reference, m, failed,
                  {"total": total, "metric_compute": batcher.compute_s}, cache_state, sets)
