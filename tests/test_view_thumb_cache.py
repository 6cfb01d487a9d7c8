"""`ggt view`'s thumbnails on disk: served after a restart without reading or decoding an image."""

from __future__ import annotations

import io
import os
import re
import shutil
import urllib.parse
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from viewserver import get, get_json, ggt, ggt_view, serving

from ggt_dataset.view import thumbs
from ggt_dataset.view.thumb_cache import ThumbCache
from ggt_dataset.view.viewer import Viewer

pytest.importorskip("starlette")


def _page_thumbs(url: str, roles=("lq", "pred", "hq")) -> dict[tuple[str, str], bytes]:
    """The test split's first page of thumbnails, as the grid asks for them."""
    status, page = get_json(f"{url}/api/rows?split=test")
    assert status == 200 and page["rows"]
    out = {}
    for r in page["rows"]:
        for role in roles:
            status, kind, body = get(f"{url}/api/image?key={urllib.parse.quote(r['key'])}&role={role}&size=thumb")
            assert status == 200 and kind == "image/jpeg", body[:200]
            out[(r["key"], role)] = body
    return out


@pytest.mark.slow
def test_a_restarted_viewer_serves_thumbnails_from_disk(eval_set, identity_preds, tmp_path, monkeypatch):
    cache_dir = str(tmp_path / "thumbs")
    first = Viewer.open(eval_set, predictions=identity_preds)
    first.disk = ThumbCache(cache_dir)
    with serving(first) as url:
        made = _page_thumbs(url)
    assert made and all(Image.open(io.BytesIO(b)).format == "JPEG" for b in made.values())
    key = next(k for k, _ in made)
    record = first.index.records([first.index.find(key)])[0]
    stored = os.path.join(cache_dir, thumbs.THUMB_FORMAT, record["hq_sha256"][:2], record["hq_sha256"] + ".jpg")
    assert Path(stored).read_bytes() == made[(key, "hq")]        # keyed by the image's sha256

    def no_decoding(data, size=thumbs.THUMB_SIZE):
        raise AssertionError("a cached thumbnail was made again")

    monkeypatch.setattr(thumbs, "thumbnail", no_decoding)
    second = Viewer.open(eval_set, predictions=identity_preds)
    second.disk = ThumbCache(cache_dir)
    with serving(second) as url:
        assert _page_thumbs(url) == made                         # read and hashed, not decoded


def test_a_damaged_cache_file_is_made_again(eval_set, tmp_path):
    viewer = Viewer.open(eval_set)
    viewer.disk = ThumbCache(str(tmp_path))
    row = int(viewer.index.rows_of_split("test")[0])
    key = viewer.index.key_of(row)
    good, _ = viewer.image(key, "hq", "thumb")
    sha = viewer.index.records([row])[0]["hq_sha256"]
    path = viewer.disk._path(sha)
    with open(path, "wb") as f:
        f.write(good[: len(good) // 2])                             # cut short, as a full disk might leave it
    fresh = Viewer.open(eval_set)
    fresh.disk = ThumbCache(str(tmp_path))
    assert fresh.image(key, "hq", "thumb")[0] == good and Path(path).read_bytes() == good


def _jpeg_like(n: int, i: int) -> bytes:
    return b"\xff\xd8" + bytes([i % 256]) * (n - 4) + b"\xff\xd9"


def test_the_cache_stays_bounded_and_keeps_what_was_shown_last(tmp_path):
    cache = ThumbCache(str(tmp_path), max_bytes=10_000)
    shas = [f"{i:064x}" for i in range(30)]
    for i, sha in enumerate(shas[:8]):
        cache.put(sha, _jpeg_like(1000, i))
        os.utime(cache._path(sha), ns=(i * 10**9, i * 10**9))    # written in order, seconds apart
    assert cache.get(shas[0]) is not None                        # shown again: now the most recent
    for i, sha in enumerate(shas[8:11], 8):                      # the 11th KB goes past the bound
        cache.put(sha, _jpeg_like(1000, i))
    assert cache.get(shas[0]) is not None and cache.get(shas[1]) is None      # the oldest unshown went first
    for i, sha in enumerate(shas[11:], 11):
        cache.put(sha, _jpeg_like(1000, i))
    on_disk = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(tmp_path) for f in fs)
    assert on_disk <= 10_000 and cache.bytes == on_disk
    assert cache.get(shas[-1]) == _jpeg_like(1000, 29)
    reopened = ThumbCache(str(tmp_path), max_bytes=3000)                      # a smaller bound prunes at start
    assert reopened.bytes <= 3000 and reopened.get(shas[-1]) is not None


def test_only_a_hex_sha256_names_a_file(tmp_path):
    """The key comes from the dataset's metadata, which a Hub repo controls."""
    cache = ThumbCache(str(tmp_path / "cache"))
    for bad in ("../../escaped", "/tmp/x", "A" * 64, "ab", "0" * 63 + "/"):
        cache.put(bad, _jpeg_like(100, 1))
        assert cache.get(bad) is None
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.slow
def test_cli_cache_options(eval_set, tmp_path):
    r = ggt("view", eval_set, "--port", "0", "--thumb-cache-mb", "0")
    assert r.returncode == 1 and "--thumb-cache-mb must be at least 1" in r.stderr and "Traceback" not in r.stderr
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    r = ggt("view", eval_set, "--port", "0", "--thumb-cache", str(blocker / "thumbs"))
    assert r.returncode == 1 and f"--thumb-cache {blocker / 'thumbs'}: cannot use it" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_cli_default_cache_is_the_users_cache_folder(eval_set, tmp_path):
    """The real command, started and asked for thumbnails: they land under $XDG_CACHE_HOME/ggt/view-thumbs."""
    with ggt_view(eval_set, "--port", "0", env={"XDG_CACHE_HOME": str(tmp_path / "xdg")}) as said:
        url = re.search(r"open (http://\S+)/", said).group(1)
        made = _page_thumbs(url, roles=("hq",))
    folder = tmp_path / "xdg" / "ggt" / "view-thumbs" / thumbs.THUMB_FORMAT
    assert sorted(p.read_bytes() for p in folder.rglob("*.jpg")) == sorted(set(made.values()))


def test_two_datasets_sharing_the_cache_get_their_own_thumbnails(eval_set, tmp_path):
    """A dataset whose metadata claims another image's hq_sha256 (a Hub repo, an edited shard) gets
    the thumbnail of the bytes it holds, not the other dataset's."""
    other = tmp_path / "other"
    shutil.copytree(eval_set, other)
    shard = min(other.rglob("test-*.parquet"))
    table = pq.read_table(shard)
    hq = table.column("hq").to_pylist()
    swapped = hq[1]["bytes"]
    hq[0] = {**hq[0], "bytes": swapped}                     # row 0 shows row 1's image; its hq_sha256 is unchanged
    column = pa.array(hq, table.schema.field("hq").type)
    pq.write_table(table.set_column(table.column_names.index("hq"), "hq", column), shard)
    key = f"test:{table.column('id')[0].as_py()}"
    cache = str(tmp_path / "thumbs")
    first = Viewer.open(eval_set)
    first.disk = ThumbCache(cache)
    mine, _ = first.image(key, "hq", "thumb")
    second = Viewer.open(str(other))
    second.disk = ThumbCache(cache)
    theirs, _ = second.image(key, "hq", "thumb")
    assert theirs == thumbs.thumbnail(swapped) != mine
