"""Image bytes -> an RGB array the metrics read, by rules written down once.

The conversion rules (protocol ``conversion: rgb-float``), applied identically to
predictions and ground truth:

- EXIF orientation is applied first, as ``datasets`` does when it decodes the
  ground truth, so a rotated-by-tag output lines up with its reference.
- 8-bit RGB is used as is. Grayscale (L, 1) is replicated to three channels.
  Palette (P) is expanded to its colours. CMYK, YCbCr, LAB and HSV go through
  Pillow's conversion to RGB (CMYK without an ICC profile).
- Alpha (RGBA, LA, PA) is dropped, not composited, as OpenCV's imread does.
- 16-bit images (PNG or TIFF, gray or RGB) keep their precision: they are read at
  16 bits and scaled by 1/65535, never truncated to 8 bits.
- 32-bit float or integer images are refused: they have no agreed [0, 1] range.
- More pixels than Pillow's decompression-bomb limit (89,478,485) is refused.
Every conversion other than plain 8-bit RGB is recorded in the per-image report.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from ..errors import GGTError
from ..images import DEFAULT_MAX_PIXELS, png_orientation

# Bump when a rule above changes what pixels a metric sees: it keys the reference cache.
DECODE_RULES_VERSION = 1


class ImageDecodeError(GGTError):
    """An image cannot be read, or cannot be converted by the documented rules."""


@dataclass
class Decoded:
    pixels: np.ndarray     # H x W x 3, uint8 or uint16
    scale: float           # divide by this to get [0, 1]
    note: str              # the conversions applied, "" for plain 8-bit RGB

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]   # (width, height), like PIL


_VIA_PILLOW = {"L": "gray->RGB", "1": "1-bit->RGB", "P": "palette->RGB", "CMYK": "CMYK->RGB",
               "YCbCr": "YCbCr->RGB", "LAB": "LAB->RGB", "HSV": "HSV->RGB",
               "RGBA": "alpha dropped", "LA": "gray->RGB, alpha dropped",
               "PA": "palette->RGB, alpha dropped", "RGBX": "padding dropped"}
_SIXTEEN = ("I;16", "I;16B", "I;16L", "I;16N")
# EXIF orientation -> numpy operations (the same eight cases as ImageOps.exif_transpose).
_ORIENT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.rot90(a, -1),
           7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1], 8: lambda a: np.rot90(a, 1)}


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageDecodeError(f"{name}: refused, more pixels than the decompression-bomb "
                                   f"limit of {max_pixels:,}") from None
        except Image.UnidentifiedImageError:
            raise ImageDecodeError(f"{name}: not an image (no format Pillow reads: "
                                   f"{data[:8]!r}...)") from None
        except Exception as e:  # noqa: BLE001 (Pillow raises many types on malformed headers)
            raise ImageDecodeError(f"{name}: not an image Pillow can read ({e})") from None
    w, h = im.size
    if w * h > max_pixels:
        raise ImageDecodeError(f"{name}: refused, {w}x{h} = {w * h:,} pixels is more than the "
                               f"decompression-bomb limit of {max_pixels:,}")
    return im


def _sixteen_bit_rgb(data: bytes) -> bool:
    # Pillow reads 48-bit PNGs as 8-bit RGB; the IHDR bit depth tells us to go around it.
    return data[:8] == b"\x89PNG\r\n\x1a\n" and data[24] == 16 and data[25] in (2, 6)


def _decode_16(data: bytes, name: str, orientation: int) -> Decoded:
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        raise ImageDecodeError(f"{name}: 16-bit image could not be decoded")
    note = "16-bit->float"
    if arr.ndim == 2:
        arr, note = np.repeat(arr[:, :, None], 3, axis=2), "16-bit gray->RGB"
    else:
        if arr.shape[2] == 4:
            note += ", alpha dropped"
        arr = arr[:, :, 2::-1]                      # BGR(A) -> RGB
    if orientation in _ORIENT:
        arr, note = _ORIENT[orientation](arr), note + ", EXIF rotated"
    return Decoded(np.ascontiguousarray(arr), 65535.0, note)


def decode(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode ``data`` (the file named ``name``, for messages) by the rules above."""
    im = _open(data, name, max_pixels)
    try:
        if _sixteen_bit_rgb(data):
            # Pillow's getexif() on a PNG would decode every pixel (at 8 bits) to find eXIf.
            return _decode_16(data, name, png_orientation(im, data) or 1)
        im.load()
        notes = []
        if im.getexif().get(0x0112, 1) in _ORIENT:
            im = ImageOps.exif_transpose(im)
            notes.append("EXIF rotated")
        mode = im.mode
        if mode in _SIXTEEN:
            a = np.asarray(im).astype(np.uint16)
            return Decoded(np.repeat(a[:, :, None], 3, axis=2), 65535.0,
                           ", ".join(["16-bit gray->RGB"] + notes))
        if mode not in (*_VIA_PILLOW, "RGB"):
            raise ImageDecodeError(f"{name}: mode {mode} ({'32-bit' if mode in ('I', 'F') else 'unusual'}) "
                                   "is not accepted; save predictions as 8- or 16-bit PNG")
        if mode != "RGB":
            im = im.convert("RGB")
            notes.insert(0, _VIA_PILLOW[mode])
        return Decoded(np.asarray(im), 255.0, ", ".join(notes))
    except ImageDecodeError:
        raise
    except Exception as e:  # noqa: BLE001 (truncated data, bad chunks, codec errors)
        raise ImageDecodeError(f"{name}: cannot decode ({e})") from None


def decode_rgb8(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """8-bit RGB by the rules above, 16-bit scaled down with rounding (x / 257, +0.5)."""
    d = decode(data, name, max_pixels)
    return d.pixels if d.scale == 255.0 else (d.pixels / 257.0 + 0.5).astype(np.uint8)
