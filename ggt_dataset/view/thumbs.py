"""Images for the page: stored bytes as they are when a browser shows them, PNG otherwise; thumbnails.

Thumbnails are JPEG (small, fast to encode), made with the JPEG draft mode
(decode at 1/2..1/8 scale) and EXIF orientation applied, as browsers and
``datasets`` show the full image.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

from ..images import DEFAULT_MAX_PIXELS, display_size, orientation_of, png_orientation

THUMB_SIZE = 320
THUMB_QUALITY = 85
# Names how thumbnails are made; change it with ``thumbnail`` so disk caches start afresh.
THUMB_FORMAT = f"jpeg-{THUMB_SIZE}-q{THUMB_QUALITY}-v1"
# What every current browser shows in an <img>; anything else (TIFF, 16-bit oddities) becomes PNG.
_BROWSER = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif", b"BM": "image/bmp"}


class ImageDecodeError(ValueError):
    """The stored bytes are not an image Pillow can read."""


def sniff(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((t for magic, t in _BROWSER.items() if data.startswith(magic)), None)


def _open(data: bytes) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > DEFAULT_MAX_PIXELS:
            raise ImageDecodeError(f"{img.width}x{img.height} is above the {DEFAULT_MAX_PIXELS:,}-pixel limit")
        return img
    except (OSError, Image.DecompressionBombError) as e:
        raise ImageDecodeError(str(e)) from None


def size(data: bytes) -> tuple[int, int]:
    """Width and height as shown (EXIF orientation applied), from the header only."""
    img = _open(data)
    # A PNG's orientation from its eXIf chunk: Pillow's getexif() would decode the pixels.
    orientation = png_orientation(img, data) if img.format == "PNG" else orientation_of(img)
    return display_size(img, orientation)


def _eight_bit(img: Image.Image) -> Image.Image:
    if img.mode.startswith("I"):           # 16-bit gray: keep the high byte, as a viewer would
        return Image.fromarray((np.asarray(img, np.uint32) >> 8).clip(0, 255).astype(np.uint8))
    if img.mode in ("RGB", "L", "RGBA", "LA"):
        return img
    return img.convert("RGBA" if "A" in img.getbands() else "RGB")


def full(data: bytes) -> tuple[bytes, str]:
    kind = sniff(data)
    if kind:
        return data, kind
    try:
        img = _eight_bit(ImageOps.exif_transpose(_open(data)))
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=1)
    except OSError as e:
        raise ImageDecodeError(str(e)) from None
    return buf.getvalue(), "image/png"


def thumbnail(data: bytes, size: int = THUMB_SIZE) -> bytes:
    img = _open(data)
    try:
        img.draft("RGB", (size, size))          # JPEG only: decode at a reduced scale
        img = ImageOps.exif_transpose(img)
        img.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        img = _eight_bit(img)
        if img.mode not in ("RGB", "L"):        # JPEG has no alpha
            img = img.convert("RGB")
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=THUMB_QUALITY)
    except OSError as e:                       # truncated data found only while decoding
        raise ImageDecodeError(str(e)) from None
    return buf.getvalue()
