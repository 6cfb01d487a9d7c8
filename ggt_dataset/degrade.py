"""Synthetic degradations, one per category, for the sample pack.

Each takes a clean RGB uint8 array and a seeded ``numpy`` Generator and returns
the degraded array, so a sample pack is byte-identical on every machine with
the same numpy and Pillow. They follow the usual physical models (additive
streaks, atmospheric scattering, gamma + shot noise, ...); they make plausible
test inputs, not a substitute for real-world photos.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Array = np.ndarray


def _f(img: Array) -> Array:
    return img.astype(np.float32) / 255.0


def _u8(x: Array) -> Array:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _blur(x: Array, radius: float) -> Array:
    return _f(np.asarray(Image.fromarray(_u8(x)).filter(ImageFilter.GaussianBlur(radius))))


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: int = 8) -> Array:
    """Low-frequency noise in [0, 1]: coarse random grid upsampled bicubically."""
    coarse = (rng.random((max(2, h // scale), max(2, w // scale))) * 255).astype(np.uint8)
    return _f(np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)))[..., None]


def rain(img: Array, rng: np.random.Generator) -> Array:
    """Slanted, motion-blurred bright streaks over a slightly washed-out scene."""
    h, w = img.shape[:2]
    layer = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(layer)
    angle = rng.uniform(-0.35, 0.35)
    for _ in range(int(h * w / 350)):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        length = rng.uniform(0.04, 0.12) * h
        draw.line([(x, y), (x + length * np.sin(angle), y + length * np.cos(angle))],
                  fill=int(rng.uniform(120, 230)), width=1)
    streaks = _f(np.asarray(layer.filter(ImageFilter.GaussianBlur(0.7))))[..., None]
    base = _f(img) * 0.85 + 0.08
    return _u8(base + streaks * 0.65)


def haze(img: Array, rng: np.random.Generator) -> Array:
    """Atmospheric scattering I = J t + A (1 - t), depth growing towards the top of the frame."""
    h, w = img.shape[:2]
    depth = np.linspace(1.0, 0.2, h, dtype=np.float32)[:, None, None] + 0.3 * _smooth_noise(rng, h, w, 16)
    t = np.exp(-rng.uniform(1.2, 2.0) * depth)
    airlight = rng.uniform(0.75, 0.92) * np.array([1.0, 1.0, 1.02], np.float32)
    return _u8(_f(img) * t + airlight * (1 - t))


def snow(img: Array, rng: np.random.Generator) -> Array:
    """Falling flakes of several sizes plus a faint veil."""
    h, w = img.shape[:2]
    layer = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(layer)
    for _ in range(int(h * w / 250)):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.choice([0.6, 1.0, 1.6, 2.4], p=[.5, .3, .15, .05])
        draw.ellipse([x - r, y - r, x + r, y + r], fill=int(rng.uniform(170, 255)))
    flakes = _f(np.asarray(layer.filter(ImageFilter.GaussianBlur(0.8))))[..., None]
    veiled = _f(img) * 0.85 + 0.12
    return _u8(veiled * (1 - flakes) + flakes)


def low_light(img: Array, rng: np.random.Generator) -> Array:
    """Under-exposure (gamma and gain), then shot and read noise as a sensor would add them."""
    x = np.power(_f(img), rng.uniform(1.6, 2.2)) * rng.uniform(0.12, 0.22)
    photons = rng.uniform(300, 600)
    x = rng.poisson(x * photons).astype(np.float32) / photons
    x += rng.normal(0, 0.008, x.shape).astype(np.float32)
    x *= np.array([1.0, 0.97, 1.08], np.float32)  # a cool cast, as auto white balance leaves it in the dark
    return _u8(x)


def old_photo(img: Array, rng: np.random.Generator) -> Array:
    """Sepia fading, lowered contrast, grain, vignette, scratches and dust."""
    h, w = img.shape[:2]
    gray = _f(img) @ np.array([0.299, 0.587, 0.114], np.float32)
    sepia = gray[..., None] * np.array([1.0, 0.86, 0.66], np.float32) + np.array([0.1, 0.07, 0.03], np.float32)
    x = 0.25 + 0.6 * sepia + rng.normal(0, 0.035, (h, w, 1)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    x *= (1 - 0.35 * np.clip(r2 - 0.3, 0, None))[..., None]
    layer = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(3, 8))):
        x0 = rng.uniform(0, w)
        draw.line([(x0, 0), (x0 + rng.uniform(-8, 8), h)], fill=int(rng.uniform(120, 220)), width=1)
    for _ in range(int(rng.integers(15, 40))):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.5, 2.0)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=int(rng.uniform(150, 255)))
    marks = _f(np.asarray(layer))[..., None]
    return _u8(x * (1 - marks) + marks * 0.92)


def mixed(img: Array, rng: np.random.Generator) -> Array:
    """Defocus blur, then sensor noise, then heavy JPEG compression, in camera order."""
    x = _blur(_f(img), rng.uniform(1.0, 2.0))
    x = x + rng.normal(0, rng.uniform(0.02, 0.05), x.shape).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(_u8(x)).save(buf, format="JPEG", quality=int(rng.integers(15, 35)))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


DEGRADATIONS: dict[str, Callable[[Array, np.random.Generator], Array]] = {
    "mixed": mixed, "rain": rain, "haze": haze, "snow": snow, "low_light": low_light,
    "old_photo": old_photo,
}
