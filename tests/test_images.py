import io
import os
import signal
import struct
import zlib

import numpy as np
import pytest
from conftest import image_bytes
from PIL import Image

from ggt_dataset.errors import BadPairError
from ggt_dataset.images import inspect_bytes, read_image


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with a tiny valid IDAT: a bomb costs nothing to make."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def test_sound_png_and_jpeg_keep_their_bytes():
    for fmt in ("PNG", "JPEG"):
        data = image_bytes(1, (40, 32), fmt)
        rec = inspect_bytes(data, "a")
        assert rec.data is data and (rec.width, rec.height) == (40, 32) and rec.format == fmt
        assert len(rec.sha256) == 64


@pytest.mark.parametrize("fmt,cut", [("PNG", 0.5), ("PNG", 0.97), ("JPEG", 0.6), ("JPEG", 0.99)])
def test_truncated_images_are_refused(fmt, cut):
    data = image_bytes(2, (64, 64), fmt)
    with pytest.raises(BadPairError, match="bad.img.*(truncated|corrupt|decoded)"):
        inspect_bytes(data[: int(len(data) * cut)], "bad.img")


def test_flipped_byte_in_png_data_is_caught_by_crc():
    data = bytearray(image_bytes(3, (64, 64), "PNG"))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(BadPairError, match="x.png"):
        inspect_bytes(bytes(data), "x.png")


@pytest.mark.parametrize("data,what", [(b"", "empty"), (b"hello, not an image\n" * 5, "identify"),
                                       (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "")])
def test_non_images_are_refused_with_the_name(data, what):
    with pytest.raises(BadPairError, match=f"notes.png.*{what}"):
        inspect_bytes(data, "notes.png")


def test_gif_is_not_an_allowed_format():
    buf = io.BytesIO()
    Image.new("P", (8, 8)).save(buf, format="GIF")
    with pytest.raises(BadPairError, match="is GIF"):
        inspect_bytes(buf.getvalue(), "a.png")


def test_decompression_bomb_refused_from_header():
    with pytest.raises(BadPairError, match="bomb.png.*(decompression bomb|bomb limit)"):
        inspect_bytes(png_header_only(100_000, 100_000), "bomb.png")
    with pytest.raises(BadPairError, match=r"40x32 = 1,280 pixels.*--max-pixels"):
        inspect_bytes(image_bytes(0, (40, 32)), "big.png", max_pixels=1000)


@pytest.mark.parametrize("orientation,size", [(1, (40, 32)), (3, (40, 32)), (6, (32, 40)), (8, (32, 40))])
def test_exif_orientation_gives_displayed_size(orientation, size):
    img = Image.fromarray((np.random.default_rng(0).random((32, 40, 3)) * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    for fmt in ("JPEG", "PNG"):
        buf = io.BytesIO()
        img.save(buf, format=fmt, exif=exif.tobytes())
        rec = inspect_bytes(buf.getvalue(), "x")
        assert (rec.width, rec.height) == size, fmt
        # ... which is what datasets decodes (it applies exif_transpose)
        import datasets
        decoded = datasets.Image().decode_example({"bytes": buf.getvalue(), "path": None})
        assert decoded.size == size


@pytest.mark.parametrize("mode,fmt", [("I;16", "PNG"), ("P", "PNG"), ("L", "PNG"), ("RGBA", "PNG"),
                                      ("CMYK", "JPEG"), ("LA", "PNG")])
def test_other_modes_are_stored_untouched(mode, fmt):
    arr = (np.arange(48 * 40) % 251).reshape(40, 48).astype(np.uint8)
    img = Image.fromarray(arr).convert("RGB").convert(mode) if mode != "I;16" else \
        Image.fromarray(arr.astype(np.uint16) * 257)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    rec = inspect_bytes(buf.getvalue(), "x", decode=True)
    assert rec.data == buf.getvalue() and (rec.width, rec.height) == (48, 40)
    assert rec.mode.startswith(mode[0])


def test_jpeg_with_trailer_after_eoi_is_fine():
    data = image_bytes(4, (32, 32), "JPEG") + b"MAKERTRAILER" * 10
    assert inspect_bytes(data, "x.jpg").width == 32


def test_eoi_inside_a_comment_does_not_hide_truncation():
    rng = np.random.default_rng(5)
    buf = io.BytesIO()
    Image.fromarray((rng.random((300, 300, 3)) * 255).astype(np.uint8)).save(
        buf, format="JPEG", comment=b"\xff\xd9")
    data = buf.getvalue()
    with pytest.raises(BadPairError, match="cut.jpg: cannot be decoded"):
        inspect_bytes(data[: len(data) // 2], "cut.jpg")


@pytest.mark.parametrize("cut", [12, 16, 20])
def test_png_missing_its_end_is_refused(cut):
    data = image_bytes(6, (64, 64), "PNG")
    with pytest.raises(BadPairError, match="end.png: is a truncated or corrupt PNG"):
        inspect_bytes(data[:-cut], "end.png")


def test_rotated_tiff_size_matches_what_datasets_decodes():
    import datasets

    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((10, 20, 3)) * 255).astype(np.uint8)).save(
        buf, format="TIFF", exif=exif.tobytes())
    rec = inspect_bytes(buf.getvalue(), "r.tif")
    decoded = datasets.Image().decode_example({"bytes": buf.getvalue(), "path": None})
    assert (rec.width, rec.height) == decoded.size


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    # The old open() blocked until something wrote to the pipe; the alarm turns a hang into a failure.
    os.mkfifo(tmp_path / "pipe.png")
    old = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(RuntimeError("read_image blocked")))
    signal.alarm(10)
    try:
        with pytest.raises(BadPairError, match="pipe.png: is not a regular file"):
            read_image(str(tmp_path / "pipe.png"))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
