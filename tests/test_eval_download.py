"""eval/download.py in process (no torch, so in `make test-fast`): a file is fetched whole or
not at all, a cut download resumes with Range, a 404 and a wrong sha256 name the URL.
The commands that use it are run for real in test_selfcheck.py and test_weights_fetch.py."""

from __future__ import annotations

import hashlib
import os

import pytest
from file_server import FileServer
from ggt_dataset.eval.download import DownloadError, download

DATA = bytes(range(256)) * 40
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server():
    with FileServer({"/f.bin": DATA}) as s:
        yield s


def test_a_whole_file_is_checked_and_placed(server, tmp_path):
    download(server.url + "/f.bin", str(tmp_path / "f.bin"), SHA[:8])
    assert (tmp_path / "f.bin").read_bytes() == DATA and os.listdir(tmp_path) == ["f.bin"]


def test_a_cut_download_resumes_from_its_part(server, tmp_path):
    server.cut["/f.bin"] = 1000
    with pytest.raises(DownloadError, match=rf"/f.bin: download of f.bin interrupted after 1000 of {len(DATA)} "
                                            "bytes; run the same command again to resume"):
        download(server.url + "/f.bin", str(tmp_path / "f.bin"), SHA)
    assert os.listdir(tmp_path) == ["f.bin.part"]
    download(server.url + "/f.bin", str(tmp_path / "f.bin"), SHA)
    assert server.requests[-1] == ("/f.bin", "bytes=1000-", 206)
    assert (tmp_path / "f.bin").read_bytes() == DATA and os.listdir(tmp_path) == ["f.bin"]


def test_a_complete_part_is_finished_without_refetching(server, tmp_path):
    (tmp_path / "f.bin.part").write_bytes(DATA)            # cut after the last byte, before the rename
    download(server.url + "/f.bin", str(tmp_path / "f.bin"), SHA)
    assert server.requests == [("/f.bin", f"bytes={len(DATA)}-", 416)] and (tmp_path / "f.bin").read_bytes() == DATA


def test_a_missing_file_is_named(server, tmp_path):
    with pytest.raises(DownloadError, match=rf"^{server.url}/g.bin: HTTP 404 Not Found; cannot fetch g.bin$"):
        download(server.url + "/g.bin", str(tmp_path / "g.bin"))
    assert os.listdir(tmp_path) == []


def test_a_wrong_sha256_is_named_and_not_kept(server, tmp_path):
    want = "0" * 64
    with pytest.raises(DownloadError, match=rf"f.bin has sha256 {SHA}, but {want} is pinned; the file was not kept"):
        download(server.url + "/f.bin", str(tmp_path / "f.bin"), want)
    assert os.listdir(tmp_path) == []


def test_an_unreachable_host_is_named(tmp_path):
    with FileServer({}) as s:
        url = s.url + "/f.bin"
    with pytest.raises(DownloadError, match=rf"^{url}: cannot fetch f.bin \(.*refused\); run the same command again once the host"):
        download(url, str(tmp_path / "f.bin"))
