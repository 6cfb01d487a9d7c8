"""FID over the two image sets (optional, ``--fid``): pyiqa's Inception, clean-fid's resize.

The features are pyiqa's (its FID InceptionV3 with the TensorFlow weights, 2048-d pool
features) and so is the resize (its ``ResizeDataset`` in "clean" mode: PIL bicubic per
channel in float to 299x299, then (x - 128) / 128). What differs from pyiqa's own
``fid`` call is only where the images come from: the engine's decoded pairs, each
decoded once, instead of two folders read again. Mean and covariance are accumulated
in float64 as the batches go by, so memory does not grow with the set; the ground
truth's statistics are cached like the other reference scores.
"""

from __future__ import annotations

import contextlib

import numpy as np
from PIL import Image

from .decode import Decoded, host_pixels
from .metrics import build_pyiqa
from .protocol import MetricSpec

SIZE = (299, 299)


def clean_resize(d: Decoded) -> np.ndarray:
    """pyiqa's ResizeDataset 'clean' path on an 8-bit RGB array -> 299x299x3 float32."""
    pixels = host_pixels(d)
    rgb = pixels if d.scale == 255.0 else np.round(pixels / 257.0).astype(np.uint8)
    chans = [np.asarray(Image.fromarray(rgb[:, :, c].astype(np.float32), mode="F")
                        .resize(SIZE, resample=Image.Resampling.BICUBIC)).clip(0, 255) for c in range(3)]
    return np.stack(chans, axis=2).astype(np.float32)


class Moments:
    """Streaming mean and covariance (float64): n, sum, sum of outer products."""

    def __init__(self, dim: int = 2048):
        self.n, self.s1, self.s2 = 0, np.zeros(dim), np.zeros((dim, dim))

    def update(self, feats: np.ndarray) -> None:
        f = feats.astype(np.float64)
        self.n += len(f)
        self.s1 += f.sum(axis=0)
        self.s2 += f.T @ f

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        mu = self.s1 / self.n
        cov = (self.s2 - self.n * np.outer(mu, mu)) / (self.n - 1)
        return mu, cov


@contextlib.contextmanager
def _no_pretrained():
    """Build pyiqa's real Inception without its checkpoint (plumbing tests only)."""
    from pyiqa.archs import inception

    saved = inception.load_pretrained_network
    inception.load_pretrained_network = lambda *a, **k: None
    try:
        yield
    finally:
        inception.load_pretrained_network = saved


class FIDScorer:
    """Features for batches of clean-resized images, and the distance between two sets."""

    def __init__(self, spec: MetricSpec, device: str, unweighted: bool = False):
        self.spec, self.device, self.unweighted = spec, device, unweighted
        with _no_pretrained() if unweighted else contextlib.nullcontext():
            self.model = build_pyiqa(spec, device).net.model.to(device).eval()

    @property
    def name(self) -> str:
        return self.spec.name

    def features(self, resized: list[np.ndarray]) -> np.ndarray:
        import torch

        batch = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2)
        batch = (batch - 128) / 128          # pyiqa's normalisation for 'clean' mode
        with torch.no_grad():
            feat = self.model(batch.to(self.device), False, False)[0]
        return feat.reshape(feat.shape[0], -1).to("cpu", torch.float64).numpy()

    @staticmethod
    def distance(a: Moments, b: Moments) -> float:
        from pyiqa.archs.fid_arch import frechet_distance

        if min(a.n, b.n) < 2:
            return float("nan")
        return float(frechet_distance(*a.stats(), *b.stats()))
