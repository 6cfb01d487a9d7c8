"""SSIM on the Y channel, in float64, through FFTs over row strips: pyiqa's numbers, faster.

pyiqa 0.1.16 filters with ``F.conv2d`` in float64, which on a CPU goes through im2col:
about 95% of a PSNR+SSIM run and about 1 KB per pixel (a 1024² image: 1 GB, 2 s). The
same sums (the same window, the same valid region, the same formula) taken as products
of Fourier transforms cost a few passes over the image, and strips of rows overlapping
by the window's size - 1 keep the memory bounded with a valid-filter result identical to
the whole image's. Two conventions:

* ``pyiqa``: Y rounded to integers by pyiqa's own ``preprocess_rgb``; pyiqa's window
  (MATLAB's ``fspecial``, stored as float32 by pyiqa, so not exactly separable); the
  contrast-structure term clamped at 0; pyiqa's optional downsampling. Equal to pyiqa's
  value within 1e-10 (tests/test_eval_ssim.py checks it against pyiqa itself).
* ``basicsr``: BasicSR's ``calculate_ssim(test_y_channel=True)``: Y of YCbCr not rounded,
  OpenCV's Gaussian window (float64), no clamp, no downsampling.
"""

from __future__ import annotations

import functools

import numpy as np

CONVENTIONS = ("pyiqa", "basicsr")
WINDOW = 11
SIGMA = 1.5
# Rows per strip are chosen so a strip holds about this many pixels: each costs about
# 200 bytes (five float64 maps, their spectra and the map arithmetic), so ~100 MB a strip.
STRIP_PIXELS = 1 << 19


@functools.lru_cache(maxsize=2)
def window(convention: str) -> np.ndarray:
    """The 11x11 window, exactly as the convention's own code builds it, as float64."""
    if convention == "pyiqa":
        from pyiqa.matlab_utils import fspecial

        return fspecial(WINDOW, SIGMA, 1)[0, 0].double().numpy()
    import cv2

    g = cv2.getGaussianKernel(WINDOW, SIGMA)
    return np.outer(g, g)


@functools.lru_cache(maxsize=16)
def _spectrum(convention: str, rows: int, cols: int) -> np.ndarray:
    """rfft2 of the window flipped and zero-padded to (rows, cols). A circular convolution with it,
    read from row and column WINDOW - 1 on, is the valid cross-correlation conv2d computes: those
    outputs never wrap around, and zero padding beyond the strip adds nothing to them."""
    from scipy import fft

    k = np.zeros((rows, cols))
    k[:WINDOW, :WINDOW] = window(convention)[::-1, ::-1]
    return fft.rfft2(k)


def _ssim_sum(x: np.ndarray, y: np.ndarray, convention: str) -> tuple[float, int]:
    """Sum and count of the SSIM map of one pair of float64 planes (H, W) on 0-255."""
    from scipy import fft

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    h, w = x.shape
    cols = fft.next_fast_len(w, real=True)     # zero padding leaves the valid region as it is
    step = max(1, STRIP_PIXELS // cols - (WINDOW - 1))
    total, count = 0.0, 0
    for top in range(0, h - WINDOW + 1, step):
        # Strips overlap by WINDOW - 1 rows: each valid output row sees the same 11 input rows.
        a, b = x[top:top + step + WINDOW - 1], y[top:top + step + WINDOW - 1]
        rows = fft.next_fast_len(a.shape[0], real=True)
        maps = np.stack([a, b, a * a, b * b, a * b])
        spec = fft.rfft2(maps, s=(rows, cols), workers=-1)
        spec *= _spectrum(convention, rows, cols)
        f = fft.irfft2(spec, s=(rows, cols), workers=-1)[:, WINDOW - 1:a.shape[0], WINDOW - 1:w]
        mu1, mu2 = f[0], f[1]
        mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
        cs = (2 * (f[4] - mu1_mu2) + c2) / ((f[2] - mu1_sq) + (f[3] - mu2_sq) + c2)
        if convention == "pyiqa":
            np.maximum(cs, 0, out=cs)  # pyiqa's relu: "force the ssim response to be nonnegative"
        total += float(((2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1) * cs).sum())
        count += cs.size
    return total, count


def y_planes(batch, convention: str, color_space: str = "ycbcr"):
    """(N, 3, H, W) in [0, 1] -> (N, H, W) float64 on 0-255, as the convention makes its input."""
    import torch

    if convention == "pyiqa":
        from pyiqa.archs.func_util import preprocess_rgb

        # pyiqa's own conversion, in the batch's dtype, then float64, exactly as SSIM.forward.
        return preprocess_rgb(batch, True, 255, color_space).to(torch.float64)[:, 0]
    # BasicSR's bgr2ycbcr(y_only=True): BT.601 studio range, kept as floats.
    rgb = batch.to(torch.float64)
    coef = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64, device=rgb.device)
    return torch.einsum("nchw,c->nhw", rgb, coef) + 16.0


def ssim(pred, gt, convention: str = "pyiqa", downsample: bool = False, crop_border: int = 0,
         color_space: str = "ycbcr") -> np.ndarray:
    """SSIM per image of two (N, 3, H, W) batches in [0, 1]; float64 scores.

    Args:
        pred, gt: tensors of one shape; ``pred`` is the prediction.
        convention: ``pyiqa`` (pyiqa 0.1.16's SSIM) or ``basicsr`` (BasicSR's calculate_ssim).
        downsample, crop_border, color_space: pyiqa's SSIM options (``test_y_channel`` is
            always on: SSIM of the Y channel is what both conventions compute).

    >>> import torch; x = torch.linspace(0, 1, 3 * 16 * 16, dtype=torch.float64).reshape(1, 3, 16, 16)
    >>> float(ssim(x, x)[0]), round(float(ssim(x, x.flip(-1))[0]), 6)
    (1.0, 0.994135)
    """
    import torch
    import torch.nn.functional as F

    if convention not in CONVENTIONS:
        raise ValueError(f"SSIM convention must be one of {CONVENTIONS}, got {convention!r}")
    if crop_border:
        pred = pred[..., crop_border:-crop_border, crop_border:-crop_border]
        gt = gt[..., crop_border:-crop_border, crop_border:-crop_border]
    with torch.no_grad():
        x, y = y_planes(pred, convention, color_space), y_planes(gt, convention, color_space)
        # pyiqa's rule, Python's round() included: average-pool by round(min side / 256).
        f = max(1, round(min(x.shape[-2:]) / 256))
        if downsample and f > 1:
            x, y = F.avg_pool2d(x[:, None], kernel_size=f)[:, 0], F.avg_pool2d(y[:, None], kernel_size=f)[:, 0]
        x, y = x.cpu().numpy(), y.cpu().numpy()
        out = np.empty(x.shape[0])
        for n in range(x.shape[0]):
            total, count = _ssim_sum(x[n], y[n], convention)
            out[n] = total / count
    return out
