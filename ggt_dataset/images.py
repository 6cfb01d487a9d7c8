"""Reading one image file for packaging: its bytes, hash, size, and whether it is sound.

Rules (the README's "Image rules" section repeats them for users):

* Bytes are stored exactly as read; nothing is re-encoded, so a round trip is
  byte-identical and ``sha256`` identifies the original file.
* Sizes are the ones ``datasets`` decodes: EXIF orientation 5-8 swaps width
  and height, because ``datasets.Image`` applies ``exif_transpose`` on decode.
* 16-bit, palette, grayscale, CMYK and alpha images are stored untouched;
  ``datasets`` decodes them in their own PIL mode (``I;16``, ``P``, ``L``,
  ``CMYK``, ``RGBA``). Converting to RGB is the consumer's choice.
* An image above ``max_pixels`` (default: Pillow's own bomb limit) is refused
  from its header, before any pixel is decoded.
* Soundness is checked structurally by default: a PNG must pass every chunk
  CRC through IEND (else refused); a JPEG must hold an EOI after its first scan
  (else decoded); every other format is fully decoded, its size taken from the
  decoded image as ``datasets`` would. ``decode=True`` decodes every image,
  which also catches compressed data that is invalid inside intact chunks.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
import zlib
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import BadPairError

DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485  # Pillow's own bomb limit
ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "WEBP", "BMP", "TIFF"})
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}


@dataclass(frozen=True)
class ImageRecord:
    data: bytes
    sha256: str
    width: int
    height: int
    format: str
    mode: str


def read_image(path: str, *, max_pixels: int = DEFAULT_MAX_PIXELS, decode: bool = False,
               shown_as: str | None = None) -> ImageRecord:
    """Read ``path`` and check it; raise :class:`BadPairError` naming the file if it is unusable."""
    name = shown_as or path
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise BadPairError(name, "is not a regular file (a FIFO, socket or device); "
                                   "only files are images")
            data = f.read()
    except OSError as e:
        raise BadPairError(name, f"cannot be read ({e.strerror or e})") from None
    return inspect_bytes(data, name, max_pixels=max_pixels, decode=decode)


def inspect_bytes(data: bytes, name: str, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                  decode: bool = False) -> ImageRecord:
    if not data:
        raise BadPairError(name, "is empty (0 bytes)")
    if max_pixels > (Image.MAX_IMAGE_PIXELS or 0):
        # The user raised the limit on purpose; Pillow's own guard would still refuse
        # images over twice its default, so lift it to match (process-wide, as Pillow's is).
        Image.MAX_IMAGE_PIXELS = max_pixels
    img = _open(data, name)
    width, height = img.size
    if img.format not in ALLOWED_FORMATS:
        raise BadPairError(name, f"is {img.format}, expected one of {sorted(ALLOWED_FORMATS)}")
    if width * height > max_pixels:
        raise BadPairError(
            name, f"is {width}x{height} = {width * height:,} pixels, over the decompression-bomb "
            f"limit of {max_pixels:,}; pass --max-pixels to accept larger images")
    fmt, mode = img.format, img.mode
    if fmt == "PNG":
        sound, exif = _png_chunks(data)
        if not sound:  # a CRC mismatch or no IEND: Pillow's decoder would tolerate some of it
            raise BadPairError(name, "is a truncated or corrupt PNG (a chunk CRC fails or IEND is missing)")
        orientation = orientation_of(img, exif) if exif is not None else None
    else:
        sound = fmt in ("JPEG", "MPO") and _jpeg_ends(data)
        orientation = orientation_of(img)
    if decode or not sound:
        width, height = decoded_size(data, name)  # exactly what datasets will decode
    else:
        width, height = display_size(img, orientation)
    return ImageRecord(data, hashlib.sha256(data).hexdigest(), width, height, fmt, mode)


def _jpeg_ends(data: bytes) -> bool:
    """SOI at the start and an EOI after the first scan begins.

    Entropy-coded data cannot hold FF D9 (FF is always stuffed), so an EOI after
    the first SOS ends the image; one inside an EXIF thumbnail or a comment comes
    before SOS and does not count.
    """
    if data[:2] != b"\xff\xd8":
        return False
    pos, end = 2, len(data)
    while pos + 4 <= end and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:  # SOS: entropy-coded data follows its header
            return data.find(b"\xff\xd9", pos + 2 + length) != -1
        pos += 2 + length
    return False


def _open(data: bytes, name: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check replaces Pillow's warning; its hard error still applies.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise BadPairError(name, f"refused as a decompression bomb ({e})") from None
    except UnidentifiedImageError:
        raise BadPairError(name, "is not an image Pillow can identify (corrupt or not an image)") from None
    except Exception as e:  # noqa: BLE001 (Pillow raises many types on malformed headers)
        raise BadPairError(name, f"has a malformed image header ({type(e).__name__}: {e})") from None


def display_size(img: Image.Image, orientation: int | None) -> tuple[int, int]:
    """(width, height) as shown, i.e. after EXIF ``orientation``, which ``datasets`` applies on decode."""
    w, h = img.size
    return (h, w) if orientation in _SWAPPING_ORIENTATIONS else (w, h)


def orientation_of(img: Image.Image, exif: bytes | None = None) -> int | None:
    try:
        if exif is not None:
            parsed = Image.Exif()
            parsed.load(exif)
            return parsed.get(0x0112)
        return img.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 (a broken EXIF block should not hide a sound image)
        return None


def png_orientation(img: Image.Image, data: bytes) -> int | None:
    """A PNG's EXIF orientation from its eXIf chunk, without decoding any pixels."""
    exif = _png_chunks(data)[1]
    return orientation_of(img, exif) if exif is not None else None


def png_whole(data: bytes) -> bool:
    """Whether every chunk CRC of a PNG matches and IEND is reached (a truncated file fails)."""
    return _png_chunks(data)[0]


def _png_chunks(data: bytes) -> tuple[bool, bytes | None]:
    """Walk a PNG's chunks: (every CRC matches and IEND is reached, the eXIf payload if any).

    Pillow's getexif() on a PNG decodes the whole image to look for eXIf after
    IDAT; walking the chunk list finds it for the price of a CRC pass.
    """
    pos, end, exif = 8, len(data), None
    while pos + 12 <= end:
        length = int.from_bytes(data[pos:pos + 4], "big")
        ctype = data[pos + 4:pos + 8]
        body_end = pos + 8 + length
        if body_end + 4 > end:
            return False, exif
        if zlib.crc32(data[pos + 4:body_end]) != int.from_bytes(data[body_end:body_end + 4], "big"):
            return False, exif
        if ctype == b"eXIf":
            exif = data[pos + 8:body_end]
        if ctype == b"IEND":
            return True, exif
        pos = body_end + 4
    return False, exif


def decoded_size(data: bytes, name: str) -> tuple[int, int]:
    """Decode fully, as ``datasets.Image`` does (load, then exif_transpose), and return the size."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                if img.getexif().get(0x0112) is not None:
                    return ImageOps.exif_transpose(img).size
                return img.size
    except Exception as e:  # noqa: BLE001 (any decoder error means a corrupt image)
        raise BadPairError(name, f"cannot be decoded ({type(e).__name__}: {e}); the file is "
                           "truncated or corrupt") from None
