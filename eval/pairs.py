"""One ground truth and each submission's prediction of it, decoded and aligned.

The decode pool runs ``prepare`` per ground truth: the image is decoded once, then each
submission's prediction of it, checked against the protocol's size rules and cropped or
resized by its policy (``align``). FID's clean-resized copies are made here, from the whole
images, before any crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .decode import Decoded, ImageDecodeError, decode, host_pixels
from .fid import clean_resize
from .predictions import Predictions
from .protocol import Protocol
from .references import References


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

    def fid_copy(self, side: str) -> np.ndarray:
        """The clean-resized copy of ``side`` ("pred" or "gt"), which ``prepare`` makes when FID runs."""
        copy = self.fid_pred if side == "pred" else self.fid_gt
        if copy is None:
            raise ValueError(f"pair {self.id}: no FID copy of its {side}; FID was off when it was decoded")
        return copy


def align(pred: Decoded, gt: Decoded, protocol: Protocol) -> tuple[Decoded, Decoded]:
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


def prepare(pair_id: str, category: str, gt_bytes: bytes, subs: list[tuple[int, Predictions, bool]],
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
            pred, gt_k = align(raw_pred, gt, protocol)
            out.append((k, Pair(pair_id, category, pred, gt_k, clean_resize(raw_pred) if fid_pred else None,
                                fid_gt_pixels)))
        except ImageDecodeError as e:
            out.append((k, e))
    return out
