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
  16 bits and scaled by 1/65535, never truncated to 8 bits. Pillow reads 48- and 64-bit
  PNG and TIFF at 8 bits, so those go through OpenCV. Any other TIFF with more than 8
  bits per sample (CMYK, signed, float, ...) is refused rather than read at 8 bits.
- 32-bit float or integer images are refused: they have no agreed [0, 1] range.
- Only PNG, JPEG, WebP, BMP and TIFF content is read (as ``ggt build`` accepts), and only
  one frame: a GIF named ``.png`` or an animated PNG/WebP/multi-page TIFF is refused,
  not scored on its first frame.
- More pixels than Pillow's decompression-bomb limit (89,478,485) is refused.
Every conversion other than plain 8-bit RGB is recorded in the per-image report.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
from PIL import Image, ImageOps

from ..errors import GGTError
from ..images import (
    ALLOWED_FORMATS,
    DEFAULT_MAX_PIXELS,
    display_size,
    orientation_of,
    png_orientation,
    png_whole,
)

if TYPE_CHECKING:
    from PIL.TiffImagePlugin import TiffImageFile

# Bump when a rule above changes what pixels a metric sees: it keys the reference cache.
DECODE_RULES_VERSION = 2     # 2: 48/64-bit TIFF and 16-bit gray+alpha PNG read at 16 bits


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
    if im.format not in ALLOWED_FORMATS:
        raise ImageDecodeError(f"{name}: is {im.format} content, expected one of "
                               f"{', '.join(sorted(ALLOWED_FORMATS))}; save predictions as PNG")
    # MPO (a camera JPEG with a preview picture) shows its first frame, as every viewer does.
    frames = getattr(im, "n_frames", 1)     # only formats with several frames have it
    if im.format != "MPO" and frames > 1:
        raise ImageDecodeError(f"{name}: has {frames} frames (animated or multi-page); "
                               "save one still image per prediction")
    return im


def _sixteen_bit_rgb(data: bytes, im: Image.Image, name: str) -> bool:
    """Whether Pillow would read this image at 8 bits though it has 16 (48/64-bit PNG or TIFF)."""
    if im.format == "PNG":    # the IHDR bit depth; colour types 2 (RGB), 4 (gray+alpha), 6 (RGBA)
        return data[24] == 16 and data[25] in (2, 4, 6)
    if im.format != "TIFF":
        return False
    tags = cast("TiffImageFile", im).tag_v2
    bits = tags.get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    if not 8 < max(bits) <= 16 or im.mode in _SIXTEEN:
        return False          # 32-bit samples meet the mode rule below (I and F are refused)
    # Unsigned 16-bit RGB(A) only: OpenCV's libtiff returns any other layout in its own way.
    formats = tags.get(339, (1,))
    if (set(bits) == {16} and tags.get(262) == 2 and len(bits) in (3, 4)
            and set(formats if isinstance(formats, tuple) else (formats,)) == {1}):
        return True
    raise ImageDecodeError(f"{name}: a TIFF with {'/'.join(map(str, bits))} bits per sample in mode "
                           f"{im.mode} cannot be read at its full precision; save it as 8- or 16-bit RGB "
                           "PNG or TIFF")


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


def _decode_16_tiff(data: bytes, im: Image.Image, name: str) -> Decoded:
    """A 48/64-bit TIFF through OpenCV, checked against Pillow's 8-bit reading of it.

    OpenCV 5's libtiff reader applies the Orientation tag itself (unlike its PNG reader);
    other versions may not. Pillow's 8-bit samples are the top bytes of the 16-bit ones,
    so they say which reading is upright, and that channels are in RGB order.
    """
    orientation = im.getexif().get(0x0112, 1)
    upright = _decode_16(data, name, 1)
    eight = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    for d in (upright, _decode_16(data, name, orientation)):
        if d.pixels.shape == eight.shape and np.array_equal(d.pixels >> 8, eight):
            if orientation in _ORIENT and "EXIF rotated" not in d.note:
                d.note += ", EXIF rotated"           # OpenCV turned it already
            return d
    raise ImageDecodeError(f"{name}: this 16-bit TIFF reads differently in OpenCV and Pillow; "
                           "save it as 16-bit PNG")


def header_size(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) as ``decode`` will return the image, read from its header alone.

    Applies every rule above that the header decides (format, frames, pixel limit), so the
    pre-check of a submission finds those problems before any pixel is decoded.
    """
    im = _open(data, name, max_pixels)
    if im.format == "PNG" and not png_whole(data):      # a CRC pass: what ``ggt build`` refuses too
        raise ImageDecodeError(f"{name}: a truncated or corrupt PNG (a chunk CRC fails or IEND is missing)")
    # Pillow's getexif() on a PNG would decode every pixel to find eXIf after the image data.
    orientation = png_orientation(im, data) if im.format == "PNG" else orientation_of(im)
    return display_size(im, orientation)


def decode(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode ``data`` (the file named ``name``, for messages) by the rules above."""
    im = _open(data, name, max_pixels)
    try:
        if _sixteen_bit_rgb(data, im, name):
            if im.format == "TIFF":
                return _decode_16_tiff(data, im, name)
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


# JPEG_DECODERS: "pillow" (the default) decodes every image by the rules above. "device" is the
# opt-in `--jpeg-decoder device`: torchvision's decode_jpeg on the scoring device, nvjpeg on CUDA,
# for plain colour JPEGs (no EXIF rotation); everything else still goes through Pillow. nvjpeg's
# IDCT and chroma upsampling are not libjpeg's: torchvision's own test lets its pixels differ from
# the CPU decode by up to 2 levels on average (test/test_image.py, test_decode_jpeg_cuda), so
# scores can move. It is never the default, its reports' fingerprint says "jpeg_decoder", and its
# ground-truth scores never enter the reference cache. On the CPU torchvision uses libjpeg-turbo
# as Pillow does, and the pixels are equal (tests/test_eval_scoring.py checks).
JPEG_DECODERS = ("pillow", "device")


def decode_on(device: str):
    """``decode``, except that plain colour JPEGs are decoded on ``device`` by torchvision
    (their pixels: an (H, W, 3) uint8 tensor there)."""
    def read(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
        im = _open(data, name, max_pixels)
        if im.format != "JPEG" or im.mode != "RGB" or orientation_of(im) not in (None, 1):
            return decode(data, name, max_pixels)
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        try:
            chw = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB,
                              device=device)
        except RuntimeError as e:
            raise ImageDecodeError(f"{name}: torchvision cannot decode this JPEG on {device} ({e}); "
                                   "score with --jpeg-decoder pillow") from None
        return Decoded(chw.permute(1, 2, 0), 255.0, "")
    return read


def host_pixels(d: Decoded) -> np.ndarray:
    """``d``'s pixels as a numpy array (copied from the device where ``decode_on`` left them)."""
    return d.pixels if isinstance(d.pixels, np.ndarray) else d.pixels.cpu().numpy()


def decode_rgb8(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """8-bit RGB by the rules above, 16-bit scaled down with rounding (x / 257, +0.5)."""
    d = decode(data, name, max_pixels)
    return d.pixels if d.scale == 255.0 else (d.pixels / 257.0 + 0.5).astype(np.uint8)
