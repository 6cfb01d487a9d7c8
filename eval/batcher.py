"""Decoded pairs grouped by shape into batches, each run through every metric of the protocol.

A batch is uploaded once per side (batches.py: pinned memory and a side stream on CUDA), and
its metrics run while the next batch's copy is under way. What the ground truth side computes
(no-reference scores, FID features, the uploaded batch) is kept in ``GroundTruthScores``,
shared by every submission of a run.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .batches import Upload, side_stream
from .fid import FIDScorer, Moments
from .metrics import Scorer
from .pairs import Pair
from .protocol import Protocol

# A batch holds at most this many pixels. On the CPU, pyiqa's float64 SSIM is no faster per
# image in batches (measured: 125-131 ms per 256^2 image at 1 to 8 per batch, 16% slower at
# 8 x 512^2) and its im2col convolution holds about 1 KB per pixel, so CPU batches stay small.
BATCH_PIXELS = {"cuda": 8 * 1024 * 1024, "cpu": 512 * 512}


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


class Batcher:
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

        rows: list[dict[str, Any]] = [{"id": p.id, "category": p.category} for p in pairs]
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
        if (fid := self.fid) is not None:
            self.moments[0].update(fid.features([p.fid_copy("pred") for p in pairs]))
            if self.moments[1] is not None:
                self.moments[1].update(self._gt_features(fid, pairs))
        for row, p in zip(rows, pairs):
            row["note"] = p.pred.note
        self.rows += rows
        self.compute_s += time.perf_counter() - t0

    def _gt_features(self, fid: FIDScorer, pairs: list[Pair]) -> np.ndarray:
        feats = self.shared.features
        todo = [p for p in pairs if p.id not in feats]
        if todo:
            feats.update(zip([p.id for p in todo], fid.features([p.fid_copy("gt") for p in todo])))
        return np.stack([feats[p.id] for p in pairs])
