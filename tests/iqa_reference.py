"""Independent implementations of the conventions the protocols state, in NumPy/SciPy.

Written from the conventions' definitions (BasicSR's psnr_ssim.py and the MATLAB
SSIM code), not from pyiqa, to check that the protocols really compute them.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import correlate2d

BT601 = np.array([65.481, 128.553, 24.966])


def y_bt601(rgb8: np.ndarray) -> np.ndarray:
    """Y of YCbCr (ITU-R BT.601, studio range 16-235) in 8-bit levels, float64, as BasicSR."""
    return rgb8.astype(np.float64) / 255.0 @ BT601 + 16.0


def psnr_y(pred8: np.ndarray, gt8: np.ndarray, border: int = 0) -> float:
    """BasicSR calculate_psnr(test_y_channel=True): Y not rounded, data range 255."""
    a, b = y_bt601(pred8), y_bt601(gt8)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    ax = np.arange(size) - (size - 1) / 2
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def ssim_y(pred8: np.ndarray, gt8: np.ndarray, rounded: bool = True, clamp_cs: bool = True) -> float:
    """SSIM on Y (BT.601). rounded=True: Y rounded to integers as MATLAB's rgb2ycbcr on uint8
    (the protocol's convention); False: BasicSR's. clamp_cs: pyiqa's max(cs, 0)."""
    x, y = y_bt601(pred8), y_bt601(gt8)
    if rounded:
        x, y = np.round(x), np.round(y)
    w = gaussian_window()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def f(img):
        return correlate2d(img, w, mode="valid")

    mu1, mu2 = f(x), f(y)
    s1, s2, s12 = f(x * x) - mu1**2, f(y * y) - mu2**2, f(x * y) - mu1 * mu2
    cs = (2 * s12 + c2) / (s1 + s2 + c2)
    if clamp_cs:
        cs = np.maximum(cs, 0)
    return float(np.mean((2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1) * cs))


# BasicSR (XPixelGroup/BasicSR, basicsr/metrics/psnr_ssim.py and metric_util.to_y_channel), step
# by step on OpenCV's BGR order: float32 input to bgr2ycbcr, Y returned as float32 and then
# float64, cv2.filter2D with the outer product of cv2.getGaussianKernel(11, 1.5), cropped to
# the valid region, the SSIM map as one fraction, no clamp. (Read at BasicSR 8d56e3a.)
def basicsr_y(rgb8: np.ndarray) -> np.ndarray:
    bgr = rgb8[..., ::-1].astype(np.float32) / 255.0           # to_y_channel
    y = np.dot(bgr, [24.966, 128.553, 65.481]) + 16.0           # bgr2ycbcr(y_only=True)
    y = (y / 255.0).astype(np.float32)                          # _convert_output_type_range
    return (y * 255.0).astype(np.float64)                       # to_y_channel, then calculate_*


def basicsr_psnr(pred8: np.ndarray, gt8: np.ndarray) -> float:
    mse = np.mean((basicsr_y(pred8) - basicsr_y(gt8)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 * 255.0 / mse))


def basicsr_ssim(pred8: np.ndarray, gt8: np.ndarray) -> float:
    import cv2

    img, img2 = basicsr_y(pred8), basicsr_y(gt8)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel.transpose())

    def f(a):
        return cv2.filter2D(a, -1, window)[5:-5, 5:-5]

    mu1, mu2 = f(img), f(img2)
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    s1, s2, s12 = f(img**2) - mu1_sq, f(img2**2) - mu2_sq, f(img * img2) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * s12 + c2)) / ((mu1_sq + mu2_sq + c1) * (s1 + s2 + c2))
    return float(ssim_map.mean())
