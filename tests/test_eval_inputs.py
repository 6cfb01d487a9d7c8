"""Bad and unusual predictions: a clear message naming the file, non-zero exit, nothing written."""

from __future__ import annotations

import io
import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from ggt_dataset.eval.predictions import open_predictions
from PIL import Image

from ggt_dataset.cli.main import main


def _score(capsys, preds, ref, out, *extra):
    rc = main(["score", str(preds), "--reference", ref, "--out", str(out), "--metrics", "psnr,ssim",
               "--device", "cpu", "-q", *extra])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def _fail(capsys, preds, ref, tmp_path, *needles):
    out = tmp_path / "report"
    before = sorted(os.listdir(tmp_path))
    rc, text = _score(capsys, preds, ref, out)
    assert rc != 0, text
    assert "Traceback" not in text
    for n in needles:
        assert n in text, (n, text)
    assert not out.exists(), "nothing may be written on failure"
    assert sorted(os.listdir(tmp_path)) == before
    return text


@pytest.fixture
def preds(identity_preds, tmp_path):
    dst = tmp_path / "preds"
    shutil.copytree(identity_preds, dst)
    return dst


def _ids(folder):
    return sorted(open_predictions(str(folder)).names)


def _replace(preds, pair_id, data: bytes, ext=".png"):
    for f in list((preds / os.path.dirname(pair_id)).iterdir()):
        if f.stem == os.path.basename(pair_id):
            f.unlink()
    (preds / (pair_id + ext)).write_bytes(data)


def _png(arr_or_img, **save) -> bytes:
    im = arr_or_img if isinstance(arr_or_img, Image.Image) else Image.fromarray(arr_or_img)
    buf = io.BytesIO()
    im.save(buf, format=save.pop("format", "PNG"), **save)
    return buf.getvalue()


def test_zip_with_parent_path_absolute_or_symlink_is_refused(eval_set, identity_preds, tmp_path, capsys):
    for name, member in (("dotdot", "../evil.png"), ("absolute", "/tmp/evil.png")):
        z = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(z, "w") as zf:
            zf.writestr(member, b"x")
        _fail(capsys, z, eval_set, tmp_path, str(z), "refused unsafe zip members", member)
    z = tmp_path / "link.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("mixed/link.png")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    _fail(capsys, z, eval_set, tmp_path, "symbolic link", "mixed/link.png")
    assert not (tmp_path.parent / "evil.png").exists() and not os.path.exists("/tmp/evil.png")


def test_zip_bomb_caps(eval_set, tmp_path, capsys):
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mixed/a.png", b"\0" * (20 * 1024 * 1024))
    _fail(capsys, z, eval_set, tmp_path, "compression ratio", "zip bomb", "mixed/a.png")
    z2 = tmp_path / "big.zip"
    with zipfile.ZipFile(z2, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("mixed/a.png", os.urandom(300_000))
    rc, text = _score(capsys, z2, eval_set, tmp_path / "r2", "--max-unzipped", "100KB")
    assert rc != 0 and "above the cap" in text and not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_zip_of_good_predictions_scores_like_the_folder(eval_set, identity_preds, tmp_path, capsys):
    z = tmp_path / "preds.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for root, _, files in os.walk(identity_preds):
            for f in files:
                zf.write(os.path.join(root, f), os.path.relpath(os.path.join(root, f), identity_preds))
    assert _score(capsys, z, eval_set, tmp_path / "rz")[0] == 0
    assert _score(capsys, identity_preds, eval_set, tmp_path / "rf")[0] == 0
    a = (tmp_path / "rz" / "per_image.csv").read_text()
    assert a == (tmp_path / "rf" / "per_image.csv").read_text()


def test_truncated_and_non_image_files_are_named(eval_set, preds, tmp_path, capsys):
    ids = _ids(preds)
    noisy = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    _replace(preds, ids[0], _png(noisy)[:2000])
    _replace(preds, ids[1], b"this is not an image at all")
    text = _fail(capsys, preds, eval_set, tmp_path, "2 prediction(s) cannot be scored",
                 ids[0] + ".png", ids[1] + ".png")
    assert "Nothing was written" in text
    # Each file with its own reason, on its own line.
    assert re.search(rf"{re.escape(ids[0])}\.png: [^\n]*truncated", text), text
    assert f"{ids[1]}.png: not an image" in text


def test_size_beyond_policy_names_both_sizes(eval_set, preds, tmp_path, capsys):
    pair = _ids(preds)[0]
    _replace(preds, pair, _png(np.zeros((96 + 40, 96, 3), np.uint8)))
    _fail(capsys, preds, eval_set, tmp_path, pair + ".png", "prediction 96x136, ground truth 96x96",
          "more than the 32 px")


@pytest.mark.slow
def test_small_size_mismatch_is_cropped_top_left(eval_set, preds, tmp_path, capsys):
    pair = _ids(preds)[0]
    src = Path(open_predictions(str(preds)).names[pair]).read_bytes()
    big = np.zeros((96 + 8, 96 + 3, 3), np.uint8)
    big[:96, :96] = np.asarray(Image.open(io.BytesIO(src)).convert("RGB"))
    _replace(preds, pair, _png(big))
    rc, _ = _score(capsys, preds, eval_set, tmp_path / "r")
    assert rc == 0
    import pyarrow.csv as pacsv

    rows = {r["id"]: r for r in pacsv.read_csv(tmp_path / "r" / "per_image.csv").to_pylist()}
    assert "cropped to 96x96 (top-left)" in rows[pair]["note"]
    from iqa_reference import psnr_y

    lq = np.asarray(Image.open(io.BytesIO(src)).convert("RGB"))
    assert rows[pair]["psnr"] == pytest.approx(_psnr_vs_gt(eval_set, pair, lq, psnr_y), abs=1e-4)


def _psnr_vs_gt(eval_set, pair, pred, psnr_y):
    from ggt_dataset.eval.references import open_references

    (_, gt), = open_references(eval_set).iter_hq({pair})
    return psnr_y(pred, np.asarray(Image.open(io.BytesIO(gt)).convert("RGB")))


@pytest.mark.slow
def test_conversions_are_scored_and_noted(eval_set, preds, tmp_path, capsys):
    ids = _ids(preds)
    rgb = [np.asarray(Image.open(open_predictions(str(preds)).names[i]).convert("RGB")) for i in ids[:7]]
    gray = Image.fromarray(rgb[0]).convert("L")
    rgba = Image.fromarray(rgb[1]).convert("RGBA")
    pal = Image.fromarray(rgb[2]).convert("P")
    cmyk = Image.fromarray(rgb[3]).convert("CMYK")
    import cv2

    sixteen = (rgb[4].astype(np.uint16) * 257)[:, :, ::-1]
    _, png16 = cv2.imencode(".png", sixteen)
    rotated = Image.fromarray(rgb[5]).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6          # "rotate 90 CW to view": undoes ROTATE_90 (counter-clockwise)
    gray16 = Image.fromarray(np.asarray(gray).astype(np.uint16) * 257)
    _replace(preds, ids[0], _png(gray))
    _replace(preds, ids[1], _png(rgba))
    _replace(preds, ids[2], _png(pal))
    _replace(preds, ids[3], _png(cmyk, format="JPEG", quality=100), ext=".jpg")
    _replace(preds, ids[4], png16.tobytes())
    _replace(preds, ids[5], _png(rotated, exif=exif.tobytes()))
    _replace(preds, ids[6], _png(gray16))
    rc, text = _score(capsys, preds, eval_set, tmp_path / "r")
    assert rc == 0, text
    import pyarrow.parquet as pq

    rows = {r["id"]: r for r in pq.read_table(tmp_path / "r" / "per_image.parquet").to_pylist()}
    assert rows[ids[0]]["note"] == "gray->RGB"
    assert rows[ids[1]]["note"] == "alpha dropped"
    assert rows[ids[2]]["note"] == "palette->RGB"
    assert rows[ids[3]]["note"] == "CMYK->RGB"
    assert rows[ids[4]]["note"] == "16-bit->float"
    assert rows[ids[5]]["note"] == "EXIF rotated"
    assert rows[ids[6]]["note"] == "16-bit gray->RGB"
    assert np.isfinite([rows[i]["psnr"] for i in ids[:7]]).all()


@pytest.mark.slow
def test_lossless_16_bit_and_rotation_score_like_the_original(eval_set, identity_preds, preds, tmp_path, capsys):
    ids = _ids(preds)
    names = open_predictions(str(identity_preds)).names
    orig = {i: np.asarray(Image.open(names[i]).convert("RGB")) for i in ids[:2]}
    import cv2

    _replace(preds, ids[0], cv2.imencode(".png", (orig[ids[0]].astype(np.uint16) * 257)[:, :, ::-1])[1].tobytes())
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = Image.fromarray(orig[ids[1]]).transpose(Image.Transpose.ROTATE_90)
    _replace(preds, ids[1], _png(turned, exif=exif.tobytes()))
    # the reference run: the same pixels as plain 8-bit PNGs
    ref = tmp_path / "plain"
    shutil.copytree(preds, ref)
    _replace(ref, ids[0], _png(orig[ids[0]]))
    _replace(ref, ids[1], _png(orig[ids[1]]))
    assert _score(capsys, preds, eval_set, tmp_path / "a")[0] == 0
    assert _score(capsys, ref, eval_set, tmp_path / "b")[0] == 0
    import pyarrow.parquet as pq

    a = {r["id"]: r for r in pq.read_table(tmp_path / "a" / "per_image.parquet").to_pylist()}
    b = {r["id"]: r for r in pq.read_table(tmp_path / "b" / "per_image.parquet").to_pylist()}
    for i in ids[:2]:
        assert abs(a[i]["psnr"] - b[i]["psnr"]) < 1e-4 and abs(a[i]["ssim"] - b[i]["ssim"]) < 1e-6


@pytest.mark.slow
def test_32_bit_float_image_is_refused(eval_set, preds, tmp_path, capsys):
    pair = _ids(preds)[0]
    im = Image.fromarray(np.zeros((96, 96), np.float32), mode="F")
    _replace(preds, pair, _png(im, format="TIFF"), ext=".tif")
    _fail(capsys, preds, eval_set, tmp_path, pair + ".tif", "mode F", "8- or 16-bit PNG")


@pytest.mark.slow
def test_decompression_bomb_is_refused(eval_set, preds, tmp_path, capsys):
    pair = _ids(preds)[0]
    Image.MAX_IMAGE_PIXELS, old = 1000, Image.MAX_IMAGE_PIXELS
    try:
        from ggt_dataset.eval import decode

        with pytest.raises(decode.ImageDecodeError, match="decompression-bomb"):
            decode.decode(_png(np.zeros((96, 96, 3), np.uint8)), "x.png", max_pixels=1000)
    finally:
        Image.MAX_IMAGE_PIXELS = old
    # A real bomb: a tiny PNG that declares 20000 x 20000 pixels.
    bomb = _png(Image.new("1", (20000, 20000)))
    assert len(bomb) < 100_000
    _replace(preds, pair, bomb)
    _fail(capsys, preds, eval_set, tmp_path, pair + ".png", "decompression-bomb")


def test_empty_folder(eval_set, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    _fail(capsys, tmp_path / "empty", eval_set, tmp_path, "no prediction images found", "empty")


@pytest.mark.slow
def test_missing_extra_duplicate_ids_are_listed_and_partial_is_marked(eval_set, preds, tmp_path, capsys):
    ids = _ids(preds)
    names = open_predictions(str(preds)).names
    os.remove(names[ids[0]])
    (preds / "rain" / "not_in_test.png").write_bytes(_png(np.zeros((96, 96, 3), np.uint8)))
    shutil.copy(names[ids[1]], preds / (ids[1] + ".bmp"))
    text = _fail(capsys, preds, eval_set, tmp_path, "1 missing", ids[0], "1 extra", "rain/not_in_test",
                 f"duplicate id {ids[1]!r}", "--allow-partial")
    rc, text = _score(capsys, preds, eval_set, tmp_path / "p", "--allow-partial")
    assert rc == 0, text
    import json

    s = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert s["partial"] and s["counts"]["scored"] == 16
    assert s["counts"]["missing"] == [ids[0]] and s["counts"]["extra"] == ["rain/not_in_test"]
    assert "PARTIAL" in (tmp_path / "p" / "report.md").read_text()


@pytest.mark.slow
def test_flat_folder_matches_by_basename(eval_set, identity_preds, tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in open_predictions(identity_preds).names.values():
        shutil.copy(path, flat / os.path.basename(path))
    rc, text = _score(capsys, flat, eval_set, tmp_path / "r")
    assert rc == 0, text
    import json

    assert json.loads((tmp_path / "r" / "summary.json").read_text())["submission"]["matched_by"] == "basename"


@pytest.mark.slow
def test_parquet_and_saved_dataset_predictions(eval_set, identity_preds, tmp_path, capsys):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = open_predictions(identity_preds).names
    ids = sorted(names)
    imgs = [{"bytes": Path(names[i]).read_bytes(), "path": None} for i in ids]
    pq.write_table(pa.table({"id": ids, "prediction": imgs}), tmp_path / "preds.parquet", row_group_size=5)
    assert _score(capsys, tmp_path / "preds.parquet", eval_set, tmp_path / "rp")[0] == 0
    ds = datasets.Dataset.from_dict({"id": ids, "image": imgs},
                                    features=datasets.Features({"id": datasets.Value("string"),
                                                                "image": datasets.Image()}))
    ds.save_to_disk(str(tmp_path / "saved"))
    assert _score(capsys, tmp_path / "saved", eval_set, tmp_path / "rd")[0] == 0
    assert _score(capsys, identity_preds, eval_set, tmp_path / "rf")[0] == 0
    want = (tmp_path / "rf" / "per_image.csv").read_text()
    assert (tmp_path / "rp" / "per_image.csv").read_text() == want
    assert (tmp_path / "rd" / "per_image.csv").read_text() == want


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_for_16_bit_path(orientation):
    """The 16-bit reader applies EXIF orientation itself; it must agree with Pillow's."""
    from ggt_dataset.eval.decode import _ORIENT
    from PIL import ImageOps

    a = np.random.default_rng(orientation).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    im = Image.fromarray(a)
    im.getexif()[0x0112] = orientation
    want = np.asarray(ImageOps.exif_transpose(im))
    assert np.array_equal(_ORIENT.get(orientation, lambda x: x)(a), want)


@pytest.mark.slow
def test_ntire_resizes_a_mismatched_prediction(eval_set, preds, tmp_path, capsys):
    pair = _ids(preds)[0]
    _replace(preds, pair, _png(np.zeros((96 + 40, 96 + 8, 3), np.uint8)))
    rc, text = _score(capsys, preds, eval_set, tmp_path / "r", "--protocol", "ntire")
    assert rc == 0, text
    import pyarrow.parquet as pq

    rows = {r["id"]: r for r in pq.read_table(tmp_path / "r" / "per_image.parquet").to_pylist()}
    assert rows[pair]["note"] == "resized from 104x136"


def test_references_through_datasets_equal_the_build_reader(eval_set, tmp_path):
    """The Hub path (ggt_dataset.load -> datasets) gives the same ids, bytes and fingerprint."""
    from ggt_dataset.eval.references import open_references

    plain = tmp_path / "plain"
    shutil.copytree(eval_set, plain, ignore=shutil.ignore_patterns("ggt_manifest.json"))
    via_datasets = open_references(str(plain))
    via_build = open_references(eval_set)
    assert via_datasets.fingerprint == via_build.fingerprint
    assert sorted(via_datasets.ids) == sorted(via_build.ids)
    assert dict(via_datasets.iter_hq(set(via_build.ids))) == dict(via_build.iter_hq(set(via_build.ids)))


def test_missing_split_and_unreadable_reference(eval_set, identity_preds, tmp_path, capsys):
    rc, text = _score(capsys, identity_preds, eval_set, tmp_path / "r", "--split", "validation")
    assert rc == 1 and "no 'validation' split" in text and "test, train" in text
    (tmp_path / "nothing").mkdir()
    rc, text = _score(capsys, identity_preds, str(tmp_path / "nothing"), tmp_path / "r")
    assert rc == 1 and "Traceback" not in text and not (tmp_path / "r").exists()


@pytest.mark.slow
def test_metrics_available_names_what_it_leaves_out(eval_set, identity_preds, tmp_path, capsys):
    rc = main(["score", identity_preds, "--reference", eval_set, "--out", str(tmp_path / "r"),
               "--metrics", "available", "--device", "cpu", "-q"])
    cap = capsys.readouterr()
    assert rc == 0 and "leaving out lpips, dists, musiq, maniqa, clipiqa, topiq_nr, afine_nr, niqe" in cap.err
    import json

    assert json.loads((tmp_path / "r" / "summary.json").read_text())["restricted_to"] == ["psnr", "ssim"]


def _zip_folder(folder, z, extra=()):
    """Zip ``folder`` (ids as member paths), plus (member name, bytes) ``extra``."""
    with zipfile.ZipFile(z, "w") as zf:
        for root, _, files in os.walk(folder):
            for f in sorted(files):
                zf.write(os.path.join(root, f), os.path.relpath(os.path.join(root, f), folder))
        for name, data in extra:
            zf.writestr(name, data)
    return z


@pytest.mark.slow
def test_corrupt_zip_member_fails_that_image_only(eval_set, identity_preds, tmp_path, capsys):
    z = _zip_folder(identity_preds, tmp_path / "preds.zip")
    ids = _ids(identity_preds)
    bad = os.path.relpath(open_predictions(identity_preds).names[ids[0]], identity_preds)
    with zipfile.ZipFile(z) as zf:                 # stored members: flip a byte of one member's data
        info = zf.getinfo(bad)
    raw = bytearray(z.read_bytes())
    raw[info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 100] ^= 0xFF
    z.write_bytes(bytes(raw))
    _fail(capsys, z, eval_set, tmp_path, "1 prediction(s) cannot be scored", f"{z}!{bad}", "Bad CRC-32")
    rc, text = _score(capsys, z, eval_set, tmp_path / "p", "--allow-partial")
    assert rc == 0, text
    import json

    s = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert s["partial"] and s["counts"]["scored"] == 17
    assert len(s["counts"]["failed"]) == 1 and f"{z}!{bad}: damaged zip member" in s["counts"]["failed"][0]


@pytest.mark.slow
def test_macos_finder_zip_extras_are_ignored(eval_set, identity_preds, tmp_path, capsys):
    ids = _ids(identity_preds)
    fork = b"\0\5\26\7" + b"\0" * 60            # AppleDouble resource fork, not an image
    z = _zip_folder(identity_preds, tmp_path / "finder.zip",
                    [(f"__MACOSX/{ids[0]}.png", fork), (f"__MACOSX/{os.path.dirname(ids[0])}/._x.png", fork),
                     (f"{os.path.dirname(ids[0])}/._{os.path.basename(ids[0])}.png", fork), (".DS_Store", b"x")])
    assert _ids(z) == ids
    assert _score(capsys, z, eval_set, tmp_path / "r")[0] == 0


def test_control_characters_in_member_names_are_escaped(eval_set, identity_preds, tmp_path, capsys):
    z = _zip_folder(identity_preds, tmp_path / "ctl.zip", [("rain/evil\x1b[2J\r.png", _png(np.zeros((96, 96, 3), np.uint8)))])
    text = _fail(capsys, z, eval_set, tmp_path, "1 extra", "rain/evil\\x1b[2J\\r")
    assert "\x1b" not in text and "\r" not in text


def test_animated_gif_named_png_is_refused(eval_set, preds, tmp_path, capsys):
    pair = _ids(preds)[0]
    frames = [Image.fromarray(np.full((96, 96, 3), v, np.uint8)) for v in (0, 255)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    _replace(preds, pair, buf.getvalue())
    _fail(capsys, preds, eval_set, tmp_path, pair + ".png", "is GIF content")


def test_animated_png_is_refused_not_scored_on_its_first_frame():
    from ggt_dataset.eval.decode import ImageDecodeError, decode

    frames = [Image.fromarray(np.full((32, 32, 3), v, np.uint8)) for v in (0, 255)]
    buf = io.BytesIO()
    frames[0].save(buf, format="PNG", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageDecodeError, match="a.png: has 2 frames"):
        decode(buf.getvalue(), "a.png")


def test_reference_that_is_a_raw_release_says_build_it_first(identity_preds, sample_raw, tmp_path, capsys):
    text = _fail(capsys, identity_preds, sample_raw, tmp_path, f"{sample_raw}: a raw release",
                 f"ggt build {sample_raw}")
    assert "unexpected" not in text.lower()
    manifest = os.path.join(sample_raw, "metadata.jsonl")
    _fail(capsys, identity_preds, manifest, tmp_path, f"{manifest}: a raw release", f"ggt build {manifest}")
    (tmp_path / "scores.parquet").write_bytes(b"PAR1")
    _fail(capsys, identity_preds, str(tmp_path / "scores.parquet"), tmp_path, "scores.parquet: a file")


def _tiff(arr, **kw) -> bytes:
    tifffile = pytest.importorskip("tifffile")
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("orientation", [1, 3, 6, 7])
@pytest.mark.parametrize("channels", [3, 4])
def test_48_and_64_bit_tiff_are_read_at_16_bits(orientation, channels):
    from ggt_dataset.eval.decode import _ORIENT, decode

    arr = np.random.default_rng(orientation).integers(0, 65536, (20, 30, channels), dtype=np.uint16)
    data = _tiff(arr, photometric="rgb", extrasamples=[2] if channels == 4 else None,
                 compression="zlib", extratags=[(274, 3, 1, orientation, True)])
    d = decode(data, "a.tif")
    want = _ORIENT.get(orientation, lambda a: a)(arr[:, :, :3])
    assert d.scale == 65535.0 and d.pixels.dtype == np.uint16 and np.array_equal(d.pixels, want)
    assert d.note.startswith("16-bit->float") and ("EXIF rotated" in d.note) == (orientation != 1)


@pytest.mark.parametrize("kw", [{"photometric": "rgb", "dtype": np.int16}, {"photometric": "separated"},
                                {"photometric": "rgb", "dtype": np.float16}])
def test_16_bit_tiff_that_cannot_be_read_exactly_is_refused(kw):
    from ggt_dataset.eval.decode import ImageDecodeError, decode

    dtype = kw.pop("dtype", np.uint16)
    channels = 4 if kw["photometric"] == "separated" else 3
    arr = np.random.default_rng(0).integers(0, 30000, (20, 30, channels)).astype(dtype)
    with pytest.raises(ImageDecodeError, match="a.tif: "):
        decode(_tiff(arr, **kw), "a.tif")


@pytest.mark.slow
def test_48_bit_tiff_prediction_scores_like_the_same_16_bit_png(eval_set, preds, tmp_path, capsys):
    import cv2
    import pyarrow.parquet as pq

    pair = _ids(preds)[0]
    png16 = cv2.imread(str(next((preds / os.path.dirname(pair)).glob(os.path.basename(pair) + ".*"))),
                       cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.uint16) * 257
    png16 += np.random.default_rng(0).integers(0, 257, png16.shape, dtype=np.uint16)   # below 8 bits
    _replace(preds, pair, cv2.imencode(".png", png16[:, :, ::-1])[1].tobytes())
    assert _score(capsys, preds, eval_set, tmp_path / "png")[0] == 0
    _replace(preds, pair, _tiff(png16, photometric="rgb"), ext=".tif")
    assert _score(capsys, preds, eval_set, tmp_path / "tif")[0] == 0
    a, b = ({r["id"]: r for r in pq.read_table(tmp_path / d / "per_image.parquet").to_pylist()}[pair]
            for d in ("png", "tif"))
    assert a["psnr"] == b["psnr"] and a["ssim"] == b["ssim"] and b["note"] == "16-bit->float"


def test_a_fifo_in_a_predictions_folder_is_not_opened(identity_preds, tmp_path):
    # The bug was a hang (pyarrow opening the FIFO), so the reader runs in a subprocess with a timeout.
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    names = open_predictions(identity_preds).names
    ids = sorted(names)
    folder = tmp_path / "parquet"
    folder.mkdir()
    pq.write_table(pa.table({"id": ids, "prediction": [Path(names[i]).read_bytes() for i in ids]}),
                   folder / "a.parquet")
    os.mkfifo(folder / "b.parquet")
    images = tmp_path / "images"
    shutil.copytree(identity_preds, images)
    os.mkfifo(images / (ids[0] + ".tif"))        # beside the real PNG: not a duplicate, not read
    code = "import sys; from ggt_dataset.eval.predictions import open_predictions as o; print(len(o(sys.argv[1]).names))"
    for path in (folder, images):
        r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                           check=False)
        assert r.returncode == 0 and r.stdout.strip() == str(len(ids)), r.stderr


def test_16_bit_gray_alpha_png_is_read_at_16_bits():
    # Pillow opens it as 8-bit RGBA; OpenCV keeps the 16 bits (gray replicated, alpha dropped).
    import struct
    import zlib

    from ggt_dataset.eval.decode import decode

    a = np.random.default_rng(0).integers(0, 65536, (4, 5, 2), dtype=np.uint16)
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in a)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 5, 4, 16, 4, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    d = decode(data, "la.png")
    assert d.scale == 65535.0 and np.array_equal(d.pixels, np.repeat(a[:, :, :1], 3, axis=2))
    assert "alpha dropped" in d.note


@pytest.mark.slow
def test_every_cheap_problem_is_listed_in_one_run_and_report_names_the_unscorable(eval_set, preds, tmp_path,
                                                                                 capsys):
    """Issue #12.4: a missing file, an extra one, one of the wrong size and one that is no image.
    Before, the first run named only the missing and extra ids (the sizes came on the next run),
    and --allow-partial's report.md said '2 unscorable' without naming them."""
    ids = _ids(preds)
    names = open_predictions(str(preds)).names
    os.remove(names[ids[0]])
    (preds / "rain" / "not_in_test.png").write_bytes(_png(np.zeros((96, 96, 3), np.uint8)))
    _replace(preds, ids[1], _png(np.zeros((96 + 40, 96, 3), np.uint8)))
    _replace(preds, ids[2], b"this is not an image at all")
    text = _fail(capsys, preds, eval_set, tmp_path, "1 missing", ids[0], "1 extra", "rain/not_in_test",
                 "2 prediction(s) cannot be scored", f"{ids[1]}.png: prediction 96x136, ground truth 96x96",
                 f"{ids[2]}.png: not an image", "--allow-partial")
    rc, text = _score(capsys, preds, eval_set, tmp_path / "p", "--allow-partial")
    assert rc == 0, text
    md = (tmp_path / "p" / "report.md").read_text()
    assert "2 unscorable" in md and f"{ids[1]}.png: prediction 96x136" in md and f"{ids[2]}.png: not an image" in md
    assert f"missing: {ids[0]}" in md and "extra: rain/not_in_test" in md


def test_precheck_reads_headers_only_and_follows_exif_orientation(eval_set, preds):
    """A prediction saved sideways with an EXIF tag fits its ground truth (decode turns it
    upright); the pre-check takes its size from the header, as decode will see it."""
    from ggt_dataset.eval import precheck
    from ggt_dataset.eval.protocol import load
    from ggt_dataset.eval.references import open_references

    refs = open_references(eval_set)
    pair = _ids(preds)[0]
    assert refs.sizes[pair] == (96, 96)
    exif = Image.Exif()
    exif[0x0112] = 6
    _replace(preds, pair, _png(np.zeros((96, 90, 3), np.uint8), exif=exif.tobytes()))   # 90 wide, shown 96x90
    found = precheck.check(open_predictions(str(preds)), refs, load("ggt").subset(["psnr", "ssim"]), [pair])
    assert found == {}
    exif[0x0112] = 1
    _replace(preds, pair, _png(np.zeros((96, 20, 3), np.uint8), exif=exif.tobytes()))
    found = precheck.check(open_predictions(str(preds)), refs, load("ggt").subset(["psnr", "ssim"]), [pair])
    assert "prediction 20x96, ground truth 96x96" in found[pair]


@pytest.mark.slow
def test_readmes_first_score_example_runs_offline_as_written(eval_set, identity_preds, tmp_path, capsys):
    """Issue #12.4: the README's first `ggt score` line, on a machine with no weight files (the
    tests' TORCH_HOME is empty), only its paths replaced by the fixtures'. It used to need
    `ggt weights fetch` (internet) first and failed here naming the missing files."""
    import shlex

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("ggt score "))
    args = shlex.split(line, comments=True)[1:]
    paths = {"outputs/": identity_preds, "ggt-100k": eval_set, "report/": str(tmp_path / "report")}
    rc = main([paths.get(a, a) for a in args] + ["-q"])
    text = "".join(capsys.readouterr())
    assert rc == 0, text
    assert (tmp_path / "report" / "report.md").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("bad", ["predictions", "reference"])
def test_a_bad_input_fails_before_any_metric_is_built(bad, eval_set, identity_preds, tmp_path, monkeypatch,
                                                      capsys):
    """A Hub reference that does not answer, or a predictions path that is wrong, is named before
    the models load (seconds each for the learned metrics)."""
    import pyiqa

    made = []
    real = pyiqa.create_metric
    monkeypatch.setattr(pyiqa, "create_metric", lambda name, *a, **k: made.append(name) or real(name, *a, **k))
    preds = str(tmp_path / "nope") if bad == "predictions" else identity_preds
    ref = "org/gone" if bad == "reference" else eval_set          # offline here: no Hub answers
    args = ["--out", str(tmp_path / "r"), "--metrics", "psnr,ssim", "--kernel", "pyiqa", "--device", "cpu", "-q"]
    assert main(["score", preds, "--reference", ref, *args]) == 1
    assert ("nope" if bad == "predictions" else "org/gone") in capsys.readouterr().err
    assert made == []
    assert main(["score", identity_preds, "--reference", eval_set, *args]) == 0
    assert made == ["psnr", "ssim"]
